"""Build a dataset TSV from an RNALocate-style export (the paper's section 2.1).

Steps, in order, each counted in a :class:`CurationReport`:

1. read the export (column names vary between exports: known variants are
   accepted, see :data:`COLUMN_ALIASES`);
2. keep the chosen species (default *Homo sapiens*; ``all`` keeps every
   species and then merges per species and symbol);
3. keep entries of the chosen RNA type (when the export has a type column);
4. drop entries without a gene symbol;
5. map each entry's localization term to a class or to "exclude"
   (:mod:`.terms`, or a ``--mapping`` TSV); unknown terms are an error that
   lists them, unless ``ignore_unknown`` (then they are set aside, still listed);
6. merge the class-mapped entries of one gene symbol into one RNA;
7. keep RNAs whose entries agree on one class (``strict``: and that have no
   entry in an excluded compartment either);
8. give each RNA its sequence: from the export's sequence column, else from
   a sequence file joined on the symbol or the entry id; RNAs without one
   are dropped;
9. drop classes with fewer than ``min_class_size`` RNAs.
"""

import io
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from .. import CLASSES
from ..errors import InputError, RnalocError
from ..fileio import atomic_output, display_name, is_stdio, open_binary_input
from ..formats.sequences import read_fasta_handle, sniff
from ..formats.tables import read_table, read_table_handle
from ..seqs import normalize
from .terms import DEFAULT_MAPPING, EXCLUDE, term_key

log = logging.getLogger("rnaloc")

DEFAULT_SPECIES = ("Homo sapiens",)
DEFAULT_MIN_CLASS_SIZE = 10

#: Canonical column -> accepted header names (compared case-insensitively, with
#: spaces, underscores, slashes and hyphens treated alike).
COLUMN_ALIASES = {
    "entry": ("RNALocate_ID", "RNALocate ID", "RLID", "Entry_ID", "Entry ID"),
    "symbol": ("RNA_Symbol", "RNA Symbol", "Gene_Symbol", "Gene Symbol", "Symbol", "RNA_Name", "Gene_Name"),
    "species": ("Species", "Organism"),
    "rna_type": ("RNA_Type", "RNA Type", "RNA_Category", "RNA Category"),
    "term": ("Subcellular_Localization", "Subcellular Localization", "Subcellular_Localisation",
             "Localization", "Localisation"),
    "sequence": ("Sequence", "Seq"),
}
REQUIRED = ("symbol", "term")
#: Key columns of a sequence table (``--sequences`` as TSV), in lookup order.
SEQUENCE_KEYS = ("id", "symbol", "entry", "gene_id")
_SEQUENCE_KEY_ALIASES = {
    "id": ("id", "ID", "Name"),
    "symbol": COLUMN_ALIASES["symbol"],
    "entry": COLUMN_ALIASES["entry"],
    "gene_id": ("Gene_ID", "Gene ID", "Accession"),
}


def _header_key(name):
    return re.sub(r"[\s_/\-]+", "_", str(name).strip()).casefold()


def _find_columns(columns, aliases):
    """canonical -> actual column name, for the canonical columns present."""
    present = {_header_key(c): c for c in columns}
    found = {}
    for canonical, names in aliases.items():
        for name in names:
            if _header_key(name) in present:
                found[canonical] = present[_header_key(name)]
                break
    return found


# --------------------------------------------------------------------------- mapping


def default_mapping_table(rna_types=None):
    """The default term mapping as a DataFrame (rna_type, term, class), for ``--show-mapping``."""
    rows = [
        (rna_type, term, cls)
        for rna_type in (rna_types or DEFAULT_MAPPING)
        for term, cls in DEFAULT_MAPPING[rna_type]
    ]
    return pd.DataFrame(rows, columns=["rna_type", "term", "class"])


def load_mapping(rna_type, path=None):
    """term key -> class (or EXCLUDE) for ``rna_type``: the default, or the rows of a TSV.

    The TSV has columns ``term`` and ``class`` and, optionally, ``rna_type``
    (then only the rows of this RNA type count). It replaces the default.
    """
    if path is None:
        pairs, source = DEFAULT_MAPPING[rna_type], "default mapping"
    else:
        table = read_table(path, require=("term", "class"))
        df, source = table.df, table.source
        if "rna_type" in df.columns:
            df = df[df["rna_type"].str.strip().str.casefold() == rna_type.casefold()]
        if df.empty:
            raise InputError(source, f"no mapping rows for {rna_type}")
        pairs = list(zip(df["term"], df["class"].str.strip()))
    allowed = CLASSES[rna_type] + (EXCLUDE,)
    mapping = {}
    for term, cls in pairs:
        if cls not in allowed:
            raise InputError(source, f"class {cls!r} is not one of {', '.join(allowed)} for {rna_type}", term)
        key = term_key(term)
        if mapping.get(key, cls) != cls:
            raise InputError(source, f"term mapped to both {mapping[key]!r} and {cls!r}", term)
        mapping[key] = cls
    return mapping


# --------------------------------------------------------------------------- report


@dataclass
class CurationReport:
    """Per-step counts. ``steps``: dicts with step, unit, count (kept), dropped, note."""

    source: str
    rna_type: str
    steps: list = field(default_factory=list)
    terms: list = field(default_factory=list)  # dicts: term, class, entries
    classes: dict = field(default_factory=dict)

    def step(self, name, unit, count, dropped=0, note=""):
        self.steps.append({"step": name, "unit": unit, "count": int(count), "dropped": int(dropped), "note": note})

    def to_json(self):
        return json.dumps(
            {"source": self.source, "rna_type": self.rna_type, "steps": self.steps,
             "terms": self.terms, "classes": self.classes},
            indent=2,
        )

    def to_frame(self):
        """One long table: section (step/term/class), name, count, dropped, note."""
        rows = [("step", s["step"], s["count"], s["dropped"], f"{s['unit']}; {s['note']}".rstrip("; "))
                for s in self.steps]
        rows += [("term", t["term"], t["entries"], "", t["class"]) for t in self.terms]
        rows += [("class", c, n, "", "") for c, n in self.classes.items()]
        return pd.DataFrame(rows, columns=["section", "name", "count", "dropped", "note"])

    def summary(self):
        lines = [f"{s['step']}: {s['count']} {s['unit']}"
                 + (f" ({s['dropped']} dropped{': ' + s['note'] if s['note'] else ''})"
                    if s["dropped"] else (f" ({s['note']})" if s["note"] else ""))
                 for s in self.steps]
        lines.append("classes: " + ", ".join(f"{c} {n}" for c, n in self.classes.items()))
        return lines


def write_report(report, path):
    """Write the report as JSON (``.json``) or TSV (anything else), atomically."""
    with atomic_output(path) as out:
        if os.fspath(path).lower().endswith(".json"):
            out.write(report.to_json() + "\n")
        else:
            report.to_frame().to_csv(out, sep="\t", index=False, lineterminator="\n")


def _counts_note(values, limit=8):
    counts = Counter(values).most_common()
    text = ", ".join(f"{k} {n}" for k, n in counts[:limit])
    return text + (f", ... ({len(counts) - limit} more)" if len(counts) > limit else "")


# --------------------------------------------------------------------------- inputs


def read_export(path):
    """The export as a DataFrame with canonical columns entry, symbol, term [species, rna_type, sequence]."""
    table = read_table(path)
    found = _find_columns(table.df.columns, COLUMN_ALIASES)
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        wanted = "; ".join(f"{c} (one of: {', '.join(COLUMN_ALIASES[c])})" for c in missing)
        raise InputError(table.source, f"missing column(s): {wanted} (the header has: {', '.join(table.df.columns)})")
    df = table.df[list(found.values())].rename(columns={v: k for k, v in found.items()})
    for col in df.columns:
        df[col] = df[col].str.strip()
    if "entry" not in df.columns:
        df["entry"] = [f"row {i + 2}" for i in range(len(df))]
    return df, table.source


def read_sequence_source(path):
    """key -> normalised sequence, from a FASTA (key: the header id) or a TSV sequence table.

    A TSV needs a ``Sequence`` column and one or more key columns (id, symbol,
    entry id, gene id: see :data:`_SEQUENCE_KEY_ALIASES`); every key column is indexed.
    """
    source = display_name(path)
    handle = open_binary_input(path)
    try:
        fmt, stream = sniff(handle, source)
        text = io.TextIOWrapper(stream, encoding="utf-8", newline=None)
        if fmt == "fasta":
            return {r.id: r.seq for r in read_fasta_handle(text, source)}
        table = read_table_handle(text, source)
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not a text file ({exc.reason})") from None
    finally:
        if not is_stdio(path):
            handle.close()
    seq_col = _find_columns(table.df.columns, {"sequence": COLUMN_ALIASES["sequence"]}).get("sequence")
    keys = _find_columns(table.df.columns, _SEQUENCE_KEY_ALIASES)
    if seq_col is None or not keys:
        raise InputError(
            source,
            "a sequence table needs a Sequence column and a key column (id, symbol or gene id) "
            f"(the header has: {', '.join(table.df.columns)})",
        )
    out = {}
    for _, row in table.df.iterrows():
        seq = row[seq_col].strip()
        if not seq:
            continue
        rid = next((row[c] for c in keys.values() if row[c].strip()), "?")
        seq = normalize(seq, source=source, record=rid)
        for col in keys.values():
            key = row[col].strip()
            if not key:
                continue
            if out.get(key, seq) != seq:
                raise InputError(source, "key given two different sequences", key)
            out[key] = seq
    return out


# --------------------------------------------------------------------------- curation


def _pick_sequence(seqs):
    """The most frequent non-empty sequence, ties to the longest (then the first)."""
    seqs = [s for s in seqs if s]
    if not seqs:
        return ""
    counts = Counter(seqs)
    return max(counts, key=lambda s: (counts[s], len(s)))


def curate(export, rna_type, *, species=DEFAULT_SPECIES, mapping=None, sequences=None,
           min_class_size=DEFAULT_MIN_CLASS_SIZE, ignore_unknown=False, strict=False):
    """Curate an export into a dataset DataFrame; returns ``(df, report)``.

    ``species``: names to keep (case-insensitive), or ``None``/``("all",)`` for all.
    ``mapping``: path of a mapping TSV (default: :mod:`.terms`).
    ``sequences``: path of a FASTA or sequence table joined on symbol or entry id.
    """
    if rna_type not in CLASSES:
        raise RnalocError(f"unknown RNA type {rna_type!r} (known: {', '.join(CLASSES)})")
    term_map = load_mapping(rna_type, mapping)
    df, source = read_export(export)
    report = CurationReport(source, rna_type)
    report.step("read", "entries", len(df))

    # 2. species
    all_species = not species or any(s.strip().casefold() == "all" for s in species)
    if not all_species:
        if "species" not in df.columns:
            raise InputError(
                source,
                f"missing column: species (one of: {', '.join(COLUMN_ALIASES['species'])}); "
                "use --species all for an export without one",
            )
        wanted = {s.strip().casefold() for s in species}
        keep = df["species"].str.casefold().isin(wanted)
        report.step("species", "entries", keep.sum(), (~keep).sum(),
                    f"kept {', '.join(species)}; dropped {_counts_note(df.loc[~keep, 'species'])}" if (~keep).any()
                    else f"kept {', '.join(species)}")
        df = df[keep]
    else:
        report.step("species", "entries", len(df), 0, "all species kept")
    if "species" not in df.columns:
        df = df.assign(species="")

    # 3. RNA type
    if "rna_type" in df.columns:
        keep = df["rna_type"].str.casefold() == rna_type.casefold()
        report.step("rna_type", "entries", keep.sum(), (~keep).sum(),
                    _counts_note(df.loc[~keep, "rna_type"]) if (~keep).any() else "")
        df = df[keep]

    # 4. symbol
    keep = df["symbol"] != ""
    if (~keep).any():
        report.step("symbol", "entries", keep.sum(), (~keep).sum(), "entries without a gene symbol")
        df = df[keep]

    # 5. terms
    df = df.assign(term_key=df["term"].map(term_key))
    df = df.assign(cls=df["term_key"].map(term_map))
    spelling = df.groupby("term_key", sort=False)["term"].first()
    counts = df["term_key"].value_counts()
    for key, n in counts.items():
        report.terms.append({"term": spelling[key], "class": term_map.get(key, "unknown"), "entries": int(n)})
    unknown = df["cls"].isna()
    if unknown.any():
        listed = _counts_note(df.loc[unknown, "term"], limit=50)
        if not ignore_unknown:
            raise InputError(
                source,
                f"unknown localization term(s) for {rna_type}: {listed}; map them in a --mapping TSV "
                "(start from `rnaloc curate --show-mapping`) or pass --ignore-unknown",
            )
        log.warning("ignoring entries with unknown localization term(s): %s", listed)
    excluded = df["cls"] == EXCLUDE
    in_class = df["cls"].isin(CLASSES[rna_type])
    notes = [f"{excluded.sum()} excluded ({_counts_note(df.loc[excluded, 'term'], 5)})"] if excluded.any() else []
    if unknown.any():
        notes.append(f"{unknown.sum()} unknown, ignored")
    report.step("terms", "entries", in_class.sum(), (~in_class).sum(), "; ".join(notes))

    # sequences per RNA from every entry of the symbol (the sequence belongs to the gene)
    key_cols = ["species", "symbol"]
    if "sequence" in df.columns:
        nonempty = df[df["sequence"] != ""]
        normalised = [normalize(s, source=source, record=e) for s, e in zip(nonempty["sequence"], nonempty["entry"])]
        per_rna = pd.Series(normalised, index=nonempty.index).groupby([nonempty["species"], nonempty["symbol"]])
        export_seq = per_rna.agg(lambda s: _pick_sequence(list(s)))
        conflicts = int((per_rna.nunique() > 1).sum())
        if conflicts:
            log.warning("%d RNA(s) have entries with different sequences: kept the most frequent, "
                        "ties to the longest", conflicts)
    else:
        export_seq = pd.Series(dtype=str)
    excluded_rnas = set(map(tuple, df.loc[excluded, key_cols].drop_duplicates().itertuples(index=False)))

    # 6. merge by symbol
    entries = df[in_class]
    rnas = (
        entries.groupby(key_cols, sort=False)
        .agg(labels=("cls", lambda s: sorted(set(s))), entries=("entry", list),
             terms=("term", lambda s: ";".join(dict.fromkeys(s))))
        .reset_index()
    )
    report.step("merge", "RNAs", len(rnas), 0, f"{len(entries)} entries merged by gene symbol")

    # 7. single class
    single = rnas["labels"].map(len) == 1
    report.step("single_class", "RNAs", single.sum(), (~single).sum(),
                "RNAs with entries in both classes" if (~single).any() else "")
    rnas = rnas[single].copy()
    rnas["label"] = rnas["labels"].map(lambda s: s[0])
    also_excluded = [(sp, sy) in excluded_rnas for sp, sy in zip(rnas["species"], rnas["symbol"])]
    also_excluded = pd.Series(also_excluded, index=rnas.index, dtype=bool)
    if strict:
        report.step("strict", "RNAs", (~also_excluded).sum(), also_excluded.sum(),
                    "RNAs also seen in an excluded compartment")
        rnas = rnas[~also_excluded]
    elif also_excluded.any():
        log.info("%d kept RNA(s) also have entries in excluded compartments (--strict drops them)",
                 also_excluded.sum())

    # 8. sequences
    seq = [export_seq.get((sp, sy), "") for sp, sy in zip(rnas["species"], rnas["symbol"])]
    from_export = sum(bool(s) for s in seq)
    from_file = 0
    if sequences is not None:
        lookup = read_sequence_source(sequences)
        for i, (sym, ents) in enumerate(zip(rnas["symbol"], rnas["entries"])):
            if seq[i]:
                continue
            for key in [sym] + ents:
                if key in lookup:
                    seq[i] = lookup[key]
                    from_file += 1
                    break
    rnas["sequence"] = seq
    has = rnas["sequence"] != ""
    note = f"{from_export} from the export" + (f", {from_file} from {display_name(sequences)}" if sequences else "")
    if (~has).any():
        note += f"; {(~has).sum()} RNAs without a sequence"
    report.step("sequence", "RNAs", has.sum(), (~has).sum(), note)
    rnas = rnas[has]

    # 9. class size
    sizes = rnas["label"].value_counts()
    small = sorted(c for c, n in sizes.items() if n < min_class_size)
    keep = ~rnas["label"].isin(small)
    report.step("min_class_size", "RNAs", keep.sum(), (~keep).sum(),
                f"classes under {min_class_size}: {', '.join(f'{c} ({sizes[c]})' for c in small)}" if small else "")
    rnas = rnas[keep]
    report.classes = {c: int((rnas["label"] == c).sum()) for c in CLASSES[rna_type]}
    if rnas.empty:
        for line in report.summary()[:-1]:
            log.info("%s", line)
        empty = next(s for s in report.steps if s["count"] == 0)
        raise InputError(
            source,
            f"nothing left after filtering: step '{empty['step']}' kept 0 of {empty['dropped']} {empty['unit']}"
            + (f" ({empty['note']})" if empty["note"] else ""),
        )
    if (rnas["label"].nunique()) < 2:
        log.warning("only one class left (%s): a classifier cannot be trained on it", rnas["label"].iloc[0])

    out = pd.DataFrame({
        "id": _ids(rnas["symbol"], rnas["species"]),
        "rna_type": rna_type,
        "label": rnas["label"].to_numpy(),
        "sequence": rnas["sequence"].to_numpy(),
        "species": rnas["species"].to_numpy(),
        "source": os.path.basename(source),
        "entries": [",".join(e) for e in rnas["entries"]],
        "terms": rnas["terms"].to_numpy(),
    })
    return out, report


def _ids(symbols, species):
    """Gene symbols as ids (white space -> '_'); a symbol in several species gets the species added."""
    base = [re.sub(r"\s+", "_", s) for s in symbols]
    dup = {b for b, n in Counter(base).items() if n > 1}
    return [f"{b}_{re.sub(r'[^A-Za-z0-9]+', '_', sp)}" if b in dup else b for b, sp in zip(base, species)]
