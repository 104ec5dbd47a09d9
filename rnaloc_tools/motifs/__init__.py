"""Attention-based motif discovery (the library behind ``rnaloc motifs``).

RNALoc-LM's interpretability analysis (paper section 3.3), which its authors
did not release as code: nucleotides whose attention exceeds their
sequence's median are important; runs of them are candidate regions; k-mers
over-represented in those regions (Fisher exact test, Benjamini-Hochberg)
are merged into position weight matrices, written as a table, a MEME motif
file and sequence logos; known localization motifs are checked by IUPAC
matching. See :mod:`.discover` for the method and :mod:`.known` for the
known motifs.

Python users call :func:`run_motifs` (files in, files out; it streams, in
bounded memory: :mod:`.stream`) or :func:`find_motifs` (sequences with
attention in, tables out; everything in memory, the same results).
"""

import contextlib
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..fileio import declare_outputs, make_output_dir, temporary_folder
from ..formats import write_table
from .discover import (
    BACKGROUNDS,
    Params,
    annotate,
    decode,
    merge_kmers,
    parse_threshold,
    test_kmers,
)
from .inputs import ALL, CLASS_SOURCES, MotifInput, Sequence, load_inputs
from .known import KNOWN_MOTIFS, KnownMotif, check_known, motifs_for, read_known_motifs
from .writers import (
    background_frequencies,
    consensus,
    meme_text,
    write_logos,
    write_meme,
)

__all__ = [
    "ALL",
    "BACKGROUNDS",
    "CLASS_SOURCES",
    "KNOWN_MOTIFS",
    "KnownMotif",
    "MotifInput",
    "MotifResult",
    "Outputs",
    "Params",
    "Sequence",
    "find_motifs",
    "load_inputs",
    "meme_text",
    "parse_threshold",
    "predict_attention",
    "run_motifs",
]

log = logging.getLogger("rnaloc")

MOTIF_COLUMNS = [
    "motif", "class", "consensus", "seed", "width", "kmers", "support", "n", "support_fraction",
    "background_support", "background_n", "background_fraction", "enrichment", "p", "q", "sites",
    "sequences_with_motif",
]  # fmt: skip
REGION_COLUMNS = ["id", "start", "end", "class", "mean_attention", "max_attention", "threshold", "sequence"]


@dataclass
class MotifResult:
    motifs: list  # discover.Motif
    table: pd.DataFrame  # motifs.tsv
    tested: pd.DataFrame  # every k-mer tested (run_motifs: the significant ones merging looks at, see stream._test)
    known: pd.DataFrame  # known_motifs.tsv
    regions: pd.DataFrame  # regions.tsv
    background: object  # letter frequencies A C G U
    n_tests: int
    meta: dict = field(default_factory=dict)
    regions_file: str = None  # the regions rows, when a streaming run left them in a file (regions is None)


@dataclass
class Outputs:
    """Where results go; None skips an output."""

    motifs: str = None
    meme: str = None
    logos: str = None  # a folder
    regions: str = None
    known: str = None

    @classmethod
    def in_folder(cls, folder, **overrides):
        o = cls(
            motifs=os.path.join(folder, "motifs.tsv"),
            meme=os.path.join(folder, "motifs.meme"),
            logos=os.path.join(folder, "logos"),
            regions=os.path.join(folder, "regions.tsv"),
            known=os.path.join(folder, "known_motifs.tsv"),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(o, key, value)
        return o

    def files(self):
        return [p for p in (self.motifs, self.meme, self.regions, self.known) if p]


def find_motifs(sequences, classes, params=None, known_motifs=KNOWN_MOTIFS, rna_type=None):
    """Discover motifs in ``sequences`` (a list of :class:`Sequence`); return a :class:`MotifResult`."""
    params = params or Params()
    params.check()
    _check_background(params, classes)
    present = [c for c in classes if any(s.cls == c for s in sequences)]
    ann = annotate(sequences, params)
    log.info(
        "%d sequences (%s), %d candidate regions of >= %d important nt",
        len(sequences),
        ", ".join(f"{c}: {sum(s.cls == c for s in sequences)}" for c in present),
        len(ann.regions),
        params.min_length,
    )
    flat = [s.id for s in sequences if not (s.attention > s.attention.min()).any()] if sequences else []
    if flat:
        log.warning(
            "%d of %d sequences have flat attention (no position above the others, e.g. %s): they have no "
            "important positions", len(flat), len(sequences), flat[0],
        )
    tested, windows = test_kmers(ann, params, present)
    n_tests = len(tested)
    n_sig = int(((tested["q"] <= params.alpha) & (tested["enrichment"] > 1)).sum()) if n_tests else 0
    log.info("%d k-mers tested (k = %d..%d), %d significant at q <= %g", n_tests, params.k_min, params.k_max, n_sig, params.alpha)
    motifs = merge_kmers(ann, tested, windows, params, present)
    table = motif_table(motifs)
    _log_motifs(motifs)
    known = check_known(ann, present, motifs_for(rna_type, known_motifs)) if known_motifs else pd.DataFrame()
    regions = pd.DataFrame(ann.regions, columns=REGION_COLUMNS)
    return MotifResult(motifs, table, tested, known, regions, background_frequencies(ann.codes), n_tests)


def _check_background(params, classes):
    if params.background == "other-class" and len(classes) < 2:
        from ..errors import RnalocError

        raise RnalocError("--background other-class needs sequences of two classes (labels or predictions)")


def motif_table(motifs):
    """The motifs.tsv table of ``motifs``."""
    rows = []
    for m in motifs:
        r = m.seed_row
        rows.append(
            {
                "motif": m.name,
                "class": m.cls,
                "consensus": consensus(m.counts),
                "seed": decode(int(r["code"]), int(r["k"])),
                "width": m.width,
                "kmers": len(m.members),
                "support": int(r["support"]),
                "n": int(r["n"]),
                "support_fraction": r["support"] / r["n"],
                "background_support": int(r["background_support"]),
                "background_n": int(r["background_n"]),
                "background_fraction": r["background_support"] / r["background_n"],
                "enrichment": float(r["enrichment"]),
                "p": float(r["p"]),
                "q": float(r["q"]),
                "sites": m.sites,
                "sequences_with_motif": m.support_any,
            }
        )
    return pd.DataFrame(rows, columns=MOTIF_COLUMNS)


def _log_motifs(motifs):
    if motifs:
        log.info("%d motif(s): %s", len(motifs), ", ".join(f"{m.name} {consensus(m.counts)}" for m in motifs[:10]))
    else:
        log.info("no significant motifs")


def _format(df):
    df = df.copy()
    for col in df.columns:
        if df[col].dtype.kind == "f":
            df[col] = df[col].map(lambda v: "NA" if pd.isna(v) else f"{v:.4g}")
    return df


def write_outputs(result, outputs, params):
    """Write every requested output, each atomically (the logo folder file by file)."""
    settings = (
        f"#rnaloc motifs settings: threshold={params.threshold} min_length={params.min_length} "
        f"k={params.k_min}..{params.k_max} background={params.background} min_support={params.min_support} "
        f"alpha={params.alpha} tests={result.n_tests}"
    )
    if outputs.motifs:
        write_table(_format(result.table), outputs.motifs, "motifs", header=[settings])
    if outputs.meme:
        write_meme(outputs.meme, result.motifs, result.background, result.n_tests)
    if outputs.regions and result.regions is not None:
        write_table(_format(result.regions), outputs.regions, "motifs", header=[settings])
    elif outputs.regions:  # rows streamed to a file, chunk by chunk, formatted the same way
        write_table(pd.DataFrame(columns=REGION_COLUMNS), outputs.regions, "motifs", header=[settings],
                    body=result.regions_file)
    if outputs.known and not result.known.empty:
        write_table(_format(result.known), outputs.known, "motifs", header=[settings])
    if outputs.logos:  # also with no motifs: logos of an earlier run in the folder are named
        subtitles = {
            r["motif"]: f"{r['class']}: {r['support']}/{r['n']} seqs, enrichment {r['enrichment']:.2f}, q {r['q']:.2g}"
            for r in result.table.to_dict("records")
        }
        write_logos(outputs.logos, result.motifs, subtitles)


def predict_attention(records, model=None, rna_type=None, attention_path=None, **predict_options):
    """Run a model on ``records`` (any iterable: read a chunk at a time); return (predictions
    DataFrame, attention metadata to add).

    The direct path of ``rnaloc motifs --model/--rna-type``: the same
    :func:`rnaloc_tools.predict.predict_records` as ``rnaloc predict --attention``.
    """
    from ..predict import load_model, predict_records

    loaded = load_model(model, rna_type, provider=predict_options.get("provider", "auto"),
                        threads=predict_options.get("threads"))
    log.info("model %s (%s, %s encoder)", loaded.name, loaded.rna_type, loaded.encoder.get("encoder"))
    frame = predict_records(records, loaded, attention_path, **predict_options)
    extra = {
        "long_policy": predict_options.get("long_policy", "truncate"),
        "max_length": loaded.encoder.get("max_length"),
        "model_max_length": loaded.max_length,
    }
    return frame, extra


def run_motifs(attention_paths, sequences_path, outputs, *, predictions=None, class_from="auto", params=None,
               known_motifs_path=None, use_known=True, model=None, rna_type=None, predict_options=None,
               chunk_nt=None, tmp_dir=None):
    """Files in, files out: read and check the inputs, find motifs, write the outputs.

    With ``attention_paths`` empty, ``model`` (an ONNX file) or ``rna_type`` (its
    bundled model) is run on the sequences first, and its predicted classes are
    used unless ``class_from`` says otherwise.

    Streams (:mod:`.stream`): the input is analysed ``chunk_nt`` nucleotides at a time
    (default :data:`.stream.CHUNK_NT`, half a million), so memory does not grow with the input; the k-mer counts of
    k > 10 and the sequences' letters go to a temporary folder in ``tmp_dir`` (default
    ``$TMPDIR``). The outputs are those :func:`find_motifs` gives on the same input.
    """

    from ..embed import DEFAULT_CHUNK_RECORDS
    from ..fileio import display_name
    from ..formats import read_records
    from .inputs import assign_classes, check_class_source, check_pairing, read_attention
    from .stream import CHUNK_NT, SequenceIndex, StoreSequences, stream_motifs

    params = params or Params()
    params.check()
    check_class_source(class_from)
    # before any work: each output writable, none the same file as an input or another output; inside
    # a tool run they are committed together at the end (all or none)
    folders = {os.path.dirname(os.path.abspath(p)) for p in outputs.files() if p != "-"}
    labelled = [(f"--{name}", getattr(outputs, name)) for name in ("motifs", "meme", "regions", "known")]
    declare_outputs(files=[(label, p) for label, p in labelled if p],
                    folders=[f for f in sorted(folders) if not os.path.isdir(f)] + [("--logos", outputs.logos)])
    known_motifs = read_known_motifs(known_motifs_path) if known_motifs_path else (KNOWN_MOTIFS if use_known else ())
    seq_source = display_name(sequences_path)
    with temporary_folder("rnaloc-motifs-", tmp_dir) as tmp:
        extra_meta, spool = None, os.path.join(tmp, "sequences")
        # the spool's descriptor is closed on every way out of this block (one close, not one per branch)
        with contextlib.ExitStack() as stack:
            if not attention_paths:
                if model is None and rna_type is None:
                    from ..errors import RnalocError

                    raise RnalocError("give attention NPZ files, or a model (--model) or an RNA type (--rna-type) to run")
                # the whole file is read (and checked) before the model runs on the spooled copy
                index = stack.enter_context(SequenceIndex(read_records(sequences_path, source=seq_source), spool))
                attention_paths = [os.path.join(tmp, "attention.npz")]
                frame, extra_meta = predict_attention(index.records(), model, rna_type, attention_paths[0],
                                                      **(predict_options or {}))
                if predictions is None:
                    predictions = frame
                store = read_attention(attention_paths)
            else:
                store = read_attention(attention_paths)
                index = stack.enter_context(SequenceIndex(read_records(sequences_path, source=seq_source), spool))
            if not len(index):
                from ..errors import InputError

                raise InputError(seq_source, "empty input: no sequences")
            meta = dict(store.meta, **(extra_meta or {}))
            ids = store.ids
            index.use_order(ids, store.position)
            check_pairing(store, index.ids, index.length, seq_source, meta)
            rna_type, classes, class_source, cls_of = assign_classes(
                meta, ids, index.label_of(ids), set(index.rna_types), predictions, class_from, seq_source)
            del ids
            log.info("classes from %s; RNA type %s", class_source, rna_type or "unknown")
            _check_background(params, classes)
            source = StoreSequences(store, index, meta, cls_of, chunk_nt or CHUNK_NT, DEFAULT_CHUNK_RECORDS)
            del cls_of
            found = stream_motifs(source, classes, params, known_motifs, rna_type, tmp, REGION_COLUMNS, _format)
        _log_motifs(found.motifs)
        result = MotifResult(found.motifs, motif_table(found.motifs), found.tested, found.known, None,
                             found.background, found.n_tests, meta, regions_file=found.regions_rows)
        for path in outputs.files() + ([outputs.logos] if outputs.logos else []):
            if path and path != "-":
                make_output_dir(path if path == outputs.logos else os.path.dirname(os.path.abspath(path)))
        write_outputs(result, outputs, params)
    result.regions_file = None
    return result
