"""Print the README's tables of the bundled models from their model cards (rnaloc_tools/models/*.json).

    python workflows/bundled-models/cards_table.py [NAME...]

The grouped-CV metrics of each shipped (calibrated) model beside the length-only and majority
baselines on the same folds, the paired differences model minus length, and the calibration.
"""

import json
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "rnaloc_tools" / "models"
ORDER = ("lncRNA", "lncRNA-fractionation", "miRNA", "circRNA")


def ms(pair):
    return f"{pair[0]:.3f} ± {pair[1]:.3f}"


def main():
    names = sys.argv[1:] or ORDER
    cards = {n: json.loads((MODELS / f"{n}.json").read_text()) for n in names}
    print("| model | predictor | ACC | macro F1 | MCC | AUROC |")
    print("|---|---|---|---|---|---|")
    for name, card in cards.items():
        tr = card["training"]
        rows = [("model (calibrated, shipped)", {m[3:]: v for m, v in tr["cv"].items()}),
                ("model before calibration", tr["cv_uncalibrated"]),
                ("length only", tr["cv_baselines"]["length"]), ("majority", tr["cv_baselines"]["majority"])]
        for i, (pred, m) in enumerate(rows):
            label = f"**{name}**" if i == 0 else ""
            print(f"| {label} | {pred} | {ms(m['ACC'])} | {ms(m['macro_F1'])} | {ms(m['MCC'])} | {ms(m['AUROC'])} |")
    print()
    print("| model | MCC model − length (fold sd; 95% cluster bootstrap) | AUROC model − length | "
          "ECE before → after calibration | Brier before → after |")
    print("|---|---|---|---|---|")
    for name, card in cards.items():
        tr = card["training"]
        d = tr["cv_minus_length"]["calibrated"]
        cal = tr["calibration"]
        cells = []
        for m in ("MCC", "AUROC"):
            lo, hi = d["bootstrap95"][m]
            cells.append(f"{d[m][0]:+.3f} (± {d[m][1]:.3f}; {lo:+.3f} .. {hi:+.3f})")
        print(f"| {name} | {cells[0]} | {cells[1]} | {cal['ECE_before'][0]:.3f} → {cal['ECE_after'][0]:.3f} | "
              f"{cal['Brier_before'][0]:.3f} → {cal['Brier_after'][0]:.3f} |")
    print()
    for name, card in cards.items():
        print(f"- {name}: {card['training']['versus_length']}")


if __name__ == "__main__":
    main()
