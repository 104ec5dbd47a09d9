"""Writing motifs: the MEME minimal motif format and sequence logos (PNG).

Biopython reads MEME files (``Bio.motifs.parse(handle, "minimal")``) but does
not write them, so :func:`meme_text` follows the MEME Suite's specification
(https://meme-suite.org/meme/doc/meme-format.html): ``MEME version 4``,
``ALPHABET= ACGU`` (the RNA alphabet; no ``strands:`` line, which is for
complementable alphabets), the background letter frequencies, then one
``MOTIF`` block per motif with a letter-probability matrix. The probabilities
are the site counts divided by ``nsites`` to six decimals, so the counts come
back exactly when the file is parsed (Biopython multiplies by ``nsites``).
``E=`` is the seed k-mer's p-value times the number of k-mers tested (an
E-value in MEME's sense). A ``#`` provenance line comes first: MEME Suite
programs and Biopython scan for the ``MEME version`` line, as they do in
MEME's own text output, which also has text before it.
"""

import logging
import os

import numpy as np

from ..fileio import atomic_output, atomic_path, make_output_dir, provenance_lines, safe_filename
from .discover import LETTERS

log = logging.getLogger("rnaloc")

#: The PNG ``Software`` tag of the logos, so that a later run can tell its own logos apart.
LOGO_SOFTWARE = "rnaloc motifs"


def meme_text(motifs, background, n_tests, tool="motifs"):
    lines = provenance_lines(tool)
    lines += [
        "MEME version 4",
        "",
        "ALPHABET= " + LETTERS,
        "",
        "Background letter frequencies (from the analysed sequences):",
        " ".join(f"{b} {f:.6f}" for b, f in zip(LETTERS, background)),
        "",
    ]
    for m in motifs:
        nsites = int(m.counts[0].sum())
        evalue = min(float(m.seed_row["p"]) * max(n_tests, 1), 1e300)
        lines.append(f"MOTIF {m.name} {consensus(m.counts)}")
        lines.append(f"letter-probability matrix: alength= 4 w= {m.width} nsites= {nsites} E= {evalue:.3g}")
        for row in m.counts:
            lines.append(" ".join(f"{c / nsites:.6f}" for c in row))
        lines.append("")
    return "\n".join(lines) + "\n"


def write_meme(path, motifs, background, n_tests):
    with atomic_output(path) as out:
        out.write(meme_text(motifs, background, n_tests))


def consensus(counts):
    """IUPAC consensus of a count matrix (Biopython's degenerate consensus, in RNA letters)."""
    from Bio import motifs as bio_motifs

    m = bio_motifs.Motif(alphabet=LETTERS, counts={b: counts[:, i].tolist() for i, b in enumerate(LETTERS)})
    return str(m.degenerate_consensus).replace("T", "U")


def write_logo(path, motif, subtitle=""):
    """A sequence logo (information content, bits) of ``motif`` as PNG, atomically."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    counts = pd.DataFrame(motif.counts, columns=list(LETTERS))
    info = logomaker.transform_matrix(counts, from_type="counts", to_type="information", pseudocount=0)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.55 * motif.width + 1.2), 2.4), dpi=120)
    try:
        logo = logomaker.Logo(info, ax=ax, color_scheme="classic")
        logo.style_spines(visible=False)
        logo.style_spines(spines=["left", "bottom"], visible=True)
        ax.set_ylim(0, 2)
        ax.set_ylabel("bits")
        ax.set_xticks(range(motif.width))
        ax.set_xticklabels([str(i + 1) for i in range(motif.width)])
        ax.set_title(f"{motif.name}  {consensus(motif.counts)}" + (f"\n{subtitle}" if subtitle else ""), fontsize=9)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": LOGO_SOFTWARE})
    finally:
        plt.close(fig)


def _is_our_logo(path):
    """Whether ``path`` is a logo an earlier ``rnaloc motifs`` run wrote (its PNG Software tag)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(image.info.get("Software", "")).startswith(LOGO_SOFTWARE)
    except Exception:  # not a PNG, unreadable: not ours, left alone
        return False


def logo_names(motifs):
    """{motif name: logo file name}: a safe file name (:func:`~rnaloc_tools.fileio.safe_filename`) per
    motif, unique within the run. Motif names hold class names, which come from files (a model's
    metadata, a dataset's labels): they never choose a path themselves."""
    names, used = {}, set()
    for m in motifs:
        stem = safe_filename(m.name)
        name, n = f"{stem}.png", 1
        while name in used:
            n += 1
            name = f"{stem}~{n}.png"
        used.add(name)
        names[m.name] = name
    return names


def write_logos(folder, motifs, subtitles):
    """Write one logo per motif into ``folder``; never delete anything.

    Logos an earlier run left in the folder that this run does not rewrite (it
    found fewer motifs) belong to no row of the new motifs.tsv: they are named
    in a warning, and left alone (a file this run did not write is never
    deleted, whatever its name or tag).
    """
    make_output_dir(folder)
    names = logo_names(motifs)
    paths = []
    for m in motifs:
        path = os.path.join(folder, names[m.name])
        write_logo(path, m, subtitles.get(m.name, ""))
        paths.append(path)
    written = set(names.values())
    earlier = sorted(
        name for name in os.listdir(folder)
        if name.endswith(".png") and name not in written and _is_our_logo(os.path.join(folder, name))
    )
    if earlier:
        shown = ", ".join(earlier[:5]) + (f" and {len(earlier) - 5} more" if len(earlier) > 5 else "")
        log.warning("%s holds %d logo(s) of an earlier run that this run did not rewrite (%s): they are "
                    "not motifs of this run; left in place", folder, len(earlier), shown)
    return paths


def background_frequencies(codes):
    return frequencies(np.bincount(codes[codes >= 0], minlength=4))


def frequencies(counts):
    """Letter frequencies A C G U from letter counts (uniform when there are none)."""
    counts = np.asarray(counts).astype(float)
    if counts.sum() == 0:
        return np.full(4, 0.25)
    return counts / counts.sum()
