"""Redundancy removal with CD-HIT-EST: a ``cluster`` column, then representatives or all rows."""

import logging
from dataclasses import dataclass

from ..errors import InputError
from .cdhit import DEFAULT_MIN_LENGTH, check_names, cluster, clustering_from, copy_clstr, parse_clstr, word_size

log = logging.getLogger("rnaloc")

KEEP = ("representatives", "all")


@dataclass
class DedupStats:
    sequences: int
    clusters: int
    kept: int
    too_short: int
    mixed_label_clusters: int

    def summary(self, keep, program):
        text = (f"{self.sequences} sequences -> {self.clusters} clusters ({program}); "
                f"kept {self.kept} {'representatives' if keep == 'representatives' else 'rows'}")
        if self.too_short:
            text += f"; {self.too_short} sequence(s) too short for cd-hit-est kept as singleton clusters"
        if self.mixed_label_clusters:
            text += f"; {self.mixed_label_clusters} cluster(s) hold more than one label"
        return text


def dedup(table, identity=0.8, *, keep="representatives", threads=None, memory_mb=0, both_strands=True,
          min_length=DEFAULT_MIN_LENGTH, clstr=None, save_clstr=None):
    """Cluster the rows of a dataset :class:`~rnaloc_tools.formats.Table` with cd-hit-est.

    Adds ``cluster`` (the id of the cluster's representative, the longest
    sequence, as cd-hit-est chooses) and ``cluster_size``; with ``keep=
    "representatives"`` only representatives remain. ``clstr``: read the
    clusters from an existing cd-hit-est ``.clstr`` (names = dataset ids)
    instead of running cd-hit-est. Returns ``(df, stats, program)``.
    """
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}")
    df = table.df.copy()
    seqs = dict(zip(df["id"], df["sequence"]))
    if clstr is not None:
        clustering = clustering_from(parse_clstr(clstr), seqs, str(clstr))
        # cd-hit-est lists every sequence longer than its -l: a longer one missing means the
        # clusters were made from other data (or with another -l), not that it is too short
        absent = [name for name in clustering.too_short if len(seqs[name]) > min_length]
        if absent:
            raise InputError(str(clstr), f"{len(absent)} sequence(s) of the input longer than --min-length "
                             f"{min_length} nt are not in it (clusters of other data, or made with another -l?)",
                             absent[0])
        program = f"clusters from {clstr}"
        if save_clstr is not None:  # the clusters used are the ones given: keep them where asked
            copy_clstr(clstr, save_clstr)
    else:
        check_names(seqs, table.source)
        clustering = cluster(seqs, identity, threads=threads, memory_mb=memory_mb, both_strands=both_strands,
                             min_length=min_length, save_clstr=save_clstr)
        program = f"cd-hit-est -c {identity} -n {word_size(identity)}"
    if clustering.too_short:
        log.warning("%d sequence(s) of %d nt or shorter are not clustered by cd-hit-est (its -l): "
                    "each is its own cluster, e.g. %s", len(clustering.too_short), min_length,
                    clustering.too_short[0])
    if "cluster" in df.columns:
        log.warning("the input already has a 'cluster' column: it is replaced")
    df["cluster"] = df["id"].map(clustering.representative)
    df["cluster_size"] = df.groupby("cluster")["id"].transform("size")
    mixed = int((df.groupby("cluster")["label"].nunique() > 1).sum()) if "label" in df.columns else 0
    if keep == "representatives":
        df = df[df["id"] == df["cluster"]]
    stats = DedupStats(len(seqs), df["cluster"].nunique(), len(df), len(clustering.too_short), mixed)
    return df, stats, program
