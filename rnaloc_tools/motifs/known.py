"""Known localization motifs, matched as IUPAC patterns, inside and outside important regions.

The motifs the paper checks (section 3.3): lncRNA AGCCC (Zhang et al. 2014)
and RCCUCCC (Lubelsky and Ulitsky 2018), both nuclear; miRNA AGUGUU and its
variants UGUGUU, AGAGUU, ACUCUU, AGUGAU, AGUGUA, AGNGUN (Hwang et al. 2007),
nuclear, i.e. the ``intracellular`` class; circRNA GAUGAA, an SRSF1 site
enriched in nuclear circRNAs (Barbagallo et al. 2021).

For each motif and each class (and all sequences together) the table counts
the sequences, those holding the motif, and its occurrences entirely inside
important nucleotides, entirely outside them, or across a boundary. Two
one-sided tests, both on sequence presence like the k-mer test:

- ``p``: the motif lies in important nucleotides of more sequences than in
  unimportant ones (the attention focuses on it), Fisher exact;
- ``p_class``: more sequences of this class than of the other class(es) hold
  the motif anywhere (the motif goes with the class), Fisher exact.

Both get Benjamini-Hochberg q-values over the rows of the table.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, hypergeom

from ..errors import InputError
from .discover import LETTERS

#: IUPAC code -> the bases it stands for (RNA letters).
IUPAC = {
    "A": "A", "C": "C", "G": "G", "U": "U", "T": "U",
    "R": "AG", "Y": "CU", "S": "CG", "W": "AU", "K": "GU", "M": "AC",
    "B": "CGU", "D": "AGU", "H": "ACU", "V": "ACG", "N": "ACGU",
}  # fmt: skip


@dataclass(frozen=True)
class KnownMotif:
    name: str
    iupac: str
    rna_type: str
    cls: str  # the class the motif is reported to send RNAs to
    reference: str


KNOWN_MOTIFS = (
    KnownMotif("AGCCC", "AGCCC", "lncRNA", "nucleus", "Zhang et al. 2014"),
    KnownMotif("RCCUCCC", "RCCUCCC", "lncRNA", "nucleus", "Lubelsky and Ulitsky 2018"),
    KnownMotif("AGUGUU", "AGUGUU", "miRNA", "intracellular", "Hwang et al. 2007"),
    KnownMotif("UGUGUU", "UGUGUU", "miRNA", "intracellular", "Hwang et al. 2007"),
    KnownMotif("AGAGUU", "AGAGUU", "miRNA", "intracellular", "Hwang et al. 2007"),
    KnownMotif("ACUCUU", "ACUCUU", "miRNA", "intracellular", "Hwang et al. 2007"),
    KnownMotif("AGUGAU", "AGUGAU", "miRNA", "intracellular", "Hwang et al. 2007"),
    KnownMotif("AGUGUA", "AGUGUA", "miRNA", "intracellular", "Hwang et al. 2007"),
    KnownMotif("AGNGUN", "AGNGUN", "miRNA", "intracellular", "Hwang et al. 2007"),
    KnownMotif("GAUGAA", "GAUGAA", "circRNA", "nucleus", "Barbagallo et al. 2021 (SRSF1 site)"),
)


def read_known_motifs(path):
    """A user's motif list: TSV with columns name, iupac, and optionally rna_type, class, reference."""
    from ..formats import read_table

    table = read_table(path, require=("name", "iupac"))
    if table.df.empty:
        raise InputError(table.source, "empty input: no motifs")
    out = []
    for d in table.df.to_dict("records"):
        iupac = d["iupac"].strip().upper().replace("T", "U")
        bad = set(iupac) - set(IUPAC)
        if not iupac or bad:
            raise InputError(table.source, f"not an IUPAC nucleotide pattern: {d['iupac']!r}", d["name"])
        out.append(KnownMotif(d["name"], iupac, d.get("rna_type", ""), d.get("class", ""), d.get("reference", "")))
    return tuple(out)


def motifs_for(rna_type, motifs=KNOWN_MOTIFS):
    """The motifs of ``rna_type`` (all of them when the RNA type is unknown or has none listed)."""
    chosen = tuple(m for m in motifs if not m.rna_type or m.rna_type == rna_type)
    return chosen or tuple(motifs)


def match_starts(codes, iupac):
    """Start positions in the concatenated code vector where the IUPAC pattern matches."""
    w = len(iupac)
    n = len(codes) - w + 1
    if n <= 0:
        return np.zeros(0, np.int64)
    ok = np.ones(n, bool)
    for j, ch in enumerate(iupac):
        allowed = np.zeros(5, bool)  # index 4 stands for -1 (not A/C/G/U, separator)
        for base in IUPAC[ch]:
            allowed[LETTERS.index(base)] = True
        ok &= allowed[codes[j : j + n]]
    return np.flatnonzero(ok)


def _fisher_greater(a, n_a, b, n_b):
    return float(np.clip(hypergeom.sf(a - 1, n_a + n_b, a + b, n_a), 0.0, 1.0)) if n_a and n_b else float("nan")


_COUNTS = ("sequences", "with_motif", "occurrences", "in_important", "in_other", "partial",
           "sequences_important", "sequences_other")


class KnownCounter:
    """Counts of the known motifs per class, added part by part (whole sequences in each part).

    :meth:`add` takes an annotated part (:func:`~.discover.annotate`) whose ``cls`` holds each
    sequence's class; :meth:`table` gives the known-motif table of everything added.
    """

    def __init__(self, classes, motifs):
        self.classes = list(classes)
        self.motifs = tuple(motifs)
        self.counts = {(m.name, c): dict.fromkeys(_COUNTS, 0) for m in self.motifs for c in self.classes}

    def add(self, ann):
        imp = ann.important
        cum = np.concatenate(([0], np.cumsum(imp, dtype=np.int64)))
        n_seq = len(ann.starts)
        sels = [(c, ann.cls == c) for c in self.classes]
        for m in self.motifs:
            w = len(m.iupac)
            starts = match_starts(ann.codes, m.iupac)
            n_imp = cum[starts + w] - cum[starts]
            inside = n_imp == w
            outside = n_imp == 0
            seq = ann.seq_index[starts]
            has = np.zeros(n_seq, bool)
            has[seq] = True
            has_in = np.zeros(n_seq, bool)
            has_in[seq[inside]] = True
            has_out = np.zeros(n_seq, bool)
            has_out[seq[outside]] = True
            for cls, sel in sels:
                occ = sel[seq]
                c = self.counts[(m.name, cls)]
                c["sequences"] += int(sel.sum())
                c["with_motif"] += int(has[sel].sum())
                c["occurrences"] += int(occ.sum())
                c["in_important"] += int((inside & occ).sum())
                c["in_other"] += int((outside & occ).sum())
                c["partial"] += int((~inside & ~outside & occ).sum())
                c["sequences_important"] += int(has_in[sel].sum())
                c["sequences_other"] += int(has_out[sel].sum())

    def table(self):
        """The known-motif table (one row per motif and class, plus class ``all``)."""
        rows = []
        for m in self.motifs:
            per = {c: self.counts[(m.name, c)] for c in self.classes}
            total = {key: sum(c[key] for c in per.values()) for key in _COUNTS}
            groups = list(per.items())
            if len(self.classes) > 1:
                groups.append(("all", total))
            for cls, c in groups:
                n = c["sequences"]
                if n == 0:
                    continue
                a, b = c["sequences_important"], c["sequences_other"]
                n_others = total["sequences"] - n
                with_others = total["with_motif"] - c["with_motif"]
                p_class = float("nan")
                if cls != "all" and n_others:
                    p_class = _fisher_greater(c["with_motif"], n, with_others, n_others)
                rows.append(
                    {
                        "motif": m.name,
                        "iupac": m.iupac,
                        "reported_class": m.cls or "",
                        "class": cls,
                        "sequences": n,
                        "with_motif": c["with_motif"],
                        "occurrences": c["occurrences"],
                        "in_important": c["in_important"],
                        "in_other": c["in_other"],
                        "partial": c["partial"],
                        "sequences_important": a,
                        "sequences_other": b,
                        "p": _fisher_greater(a, n, b, n),
                        "fraction_with_motif": np.int64(c["with_motif"]) / np.int64(n),
                        "fraction_with_motif_other_classes": (np.int64(with_others) / np.int64(n_others)) if n_others else float("nan"),
                        "p_class": p_class,
                    }
                )
        df = pd.DataFrame(rows)
        if df.empty:
            return df
        for col in ("p", "p_class"):
            q = np.full(len(df), np.nan)
            ok = df[col].notna().to_numpy()
            if ok.any():
                q[ok] = false_discovery_control(df.loc[ok, col].to_numpy(), method="bh")
            df.insert(df.columns.get_loc(col) + 1, "q" if col == "p" else "q_class", q)
        return df


def check_known(ann, classes, motifs):
    """The known-motif table (one row per motif and class, plus class ``all``) of sequences in memory."""
    counter = KnownCounter(classes, motifs)
    counter.add(ann)
    return counter.table()
