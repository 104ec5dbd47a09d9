"""rnaloc predict: applicability domain, confidence, RNA-type routing, model identity, --no-header, --plot.

Until the bundled models carry their applicability domain, ``domain_models`` copies them
with a domain fitted on their training tables (datasets/) and points the bundled-model
lookup at the copies.
"""

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaloc_tools import CLASSES
from rnaloc_tools.bundled import bundled_models
from rnaloc_tools.domain import METADATA_KEY, fit_domain, to_json
from rnaloc_tools.formats import read_dataset, read_records

from conftest import leftovers, one_error_line

pytestmark = pytest.mark.skipif(len(bundled_models()) < 3, reason="the three bundled models are needed")

#: The tables each bundled model was trained on (workflows/bundled-models/build.sh).
TRAINING = {"miRNA": ("train",), "lncRNA": ("train",), "circRNA": ("train", "extra-cellcircloc")}
TRUST = ["confidence", "in_domain", "domain_note"]


def with_domain(src, dst, sequences):
    import onnx

    proto = onnx.load(str(src))
    props = {p.key: p.value for p in proto.metadata_props}
    props[METADATA_KEY] = to_json(fit_domain(sequences))
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(dst))


@pytest.fixture(scope="module")
def domain_copies(tmp_path_factory, datasets):
    """{rna_type: path} of copies of the bundled models (each other bundled .onnx copied beside them),
    with a domain fitted on their training tables where the model has none yet."""
    import onnx

    folder = tmp_path_factory.mktemp("bundled")
    models = bundled_models()
    for src in sorted(Path(next(iter(models.values()))).parent.glob("*.onnx")):
        shutil.copy(src, folder / src.name)
    copies = {}
    for rna_type, src in models.items():
        dst = folder / f"{rna_type}.onnx"
        if not any(p.key == METADATA_KEY for p in onnx.load(src).metadata_props):
            seqs = [s for t in TRAINING[rna_type]
                    for s in read_dataset(datasets / rna_type / f"{t}.tsv.gz", labels=False).df["sequence"]]
            with_domain(src, dst, seqs)
        copies[rna_type] = str(dst)
    return copies


@pytest.fixture
def domain_models(domain_copies, monkeypatch):
    import rnaloc_tools.bundled as bundled

    monkeypatch.setattr(bundled, "bundled_models", lambda: dict(domain_copies))
    if hasattr(bundled, "_folder"):  # the models folder, where bundled_model_path looks
        monkeypatch.setattr(bundled, "_folder", lambda: Path(domain_copies["miRNA"]).parent)
    return domain_copies


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, test_data):
    """The three example FASTAs concatenated, and the three example TSVs (one header)."""
    folder = tmp_path_factory.mktemp("mixed")
    fasta, tsv = folder / "mixed.fa", folder / "mixed.tsv"
    fasta.write_text("".join((test_data / f"example-{t}.fa").read_text() for t in ("lncRNA", "miRNA", "circRNA")))
    frames = [read_dataset(test_data / f"example-{t}.tsv").df for t in ("lncRNA", "miRNA", "circRNA")]
    table = pd.concat(frames, ignore_index=True)
    # interleave the types so that input order is not type order
    order = np.argsort(np.arange(len(table)) % 5, kind="stable")
    table.iloc[order].to_csv(tsv, sep="\t", index=False)
    return fasta, tsv


def _read(path_or_text):
    handle = io.StringIO(path_or_text) if isinstance(path_or_text, str) and "\n" in path_or_text else path_or_text
    return pd.read_csv(handle, sep="\t", comment="#", dtype=str, keep_default_na=False)


def _types(test_data):
    """{id: rna_type} of the example FASTAs (the file each record comes from)."""
    return {r.id: t for t in ("lncRNA", "miRNA", "circRNA") for r in read_records(test_data / f"example-{t}.fa")}


def test_mirna_model_flags_the_lncrnas_and_circrnas_of_a_mixed_fasta(cli, domain_models, mixed, test_data, tmp_path):
    import onnx

    from rnaloc_tools.domain import Domain

    fasta, _ = mixed
    out = tmp_path / "p.tsv"
    result = cli("predict", fasta, "--rna-type", "miRNA", "-o", out)
    assert result.exit_code == 0, result.stderr
    df = _read(out).set_index("id")
    types = _types(test_data)
    assert list(df.columns[-3:]) == TRUST
    lengths = {r.id: len(r) for r in read_records(fasta)}
    props = {p.key: p.value for p in onnx.load(domain_models["miRNA"]).metadata_props}
    longest = Domain(props[METADATA_KEY]).high  # the miRNA training sequences' 99.5th length percentile
    lnc = [i for i, t in types.items() if t == "lncRNA"]
    circ = [i for i, t in types.items() if t == "circRNA"]
    mirna = [i for i, t in types.items() if t == "miRNA"]
    assert (df.loc[lnc, "in_domain"] == "no").all()
    assert df.loc[lnc, "domain_note"].str.contains(r"above the longest 0\.5% of this model's training sequences").all()
    # a circRNA as short as a miRNA precursor can have a composition within the precursors'
    # (the 99-nt fragment of the first example set): length and composition cannot tell it apart
    long_circ = [i for i in circ if lengths[i] > longest]
    assert len(long_circ) >= len(circ) - 1 and (df.loc[long_circ, "in_domain"] == "no").all()
    assert (df.loc[mirna, "in_domain"] == "yes").all()
    flagged = int((df["in_domain"] == "no").sum())
    assert flagged >= len(lnc) + len(long_circ)
    assert f"{flagged} of {len(df)} sequences out of the model's applicability domain" in result.stderr


def test_real_mirnas_not_seen_in_training_are_in_domain(cli, domain_models, datasets, tmp_path):
    extra = read_dataset(datasets / "miRNA" / "extra-deeplocrna.tsv.gz").df.head(200)
    fasta = tmp_path / "m.fa"
    fasta.write_text("".join(f">{i}\n{s}\n" for i, s in zip(extra["id"], extra["sequence"])))
    result = cli("predict", fasta, "--rna-type", "miRNA", "-o", tmp_path / "p.tsv")
    assert result.exit_code == 0, result.stderr
    df = _read(tmp_path / "p.tsv")
    assert (df["in_domain"] == "yes").mean() >= 0.9
    assert df.loc[df["id"] == "pre-let-7b", "in_domain"].item() == "yes"


def test_a_tsv_of_three_types_is_routed_row_by_row(cli, domain_models, mixed, tmp_path):
    _, tsv = mixed
    out = tmp_path / "p.tsv"
    result = cli("predict", tsv, "-o", out)
    assert result.exit_code == 0, result.stderr
    given = read_dataset(tsv).df
    df = _read(out)
    assert list(df["id"]) == list(given["id"])  # input order
    assert list(df["rna_type"]) == list(given["rna_type"])  # each row keeps its own type
    assert list(df.columns) == ["id", "rna_type", "prediction", "probability_nucleus", "probability_cytoplasm",
                                "probability_extracellular", "probability_intracellular", *TRUST]
    for rna_type, rows in df.groupby("rna_type"):
        own = [f"probability_{c}" for c in CLASSES[rna_type]]
        other = [c for c in df.columns if c.startswith("probability_") and c not in own]
        assert (rows[other] == "").all().all()
        p = rows[own].astype(float).to_numpy()
        assert np.allclose(p.sum(1), 1, atol=2e-6)
        assert set(rows["prediction"]) <= set(CLASSES[rna_type])
        # the same numbers as predicting that type alone with its model
        alone = cli("predict", tsv, "--rna-type", rna_type, "--force-type", "--no-header")
        ref = _read(io.StringIO(alone.stdout)).set_index("id").loc[rows["id"]]
        assert (ref[own].to_numpy() == rows[own].to_numpy()).all()
        assert (ref["in_domain"].to_numpy() == rows["in_domain"].to_numpy()).all()
    assert (df["in_domain"] == "yes").mean() >= 0.8  # the examples are of their own types
    header = [line for line in out.read_text().splitlines() if line.startswith("#model:")]
    assert len(header) == 3 and {h.split()[3] for h in header} == {"miRNA.onnx", "lncRNA.onnx", "circRNA.onnx"}


def test_a_fasta_without_a_type_is_a_usage_error(cli, mixed):
    fasta, _ = mixed
    result = cli("predict", fasta)
    assert result.exit_code == 2
    assert "--rna-type" in result.stderr and "rna_type column" in result.stderr


def test_a_type_mismatch_names_the_record_unless_forced(cli, domain_models, mixed, tmp_path):
    _, tsv = mixed
    out = tmp_path / "p.tsv"
    first_other = read_dataset(tsv).df.query("rna_type != 'miRNA'")["id"].iloc[0]
    line = one_error_line(cli("predict", tsv, "--rna-type", "miRNA", "-o", out), "predict")
    assert f"record {first_other!r}" in line and "the model predicts miRNA" in line and "--force-type" in line
    assert not out.exists() and leftovers(tmp_path) == []
    result = cli("predict", tsv, "--rna-type", "MIRNA", "--force-type", "-o", out)
    assert result.exit_code == 0, result.stderr
    df = _read(out)
    forced = df[read_dataset(tsv).df["rna_type"].to_numpy() != "miRNA"]
    assert (forced["in_domain"] == "no").all()
    assert forced["domain_note"].str.match(r"input rna_type (lncRNA|circRNA) predicted with the miRNA model \(--force-type\)").all()
    assert list(df.columns[3:5]) == ["probability_extracellular", "probability_intracellular"]


def test_an_unknown_rna_type_in_a_tsv(cli, domain_models, tmp_path, test_data):
    df = read_dataset(test_data / "example-miRNA.tsv").df
    df.loc[3, "rna_type"] = "snoRNA"
    tsv, out = tmp_path / "in.tsv", tmp_path / "p.tsv"
    df.to_csv(tsv, sep="\t", index=False)
    line = one_error_line(cli("predict", tsv, "-o", out), "predict")
    assert f"record {df.loc[3, 'id']!r}" in line and "unknown rna_type 'snoRNA'" in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_rna_type_is_case_insensitive(cli, domain_models, test_data):
    runs = [cli("predict", test_data / "example-miRNA.fa", "--rna-type", t, "--no-header") for t in ("miRNA", "mirna", "MIRNA")]
    assert all(r.exit_code == 0 for r in runs)
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout


def test_the_header_names_the_model_and_pandas_reads_the_table(cli, domain_models, test_data, tmp_path):
    out = tmp_path / "p.tsv"
    result = cli("predict", test_data / "example-lncRNA.fa", "--rna-type", "lncRNA", "-o", out)
    assert result.exit_code == 0, result.stderr
    sha = hashlib.sha256(open(domain_models["lncRNA"], "rb").read()).hexdigest()
    lines = out.read_text().splitlines()
    assert lines[0].startswith("#rnaloc predict")
    assert lines[1] == f"#model: bundled model lncRNA.onnx (lncRNA; label source rnalocate), version rnaloc-tools 0.1.0, sha256 {sha[:12]}"
    assert sha[:12] in result.stderr and "bundled model lncRNA.onnx" in result.stderr
    df = pd.read_csv(out, sep="\t", comment="#")
    assert list(df.columns[:3]) == ["id", "rna_type", "prediction"]
    assert len(df) == len(list(read_records(test_data / "example-lncRNA.fa")))
    assert df["probability_nucleus"].dtype == float
    plain = cli("predict", test_data / "example-lncRNA.fa", "--rna-type", "lncRNA", "--no-header")
    assert plain.stdout.splitlines()[0].startswith("id\trna_type\tprediction")
    assert plain.stdout.splitlines()[1:] == lines[3:]
    assert pd.read_csv(io.StringIO(plain.stdout), sep="\t").equals(df)


def test_a_model_file_is_named_as_a_file(cli, domain_models, test_data, tmp_path):
    copy = tmp_path / "my-miRNA.onnx"
    shutil.copy(domain_models["miRNA"], copy)
    result = cli("predict", test_data / "example-miRNA.fa", "--model", copy)
    assert result.exit_code == 0, result.stderr
    assert f"#model: model file {copy} (miRNA)" in result.stdout


def test_a_model_without_a_domain_says_unknown_and_why(cli, test_data, tmp_path, monkeypatch):
    import onnx

    src = bundled_models()["miRNA"]
    proto = onnx.load(src)
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    for key, value in kept:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    result = cli("predict", test_data / "example-miRNA.fa", "--model", bare)
    assert result.exit_code == 0, result.stderr
    df = _read(result.stdout)
    assert (df["in_domain"] == "unknown").all()
    assert df["domain_note"].str.contains("carries no applicability domain").all()
    assert f"{len(df)} not assessed" in result.stderr


def test_confidence_follows_the_documented_cut_offs(cli, domain_models, mixed):
    fasta, _ = mixed
    result = cli("predict", fasta, "--rna-type", "circRNA")
    df = _read(result.stdout)
    p = df[["probability_nucleus", "probability_cytoplasm"]].astype(float).max(axis=1)
    expected = np.where(p >= 0.9, "high", np.where(p >= 0.7, "medium", "low"))
    assert list(df["confidence"]) == list(expected)
    assert len(set(expected)) >= 2


def test_trust_columns_do_not_depend_on_the_batch(cli, domain_models, mixed, tmp_path):
    fasta, _ = mixed
    records = list(read_records(fasta))
    together = _read(cli("predict", fasta, "--rna-type", "miRNA", "--batch-size", 64).stdout).set_index("id")
    for r in records[::3]:
        alone_fa = tmp_path / "one.fa"
        alone_fa.write_text(f">{r.id}\n{r.seq}\n")
        alone = _read(cli("predict", alone_fa, "--rna-type", "miRNA", "--batch-size", 1).stdout).set_index("id")
        row, ref = alone.loc[r.id], together.loc[r.id]
        assert row[TRUST].tolist() == ref[TRUST].tolist()
        assert abs(float(row["probability_intracellular"]) - float(ref["probability_intracellular"])) <= 1e-5


def test_npz_input_gets_the_same_domain_verdicts(cli, domain_models, mixed, tmp_path):
    fasta, _ = mixed
    npz = tmp_path / "e.npz"
    assert cli("embed", fasta, "--encoder", "one-hot", "-o", npz).exit_code == 0
    a = _read(cli("predict", fasta, "--rna-type", "miRNA").stdout)
    b = _read(cli("predict", npz, "--rna-type", "miRNA").stdout)
    assert a[TRUST].equals(b[TRUST])


def test_plot(cli, domain_models, mixed, tmp_path):
    fasta, tsv = mixed
    for name, args in (("one", ("--rna-type", "miRNA")), ("routed", ())):
        png = tmp_path / f"{name}.png"
        result = cli("predict", fasta if args else tsv, *args, "--plot", png, "-o", tmp_path / f"{name}.tsv")
        assert result.exit_code == 0, result.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed (apt-get install r-base-core)")
def test_r_reads_the_table_with_comment_char(cli, domain_models, mixed, tmp_path):
    import subprocess

    _, tsv = mixed
    out = tmp_path / "p.tsv"
    assert cli("predict", tsv, "-o", out).exit_code == 0
    script = (f'd <- read.delim("{out}", comment.char="#"); '
              'cat(nrow(d), ncol(d), names(d), sum(d$in_domain == "yes"), sum(is.na(d$probability_nucleus)), sep="\\n")')
    lines = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True).stdout.split()
    df = _read(out)
    assert lines[:2] == [str(len(df)), "10"]
    assert lines[2:12] == ["id", "rna_type", "prediction", "probability_nucleus", "probability_cytoplasm",
                           "probability_extracellular", "probability_intracellular", *TRUST]
    assert lines[12] == str((df["in_domain"] == "yes").sum())
    assert lines[13] == str((df["rna_type"] == "miRNA").sum())  # empty cells read as NA


def test_routing_through_a_pipe_and_across_chunks(cli, domain_models, mixed, tmp_path):
    """stdin (spooled for the two passes) and tiny chunks (a chunk boundary inside every type's run)
    give the same rows as the file read at once."""
    import subprocess
    import sys

    _, tsv = mixed
    whole = cli("predict", tsv, "--no-header")
    small = cli("predict", tsv, "--no-header", "--chunk-nt", 150)
    assert whole.exit_code == 0 and small.exit_code == 0
    assert small.stdout == whole.stdout
    code = ("import sys, pathlib, rnaloc_tools.bundled as b; folder = pathlib.Path(sys.argv[1]); "
            "b.bundled_models = lambda: {p.stem: str(p) for p in folder.glob('*.onnx') if '-' not in p.stem}; "
            "b._folder = lambda: folder; from rnaloc_tools.cli import main; sys.argv = ['rnaloc'] + sys.argv[2:]; main()")
    piped = subprocess.run(f"cat {tsv} | {sys.executable} -c \"{code}\" {Path(domain_models['miRNA']).parent} "
                           "predict - --no-header", shell=True, capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == whole.stdout


def test_routing_needs_types_and_one_model_for_attention(cli, domain_models, mixed, tmp_path):
    fasta, tsv = mixed
    npz = tmp_path / "e.npz"
    assert cli("embed", fasta, "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("predict", npz)
    assert result.exit_code == 2 and "--rna-type" in result.stderr
    result = cli("predict", tsv, "--attention", tmp_path / "a.npz")
    assert result.exit_code == 2 and "--attention needs one model" in result.stderr
    result = cli("predict", fasta, "--force-type")
    assert result.exit_code == 2 and "--force-type needs a model" in result.stderr


def test_all_columns_gives_every_part_of_a_split_table_the_same_columns(cli, domain_models, mixed, tmp_path):
    """The parts of a table split by type (as Galaxy's task splitter may cut it) write the
    columns of the types they hold, unless --all-columns: then every part has all four, and
    the parts' rows are the rows of the whole table."""
    _, tsv = mixed
    lines = Path(tsv).read_text().splitlines(keepends=True)
    comments = [line for line in lines if line.startswith("#")]
    header, *rows = [line for line in lines if not line.startswith("#")]
    type_at = header.rstrip("\n").split("\t").index("rna_type")
    parts = {}
    for rna_type in ("miRNA", "lncRNA"):
        part = tmp_path / f"{rna_type}.tsv"
        part.write_text("".join(comments + [header] + [r for r in rows if r.split("\t")[type_at] == rna_type]))
        parts[rna_type] = part
    own = cli("predict", parts["miRNA"], "--no-header")
    assert own.exit_code == 0, own.stderr
    assert _read(io.StringIO(own.stdout)).columns.tolist() == [
        "id", "rna_type", "prediction", "probability_extracellular", "probability_intracellular", *TRUST]
    whole = _read(io.StringIO(cli("predict", tsv, "--no-header").stdout)).set_index("id")
    for rna_type, part in parts.items():
        result = cli("predict", part, "--no-header", "--all-columns")
        assert result.exit_code == 0, result.stderr
        df = _read(io.StringIO(result.stdout))
        assert df.columns.tolist() == whole.reset_index().columns.tolist()
        assert (df.set_index("id") == whole.loc[df["id"]]).all().all()
        absent = [f"probability_{c}" for t in ("miRNA", "lncRNA") if t != rna_type for c in CLASSES[t]]
        assert (df[absent] == "").all().all()


def test_all_columns_is_for_routed_tables_only(cli, domain_models, mixed):
    _, tsv = mixed
    result = cli("predict", tsv, "--rna-type", "miRNA", "--force-type", "--all-columns")
    assert result.exit_code == 2 and "--all-columns applies to a table routed" in result.stderr
