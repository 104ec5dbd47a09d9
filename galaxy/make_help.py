#!/usr/bin/env python3
"""Write galaxy/help_macros.xml: the parts of the Galaxy help that must not drift from the code.

- @BUNDLED_MODELS@: what each bundled model is, what its classes mean and how good it is
  (cross-validated metrics from its model card, rnaloc_tools/models/<type>.json, beside the
  baselines the card reports);
- @PREDICT_EXAMPLE@, @MOTIFS_EXAMPLE@, @EVALUATE_EXAMPLE@: the tables of real runs on the
  example files in test-data/, made here by running rnaloc as the Galaxy wrappers do.

    python galaxy/make_help.py           # rewrite galaxy/help_macros.xml
    python galaxy/make_help.py --check   # exit 1 when it is out of date (tests/test_galaxy_help.py)

Rerun it after the bundled models, their cards, the example files or an output format change.
"""

import argparse
import difflib
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "galaxy" / "help_macros.xml"
TEST_DATA = REPO / "test-data"
MODELS = REPO / "rnaloc_tools" / "models"
TRAIN = {t: REPO / "datasets" / t / "train.tsv.gz" for t in ("lncRNA", "miRNA", "circRNA")}

#: What the classes mean, per RNA type (the curation rules of `rnaloc curate`).
CLASS_MEANING = {
    "lncRNA": (
        "**nucleus**: annotated in the nucleus or a compartment inside it (nucleoplasm, chromatin, "
        "nucleolus, nuclear speckles); **cytoplasm**: annotated in the cytoplasm (cytosol-only entries "
        "were left out, as in the paper)."
    ),
    "miRNA": (
        "**extracellular**: found outside the cell, in exosomes, microvesicles, extracellular vesicles or "
        "plasma-membrane vesicles (secreted); **intracellular**: found inside the cell (chromatin, "
        "cytoplasm, plasma membrane, ER membrane, nucleolus, mitochondrion, nucleus, P-bodies). "
        "In RNALocate most intracellular entries are precursors (longer than 30 nt) and most "
        "extracellular ones mature miRNAs, so length alone separates much of it."
    ),
    ("lncRNA", "fractionation"): (
        "**nucleus** / **cytoplasm**: more concentrated in the nuclear or in the cytoplasmic fraction "
        "of fractionated cells (lncATLAS relative concentration), not where papers reported it."
    ),
    "circRNA": (
        "**nucleus** / **cytoplasm**: where the circRNA was annotated (CSCD 2.0 and CellCircLoc)."
    ),
}

LABEL_SOURCES = {
    "rnalocate": "RNALocate, curated literature",
    "fractionation": "cell fractionation (lncATLAS, RNAlight)",
}

METRICS = (("ACC", "accuracy"), ("MCC", "MCC"), ("AUROC", "AUROC"))


def _fmt(value):
    if isinstance(value, (list, tuple)):
        mean, sd = value[0], value[1] if len(value) > 1 else None
        return f"{mean:.3f} ± {sd:.3f}" if sd is not None else f"{mean:.3f}"
    if isinstance(value, dict) and "mean" in value:
        return _fmt([value["mean"], value.get("sd")] if value.get("sd") is not None else [value["mean"]])
    if isinstance(value, (int, float)):
        return f"{value:.3f}"
    return "n/a"


def _metric(block, name):
    """A metric from a card's CV block, whatever its key spelling (cv_ACC, ACC, acc)."""
    for key in (f"cv_{name}", name, name.lower(), f"cv_{name.lower()}"):
        if key in block:
            return block[key]
    return None


def _baselines(card):
    """{baseline name: CV block} from a card, where it reports them."""
    training = card.get("training", {})
    found = card.get("baselines") or training.get("baselines") or training.get("cv_baselines") or {}
    if isinstance(found, list):
        found = {b.get("name") or b.get("predictor"): b for b in found}
    return {name: (block.get("cv", block) if isinstance(block, dict) else {}) for name, block in found.items()}


def bundled_models():
    lines = []
    for rna_type in ("lncRNA", "miRNA", "circRNA"):
        for path in sorted(MODELS.glob(f"{rna_type}*.json"), key=lambda p: (p.stem != rna_type, p.stem)):
            card = json.loads(path.read_text())
            training = card.get("training", {})
            arch = card.get("architecture", {})
            hp = arch.get("hparams", {})
            kmers = f"{hp.get('kmin', 1)}..{hp.get('kmax', '?')}-mer" if arch.get("arch") == "kmer" else arch.get("arch", "?")
            name = path.stem
            label_source = card.get("label_source")
            title = f"{rna_type} ({' / '.join(card['classes'])})"
            if label_source:
                title += f", labels: {LABEL_SOURCES.get(label_source, label_source)}"
            lines.append(f"**{title}** (``{name}.onnx``)")
            lines.append("")
            what = (
                f"- *What it is*: a logistic regression on the {kmers} frequencies and the length of the "
                f"sequence, computed from its one-hot encoding (A, C, G, U) inside the model; no RNA-FM. "
                if arch.get("arch") == "kmer"
                else f"- *What it is*: architecture {arch.get('arch')}. "
            )
            data = ", ".join(training.get("data", [])) or "?"
            lines.append(what + f"Trained on {training.get('n_sequences', '?'):,} sequences ({data}).")
            labels = card.get("label_definition") or training.get("label_definition")
            if labels:
                lines.append(f"- *Labels*: {labels}.")
            meaning = card.get("classes_meaning") or CLASS_MEANING.get((rna_type, label_source)) or CLASS_MEANING.get(rna_type)
            if meaning:
                lines.append(f"- *Classes*: {meaning}")
            cv = training.get("cv", {})
            scheme = training.get("cv_scheme", "cross-validation")
            row = ", ".join(f"{label} {_fmt(_metric(cv, key))}" for key, label in METRICS)
            if "mean" not in scheme:
                scheme += "; mean ± sd over folds"
            lines.append(f"- *How good* ({scheme}): {row}.")
            for base, block in _baselines(card).items():
                row = ", ".join(f"{label} {_fmt(_metric(block, key))}" for key, label in METRICS)
                lines.append(f"  Baseline *{base}* on the same folds: {row}.")
            versus = card.get("versus_length") or training.get("versus_length")
            if versus:
                lines.append(f"- *Against length alone*: {versus}.")
            use = card.get("intended_use") or training.get("intended_use")
            if use:
                lines.append(f"- *Intended use*: {use}")
            lines.append("")
    lines.append(
        "These are cross-validated numbers on the training data, not a guarantee for your sequences: "
        "the further your RNAs are from the training data (other species, other lengths), the less "
        "the probabilities mean."
    )
    return "\n".join(lines)


def _run(args, env=None):
    """Run `rnaloc ARGS` in this process (one import of the package for all examples)."""
    from click.testing import CliRunner

    from rnaloc_tools.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], env=env or {}, catch_exceptions=False)
    if result.exit_code:
        raise SystemExit(f"make_help: rnaloc {' '.join(map(str, args))} failed:\n{result.output}")
    return result


def _table(path, keep=None):
    """A TSV as aligned columns (its '#' lines as they are; the rows `keep` keeps), for a literal block."""
    lines = Path(path).read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    body = [line.split("\t") for line in lines if not line.startswith("#")]
    if keep is not None:
        body = [row for row in body if keep(row)]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in body) for i in range(max(map(len, body)))]
    out = comments + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join("    " + line for line in out)


def examples(work):
    fasta = TEST_DATA / "example-miRNA.fa"
    pred = Path(work) / "predictions.tsv"
    shown = {"RNALOC_COMMAND_LINE": "rnaloc predict example-miRNA.fa --rna-type miRNA", "RNALOC_NO_PROGRESS": "1"}
    _run(["predict", fasta, "--rna-type", "miRNA", "-o", pred], env=shown)
    predict = _table(pred)

    metrics = Path(work) / "metrics.tsv"
    shown = {
        "RNALOC_COMMAND_LINE": "rnaloc evaluate predictions.tsv example-miRNA.tsv --baseline-train train.tsv.gz",
        "RNALOC_NO_PROGRESS": "1",
    }
    _run(["evaluate", pred, TEST_DATA / "example-miRNA.tsv", "--baseline-train", TRAIN["miRNA"], "-o", metrics],
         env=shown)
    evaluate = _table(metrics, keep=lambda row: row[0] == "predictor" or row[1] in ("accuracy", "mcc", "auroc"))

    known = Path(work) / "known.tsv"
    lnc = TEST_DATA / "example-lncRNA.fa"
    shown = {"RNALOC_COMMAND_LINE": "rnaloc motifs example-lncRNA.fa --rna-type lncRNA", "RNALOC_NO_PROGRESS": "1"}
    motifs = Path(work) / "motifs.tsv"
    _run(["motifs", lnc, "--rna-type", "lncRNA", "--motifs", motifs, "--known", known], env=shown)
    n_motifs = sum(1 for line in motifs.read_text().splitlines() if line and not line.startswith("#")) - 1
    return predict, evaluate, _table(known), n_motifs, sum(1 for line in lnc.read_text().splitlines() if line.startswith(">"))


def render():
    with tempfile.TemporaryDirectory() as work:
        predict, evaluate, known, n_motifs, n_lnc = examples(work)
    motifs_note = (
        f"On the {n_lnc} example lncRNAs (``example-lncRNA.fa``) with the bundled lncRNA model, "
        f"the motifs table has {n_motifs} motif{'s' if n_motifs != 1 else ''}"
        + (": motif discovery needs dozens to hundreds of sequences per class" if n_motifs == 0 else "")
        + ". The known-motifs table (optional output) of the same run:"
    )
    tokens = {
        "@BUNDLED_MODELS@": bundled_models(),
        "@PREDICT_EXAMPLE@": "The bundled miRNA model on the example miRNAs (``example-miRNA.fa``), "
        "as this tool writes them::\n\n" + predict,
        "@EVALUATE_EXAMPLE@": "Those predictions scored against the example's labels "
        "(``example-miRNA.tsv``), with the baselines fitted on the bundled model's training data "
        "(``datasets/miRNA/train.tsv.gz``); the accuracy, MCC and AUROC rows::\n\n" + evaluate,
        "@MOTIFS_EXAMPLE@": motifs_note + "\n\n::\n\n" + known,
    }
    out = [
        "<!-- Made by galaxy/make_help.py from the model cards and real runs: do not edit by hand. -->",
        "<macros>",
    ]
    for name, text in tokens.items():
        out.append(f'    <token name="{name}"><![CDATA[\n{text}\n]]></token>')
    out.append("</macros>")
    text = "\n".join(out) + "\n"
    assert "]]>" not in "".join(tokens.values())
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when galaxy/help_macros.xml is out of date")
    args = ap.parse_args(argv)
    os.environ.setdefault("RNALOC_NO_PROGRESS", "1")
    text = render()
    if args.check:
        old = OUT.read_text() if OUT.exists() else ""
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), str(OUT), "now"))
            print(f"\n{OUT} is out of date: run python galaxy/make_help.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
