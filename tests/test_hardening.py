"""Issue 11, the hostile tests: every numbered class, with variants (other tools, other path spellings).

Each test names its item of issue 11 ("#4" ...). Most refusals happen before
any work, so several tests give inputs that are never read.
"""

import errno
import gzip
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnaloc_tools.bundled import bundled_model
from rnaloc_tools.errors import InputError, RnalocError
from rnaloc_tools.fileio import safe_filename
from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore, EmbeddingWriter, read_table

from conftest import leftovers, one_error_line

REPO = Path(__file__).resolve().parents[1]
RNALOC = [sys.executable, "-m", "rnaloc_tools"]
SEQS = {"a": "ACGUACGUAGGCUAGCUAGCUAGGAUCGAUCG", "b": "GGGCCCAAUUGCGCAUAUGCGCGAUAUAUCGC",
        "c": "ACGUUUUAGGCUAGCUAGCUAGGAUCGAUCGA", "d": "GGGCCCAAUUGCGCAUAUGCGCGAUAUAUCCC"}
LABELS = {"a": "nucleus", "b": "cytoplasm", "c": "nucleus", "d": "cytoplasm"}
FASTA = "".join(f">{k}\n{v}\n" for k, v in SEQS.items())


def error_line(result, command):
    """The last stderr line of a command that failed on bad data or I/O (info lines may come first)."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.stderr
    assert lines and lines[-1].startswith(f"rnaloc {command}: error: "), lines
    assert "Traceback" not in result.stderr and "unexpected error" not in lines[-1], lines
    return lines[-1]


def _snapshot(folder):
    """{name: bytes} of every file under ``folder`` (to show that nothing changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working folder with a FASTA, a dataset TSV and a predictions TSV; the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.fa").write_text(FASTA)
    (tmp_path / "d.tsv").write_text(
        "id\trna_type\tlabel\tsequence\n" + "".join(f"{k}\tlncRNA\t{LABELS[k]}\t{v}\n" for k, v in SEQS.items()))
    (tmp_path / "p.tsv").write_text(
        "id\trna_type\tprediction\tprobability_nucleus\tprobability_cytoplasm\n"
        + "".join(f"{k}\tlncRNA\t{LABELS[k]}\t{0.7 if LABELS[k] == 'nucleus' else 0.2}\t"
                  f"{0.3 if LABELS[k] == 'nucleus' else 0.8}\n" for k in SEQS))
    (tmp_path / "e.npz").write_bytes(b"PK\x03\x04 not read")
    (tmp_path / "m.pt").write_bytes(b"not read")
    return tmp_path


# --------------------------------------------------------------------------- #4 an output that is an input

#: (tool arguments, which file must stay intact); OUT is replaced by each spelling of that file.
SAME_FILE_CASES = [
    (["embed", "s.fa", "--encoder", "one-hot", "-o", "OUT"], "s.fa"),
    (["predict", "s.fa", "--rna-type", "lncRNA", "-o", "OUT"], "s.fa"),
    (["predict", "s.fa", "--rna-type", "lncRNA", "-o", "x.tsv", "--attention", "OUT"], "s.fa"),
    (["dedup", "d.tsv", "-o", "OUT"], "d.tsv"),
    (["dedup", "d.tsv", "-o", "x.tsv", "--save-clstr", "OUT"], "d.tsv"),
    (["split", "d.tsv", "-o", "OUT"], "d.tsv"),
    (["split", "d.tsv", "--against", "s.fa", "-o", "OUT"], "s.fa"),
    (["curate", "d.tsv", "--rna-type", "lncRNA", "-o", "OUT"], "d.tsv"),
    (["curate", "d.tsv", "--rna-type", "lncRNA", "--sequences", "s.fa", "--report", "OUT"], "s.fa"),
    (["evaluate", "p.tsv", "d.tsv", "-o", "OUT"], "p.tsv"),
    (["evaluate", "p.tsv", "d.tsv", "-o", "OUT"], "d.tsv"),
    (["train", "d.tsv", "e.npz", "-o", "OUT"], "d.tsv"),
    (["train", "d.tsv", "e.npz", "-o", "OUT", "--force"], "e.npz"),
    (["export-onnx", "m.pt", "-o", "OUT", "--force"], "m.pt"),
    (["motifs", "--rna-type", "lncRNA", "s.fa", "--motifs", "OUT"], "s.fa"),
    (["motifs", "--rna-type", "lncRNA", "s.fa", "--regions", "OUT"], "s.fa"),
]
SPELLINGS = ["same", "dot", "symlink", "hardlink", "parent", "absolute"]


def _spell(work, name, how):
    if how == "same":
        return name
    if how == "dot":
        return f"./{name}"
    if how == "symlink":
        os.symlink(name, work / "link")
        return "link"
    if how == "hardlink":
        os.link(work / name, work / "hard")
        return "hard"
    if how == "parent":
        (work / "sub").mkdir()
        return f"sub/../{name}"
    return str(work / name)


@pytest.mark.parametrize("how", SPELLINGS)
@pytest.mark.parametrize("args,victim", SAME_FILE_CASES, ids=lambda v: "-".join(v) if isinstance(v, list) else v)
def test_an_output_that_is_an_input_is_refused_before_any_work(cli, work, args, victim, how):
    spelled = _spell(work, victim, how)
    before = _snapshot(work)
    result = cli(*[spelled if a == "OUT" else a for a in args])
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "same file as the input" in line and victim in line, line
    assert _snapshot(work) == before  # the input intact, nothing written


@pytest.mark.parametrize("args", [
    ["predict", "s.fa", "--rna-type", "lncRNA", "-o", "x.tsv", "--attention", "./x.tsv"],
    ["dedup", "d.tsv", "-o", "x.tsv", "--save-clstr", "sub/../x.tsv"],
    ["curate", "d.tsv", "--rna-type", "lncRNA", "-o", "x.tsv", "--report", "LINK"],
    ["motifs", "--rna-type", "lncRNA", "s.fa", "--motifs", "x.tsv", "--meme", "./x.tsv"],
    ["motifs", "--rna-type", "lncRNA", "s.fa", "-o", "out", "--regions", "out/motifs.tsv"],
])
def test_two_outputs_that_are_the_same_file_are_refused(cli, work, args):
    (work / "sub").mkdir()
    (work / "x.tsv").write_text("earlier\n")
    os.symlink("x.tsv", work / "LINK")
    before = _snapshot(work)
    result = cli(*args)
    assert result.exit_code == 2, result.stderr
    assert "are the same file" in result.stderr
    assert _snapshot(work) == before and not (work / "out").exists()


def test_motifs_output_folder_holding_an_input_is_refused(cli, work):
    # -o out writes out/regions.tsv: an input of that name is refused before the model runs
    (work / "out").mkdir()
    (work / "out" / "regions.tsv").write_text(FASTA)
    before = _snapshot(work)
    result = cli("motifs", "--rna-type", "lncRNA", "out/regions.tsv", "-o", "out")
    assert result.exit_code == 2 and "same file as the input" in result.stderr, result.stderr
    assert _snapshot(work) == before


def test_train_report_file_that_is_an_input_is_refused(cli, work):
    (work / "m.report").mkdir()
    os.rename(work / "d.tsv", work / "m.report" / "cv_metrics.tsv")
    before = _snapshot(work)
    result = cli("train", "m.report/cv_metrics.tsv", "e.npz", "-o", "m.pt", "--force")
    assert result.exit_code == 2 and "same file as the input" in result.stderr, result.stderr
    assert _snapshot(work) == before


def test_embed_refusals_named_in_the_issue_leave_the_input_intact(work):
    """The issue's 'must show': ./x.fa, a symlinked and a hard-linked output, through the real command."""
    os.symlink("s.fa", work / "sym.fa")
    os.link(work / "s.fa", work / "hard.fa")
    for out in ("./s.fa", "sym.fa", "hard.fa"):
        done = subprocess.run(RNALOC + ["embed", "s.fa", "--encoder", "one-hot", "-o", out], capture_output=True,
                              text=True, cwd=work)
        assert done.returncode == 2 and "same file as the input" in done.stderr, done.stderr
        assert (work / "s.fa").read_text() == FASTA


# --------------------------------------------------------------------------- #5 all outputs or none


def _fail_writing(monkeypatch, module, name, path_arg):
    """Make the writer ``module.name`` meet a full disk while it writes its file (argument ``path_arg``)."""
    from rnaloc_tools.fileio import atomic_output

    def failing(*args, **kwargs):
        with atomic_output(args[path_arg]) as out:
            out.write("partial")
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, name, failing)


def test_predict_leaves_no_attention_when_the_table_fails(cli, work, monkeypatch):
    from rnaloc_tools.predict import PredictionSink

    real = PredictionSink.write

    def full(self, result):
        real(self, result)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PredictionSink, "write", full)
    result = cli("predict", "s.fa", "--rna-type", "lncRNA", "-o", "pred.tsv", "--attention", "att.npz")
    assert error_line(result, "predict").endswith("no space left on device writing pred.tsv")
    assert not (work / "att.npz").exists() and not (work / "pred.tsv").exists()
    assert leftovers(work) == []


def test_predict_commits_both_outputs_only_at_the_end(cli, work, monkeypatch):
    """A failure after both files were complete (here: the last step of the run) leaves neither."""
    from rnaloc_tools.predict import Predictor

    def fail(self):
        raise RnalocError("simulated failure after the outputs were complete")

    monkeypatch.setattr(Predictor, "log_cropped", fail)
    result = cli("predict", "s.fa", "--rna-type", "lncRNA", "-o", "pred.tsv", "--attention", "att.npz")
    assert "simulated failure" in error_line(result, "predict")
    assert not (work / "att.npz").exists() and not (work / "pred.tsv").exists()
    assert leftovers(work) == []


def test_curate_leaves_no_report_when_the_dataset_fails(cli, work, monkeypatch, test_data):
    from rnaloc_tools.cli import curate as curate_cli

    _fail_writing(monkeypatch, curate_cli, "write_table", 1)
    result = cli("curate", test_data / "curate-circrna-export.tsv", "--rna-type", "circRNA", "-o", "c.tsv",
                 "--report", "counts.json", "--min-class-size", "1")
    line = error_line(result, "curate")
    assert "no space left on device writing c.tsv" in line
    assert not (work / "counts.json").exists() and not (work / "c.tsv").exists() and leftovers(work) == []


def test_dedup_leaves_no_clstr_when_the_table_fails(cli, work, monkeypatch, test_data):
    from rnaloc_tools.cli import dedup as dedup_cli

    _fail_writing(monkeypatch, dedup_cli, "write_table", 1)
    result = cli("dedup", test_data / "dedup-input.tsv", "--clstr", test_data / "dedup-input.clstr", "-o", "x.tsv",
                 "--save-clstr", "kept.clstr")
    error_line(result, "dedup")
    assert not (work / "kept.clstr").exists() and leftovers(work) == []


def test_motifs_leaves_no_tables_when_a_later_output_fails(cli, work, monkeypatch):
    import rnaloc_tools.motifs as motifs

    _fail_writing(monkeypatch, motifs, "write_meme", 0)
    result = cli("motifs", "--rna-type", "lncRNA", "s.fa", "-o", "out", "--min-support", "1")
    assert "no space left on device writing out/motifs.meme" in error_line(result, "motifs")
    assert not (work / "out").exists()  # the folder this run made is removed again: it is empty


def test_train_leaves_no_report_when_the_checkpoint_fails(cli, work, monkeypatch, test_data):
    from rnaloc_tools.model import checkpoint

    _fail_writing(monkeypatch, checkpoint, "save_checkpoint", 0)  # the last output train writes
    npz = work / "m.npz"
    assert cli("embed", test_data / "model-miRNA.tsv", "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("train", test_data / "model-miRNA.tsv", npz, "-o", "model.pt", "--folds", "2", "--epochs", "1")
    assert "no space left on device writing model.pt" in error_line(result, "train")
    assert not (work / "model.pt").exists() and not (work / "model.report").exists()
    assert leftovers(work) == []


@pytest.mark.parametrize("args", [
    ["train", "d.tsv", "e.npz", "-o", "m2.pt", "--report-dir", "{ro}/report"],
    ["motifs", "--rna-type", "lncRNA", "s.fa", "-o", "{ro}/motifs"],
    ["motifs", "--rna-type", "lncRNA", "s.fa", "--logos", "{ro}/logos"],
    ["embed", "s.fa", "--encoder", "one-hot", "-o", "{ro}/x.npz"],
])
def test_unwritable_output_folders_are_found_before_the_work(cli, work, args):
    """/sys refuses new files even to root (a chmod-ed folder does not stop root)."""
    try:
        open("/sys/rnaloc-probe", "w").close()
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    result = cli(*[a.format(ro="/sys") for a in args])
    line = one_error_line(result, args[0])
    assert "/sys" in line and "cannot write" in line


@pytest.mark.parametrize("args", [
    ["train", "d.tsv", "e.npz", "-o", "m2.pt", "--report-dir", "d.tsv"],
    ["motifs", "--rna-type", "lncRNA", "s.fa", "-o", "d.tsv"],
    ["motifs", "--rna-type", "lncRNA", "s.fa", "-o", "no/such/folder"],
])
def test_output_folders_that_cannot_be_made_are_found_before_the_work(cli, work, args):
    before = _snapshot(work)
    result = cli(*args)
    assert result.exit_code in (1, 2), result.stderr
    assert _snapshot(work) == before


# --------------------------------------------------------------------------- #6 motifs --logos deletes nothing


def test_motifs_logos_into_a_folder_of_other_files_deletes_nothing(cli, work):
    logos = work / "logos"
    logos.mkdir()
    (logos / "nucleus-1.old.png").write_bytes(b"\x89PNG\r\n\x1a\n mine")
    (logos / "keep.txt").write_text("mine\n")
    before = _snapshot(logos)
    result = cli("motifs", "--rna-type", "lncRNA", "s.fa", "--logos", logos, "--min-support", "1")
    assert result.exit_code == 0, result.stderr
    after = _snapshot(logos)
    assert {k: v for k, v in after.items() if k in before} == before


# --------------------------------------------------------------------------- #1 names read from files


def _onnx_with_metadata(src, dst, **changes):
    import onnx

    model = onnx.load(src)
    props = {p.key: p for p in model.metadata_props}
    for key, value in changes.items():
        props[key].value = value if isinstance(value, str) else json.dumps(value)
    onnx.save(model, dst)
    return dst


@pytest.mark.parametrize("classes", [
    ["/tmp/rnaloc-evil/a", "/tmp/rnaloc-evil/b"],
    ["../../escape-a", "../../escape-b"],
    ["nucleus", "cyto\tplasm"],
    ["nucleus\n", "cytoplasm"],
    ["nucleus", "cytoplasm", "third"],
    "not a list",
])
@pytest.mark.parametrize("tool", ["motifs", "predict"])
def test_model_class_names_are_checked_where_the_model_is_read(cli, work, tool, classes):
    evil = _onnx_with_metadata(bundled_model("lncRNA"), work / "evil.onnx", classes=classes)
    args = ["motifs", "--model", evil, "s.fa", "-o", "out"] if tool == "motifs" else ["predict", "s.fa", "--model", evil]
    result = cli(*args)
    line = one_error_line(result, tool)
    assert "evil.onnx" in line and "classes" in line
    assert not Path("/tmp/rnaloc-evil").exists() and not (work / "out").exists()
    assert not list(work.parent.rglob("escape-*"))


def _attention_npz(path, meta, ids=("a", "b")):
    with EmbeddingWriter(path, {"dim": 1, **meta}, dtype=np.float32, format_name=ATTENTION_FORMAT) as w:
        for rid in ids:
            w.add(rid, np.linspace(0, 1, 32, dtype=np.float32)[:, None])
    return path


@pytest.mark.parametrize("meta", [
    {"rna_type": "lncRNA", "classes": ["/tmp/rnaloc-evil/a", "/tmp/rnaloc-evil/b"]},
    {"rna_type": "lncRNA", "classes": ["../x", "../y"]},
    {"rna_type": "../lncRNA", "classes": ["nucleus", "cytoplasm"]},
    {"classes": ["nucleus", "cytoplasm"]},
])
def test_attention_class_names_are_checked_where_the_npz_is_read(cli, work, meta):
    att = _attention_npz(work / "att.npz", meta)
    result = cli("motifs", att, "-s", "s.fa", "-o", "out")
    line = one_error_line(result, "motifs")
    assert "att.npz" in line
    assert not (work / "out").exists() and not Path("/tmp/rnaloc-evil").exists()


def test_logo_names_from_dataset_labels_stay_in_the_logo_folder(cli, work):
    """Labels (classes of a dataset with no known rna_type) reach the logos only in a safe form."""
    rng = np.random.default_rng(0)
    seqs = {f"s{i}": "".join(rng.choice(list("ACGU"), 60)) for i in range(16)}
    labels = ["../../escaped", "/tmp/rnaloc-evil/x"]
    rows = [f"{rid}\t{labels[i % 2]}\t{seq}" for i, (rid, seq) in enumerate(seqs.items())]
    (work / "lab.tsv").write_text("id\tlabel\tsequence\n" + "\n".join(rows) + "\n")
    with EmbeddingWriter(work / "att.npz", {"dim": 1}, dtype=np.float32, format_name=ATTENTION_FORMAT) as w:
        for rid, seq in seqs.items():
            att = np.zeros((len(seq), 1), np.float32)
            att[10:20] = 1.0  # the same planted region everywhere
            w.add(rid, att)
    result = cli("motifs", work / "att.npz", "-s", "lab.tsv", "--class-from", "label", "-o", "out", "--min-support",
                 "1", "--alpha", "1", "-k", "5-6", "--no-known")
    assert result.exit_code == 0, result.stderr
    written = [p for p in work.rglob("*.png")]
    assert written and all(p.parent == work / "out" / "logos" for p in written)
    assert not Path("/tmp/rnaloc-evil").exists() and not (work.parent / "escaped-1.png").exists()


def test_safe_filename():
    for name in ("../../x", "/tmp/a", "a\nb", "a\tb", ".hidden", "..", "", "a" * 300, "nucleus-1"):
        safe = safe_filename(name)
        assert "/" not in safe and "\n" not in safe and "\t" not in safe and not safe.startswith(".")
        assert safe and len(safe) <= 100
    assert safe_filename("nucleus-1") == "nucleus-1"


# --------------------------------------------------------------------------- #2 inputs that exhaust memory or hang


def _npz(path, ids, offsets, embeddings, meta, compressed=False):
    (np.savez_compressed if compressed else np.savez)(
        path, ids=np.array(ids), offsets=np.array(offsets, np.int64), embeddings=embeddings,
        meta=np.array(json.dumps(meta)))
    return path


ONE_HOT_META = {"format": "rnaloc-embeddings", "encoder": "one-hot", "dim": 4}


def test_a_deflated_npz_is_refused_not_inflated(cli, work):
    # 400 MB of zeros deflate to ~0.4 MB: read whole, it would take 400 MB
    rows = 50_000_000 // 4
    bomb = _npz(work / "bomb.npz", ["a"], [0, rows], np.zeros((rows, 4), np.float16), ONE_HOT_META, compressed=True)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(InputError, match="compressed"):
        EmbeddingStore(bomb)
    result = cli("predict", bomb, "--rna-type", "lncRNA")
    assert "compressed" in one_error_line(result, "predict")


def test_a_compressed_small_member_is_refused(work):
    path = _npz(work / "c.npz", ["a"], [0, 2], np.zeros((2, 4), np.float16), ONE_HOT_META)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name == "ids.npy" else zipfile.ZIP_STORED)
    with pytest.raises(InputError, match="'ids' is compressed"):
        EmbeddingStore(path)


def test_a_forged_member_header_is_refused_before_allocating(work):
    from numpy.lib import format as npformat

    path = _npz(work / "f.npz", ["a"], [0, 2], np.zeros((2, 4), np.float16), ONE_HOT_META)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    import io

    forged = io.BytesIO()
    npformat.write_array_header_1_0(forged, {"descr": "<i8", "fortran_order": False, "shape": (10**12,)})
    members["offsets.npy"] = forged.getvalue() + np.array([0, 2], np.int64).tobytes()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(InputError, match="offsets"):
        EmbeddingStore(path)


@pytest.mark.parametrize("tool", ["embed", "predict"])
def test_weights_must_be_a_regular_file(cli, work, tool):
    args = (["embed", "s.fa", "-o", "x.npz", "--encoder", "rna-fm"] if tool == "embed"
            else ["predict", "s.fa", "--model", REPO / "test-data" / "galaxy-mirna-onehot.onnx"])
    result = cli(*args, "--weights", "/dev/zero")
    if tool == "embed":
        assert "regular file" in one_error_line(result, tool)
    else:
        assert result.exit_code == 0  # a one-hot model reads no weights


def test_weights_on_a_fifo_does_not_hang(work):
    fifo = work / "weights.fifo"
    os.mkfifo(fifo)
    done = subprocess.run(RNALOC + ["embed", "s.fa", "-o", "x.npz", "--weights", str(fifo)], capture_output=True,
                          text=True, cwd=work, timeout=120)
    assert done.returncode == 1 and "regular file" in done.stderr


@pytest.mark.parametrize("args", [
    ["export-onnx", "/dev/zero", "-o", "x.onnx"],
    ["predict", "s.fa", "--model", "/dev/zero"],
    ["train", "d.tsv", "/dev/zero", "-o", "x.pt"],
])
def test_other_binary_inputs_on_devices_are_refused(cli, work, args):
    result = cli(*args)
    assert "/dev/zero" in one_error_line(result, args[0])


# --------------------------------------------------------------------------- #3 Snakemake quoting


def _snakemake():
    exe = Path(sys.executable).parent / "snakemake"
    if exe.exists():
        return [str(exe)]
    import shutil

    found = shutil.which("snakemake")
    return [found] if found else None


def test_snakemake_config_values_are_quoted(tmp_path):
    """A crafted value stays one word of the command; it never runs (dry run, commands printed)."""
    snakemake = _snakemake()
    if snakemake is None:
        pytest.skip("snakemake is not installed")
    folder = tmp_path / "O'Brien data"
    folder.mkdir()
    fasta = folder / "seqs.fa"
    fasta.write_text(FASTA)
    marker = tmp_path / "PWNED"
    crafted = f"lncRNA'; touch {marker}; echo '"
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"input": str(fasta), "outdir": str(folder / "out"), "rna_type": crafted,
                                  "model": "", "encoder": "one-hot", "provider": "cpu", "shard_size": 1,
                                  "weights": str(folder / "w'x.pth")}))
    snakefile = REPO / "workflows" / "snakemake" / "Snakefile"
    done = subprocess.run(snakemake + ["-s", str(snakefile), "--configfile", str(config), "--cores", "1", "shard"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((folder / "out" / "shards").glob("*.fa"))) == len(SEQS)  # the apostrophe path worked
    dry = subprocess.run(snakemake + ["-s", str(snakefile), "--configfile", str(config), "--cores", "1", "-n", "-p"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    text = dry.stdout + dry.stderr
    commands = [ln.strip() for ln in text.splitlines() if " predict " in ln or " embed " in ln]
    assert commands, text[-2000:]
    for command in commands:
        words = shlex.split(command)
        if "--rna-type" in words:
            assert words[words.index("--rna-type") + 1] == crafted
        if "--weights" in words:
            assert words[words.index("--weights") + 1] == str(folder / "w'x.pth")
    assert not marker.exists()


def test_rnafm_models_workflow_quotes_config_values(tmp_path):
    """The second workflow (training RNA-FM models): crafted device/precision values stay one word."""
    snakemake = _snakemake()
    if snakemake is None:
        pytest.skip("snakemake is not installed")
    marker = tmp_path / "PWNED"
    device, precision = f"cpu; touch {marker}", f"auto$(touch {marker})"
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"weights": str(tmp_path / "O'Brien" / "w.pth"), "outdir": str(tmp_path / "out"),
                                  "rna_types": ["miRNA"], "device": device, "precision": precision}))
    snakefile = REPO / "workflows" / "rnafm-models" / "Snakefile"
    dry = subprocess.run(snakemake + ["-s", str(snakefile), "--configfile", str(config), "--cores", "1", "-n", "-p"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    commands = [ln.split("Shell command:", 1)[-1].strip() for ln in (dry.stdout + dry.stderr).splitlines()
                if "rnaloc embed" in ln or "rnaloc train" in ln]
    assert len(commands) == 2, dry.stdout + dry.stderr
    for command in commands:
        words = shlex.split(command.split(" 2> ")[0])
        assert words[words.index("--device") + 1] == device
    embed = shlex.split(commands[0].split(" 2> ")[0])
    assert embed[embed.index("--precision") + 1] == precision
    assert embed[embed.index("--weights") + 1] == str(tmp_path / "O'Brien" / "w.pth")
    assert not marker.exists()


# --------------------------------------------------------------------------- #7 long legal names


@pytest.mark.parametrize("length", [241, 250, 255])
def test_long_legal_output_names_work(cli, work, length):
    npz = "e" * (length - 4) + ".npz"
    tsv = "p" * (length - 4) + ".tsv"
    assert cli("embed", "s.fa", "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("predict", npz, "--rna-type", "lncRNA", "-o", tsv, "--attention", "a" * (length - 4) + ".npz")
    assert result.exit_code == 0, result.stderr
    assert len(read_table(tsv).df) == len(SEQS) and leftovers(work) == []


def test_too_long_names_are_refused_before_the_work(cli, work, test_data):
    result = cli("split", "d.tsv", "-o", "x" * 256 + ".tsv")
    assert "file name too long" in one_error_line(result, "split")
    # train: the default report folder (OUTPUT without .pt, plus .report) would be too long
    name = "m" * 250 + ".pt"
    result = cli("train", "d.tsv", "e.npz", "-o", name)
    line = one_error_line(result, "train")
    assert "file name too long" in line and ".report" in line
    assert leftovers(work) == []


# --------------------------------------------------------------------------- #8 damaged .gz in every reader


def _damaged_gz(work, name, payload):
    data = gzip.compress(payload.encode())
    (work / f"trunc-{name}").write_bytes(data[: len(data) * 2 // 3])  # EOFError, at some read
    crc = bytearray(data)
    crc[-8] ^= 0xFF  # the trailer's CRC: BadGzipFile at the end, after every record was read
    (work / f"crc-{name}").write_bytes(bytes(crc))
    block = bytearray(data)
    block[10] = 0xFF  # the first deflate block header: zlib.error ("invalid block type")
    (work / f"block-{name}").write_bytes(bytes(block))


@pytest.mark.parametrize("kind", ["trunc", "crc", "block"])
@pytest.mark.parametrize("args", [
    ["embed", "{f}.fa.gz", "--encoder", "one-hot", "-o", "x.npz"],
    ["predict", "{f}.fa.gz", "--rna-type", "lncRNA"],
    ["split", "{f}.tsv.gz", "--folds", "0", "--test-size", "0"],
    ["dedup", "{f}.tsv.gz"],
    ["curate", "{f}.tsv.gz", "--rna-type", "lncRNA"],
    ["evaluate", "{f}p.tsv.gz", "d.tsv"],
    ["motifs", "--rna-type", "lncRNA", "{f}.fa.gz"],
])
def test_damaged_gzip_inputs_are_one_line_naming_the_file(cli, work, args, kind):
    big = "".join(f">s{i}\n{'ACGU' * 200}\n" for i in range(200))
    rows = "".join(f"s{i}\tlncRNA\tnucleus\t{'ACGU' * 200}\n" for i in range(200))
    preds = "".join(f"s{i}\tlncRNA\tnucleus\t0.6\t0.4\n" for i in range(400))
    _damaged_gz(work, "x.fa.gz", big)
    _damaged_gz(work, "x.tsv.gz", "id\trna_type\tlabel\tsequence\n" + rows)
    _damaged_gz(work, "xp.tsv.gz", "id\trna_type\tprediction\tprobability_nucleus\tprobability_cytoplasm\n" + preds)
    name = f"{kind}-x"
    result = cli(*[a.format(f=name) for a in args])
    line = one_error_line(result, args[0])
    assert name in line and "gzip" in line, line
    assert "unexpected error" not in line


# --------------------------------------------------------------------------- #9 a full disk


@pytest.mark.parametrize("args", [
    ["split", "d.tsv", "--folds", "0", "--test-size", "0", "-o", "/dev/full"],
    ["predict", "s.fa", "--rna-type", "lncRNA", "-o", "/dev/full"],
    ["evaluate", "p.tsv", "d.tsv", "--bootstrap", "10", "-o", "/dev/full"],
])
def test_a_full_device_is_named(cli, work, args):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    line = error_line(cli(*args), args[0])
    assert line.endswith("no space left on device writing /dev/full"), line


def test_a_full_disk_while_saving_the_checkpoint_is_named(work, monkeypatch):
    """torch.save to a file reported a full disk as 'inline_container.cc ... file write failed'."""
    import builtins

    import torch

    from rnaloc_tools.model.checkpoint import save_checkpoint
    from rnaloc_tools.model.registry import build_model

    model, hp = build_model("rnaloc", dim=4, n_classes=2)
    real_open = builtins.open

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def full_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return Full(handle) if "w" in mode and ".part" in str(path) else handle

    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(RnalocError, match="no space left on device writing .*m.pt"):
        save_checkpoint(work / "m.pt", model, hp, arch="rnaloc", classes=("nucleus", "cytoplasm"), rna_type="lncRNA",
                        encoder={"encoder": "one-hot", "dim": 4})
    monkeypatch.undo()
    assert leftovers(work) == [] and torch


# --------------------------------------------------------------------------- #10 train edge cases


def _embed(cli, tsv, npz):
    assert cli("embed", tsv, "--encoder", "one-hot", "-o", npz).exit_code == 0


def test_train_with_one_or_two_samples_per_class(cli, work):
    rows = (work / "d.tsv").read_text().splitlines()
    (work / "d2.tsv").write_text("\n".join(rows[:3]) + "\n")  # one row per class
    _embed(cli, "d.tsv", "d.npz")
    line = error_line(cli("train", "d2.tsv", "d.npz", "-o", "m1.pt", "--folds", "0", "--epochs", "1"), "train")
    assert "needs at least 2 per class" in line and "d2.tsv" in line
    # two per class: two folds leave one per class to train a fold on, too few to hold out a validation part
    line = error_line(cli("train", "d.tsv", "d.npz", "-o", "m2.pt", "--folds", "2", "--epochs", "1"), "train")
    assert "too few rows to hold out a validation part" in line
    assert not (work / "m2.pt").exists() and not (work / "m2.report").exists()


@pytest.mark.parametrize("hparams", ['{"dim": 5}', '{"n_classes": 3}'])
def test_train_hparams_cannot_set_dim_or_classes(cli, work, hparams):
    result = cli("train", "d.tsv", "e.npz", "-o", "m.pt", "--force", "--hparams", hparams)
    assert result.exit_code == 2 and "cannot be set" in result.stderr


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings_are_refused_when_read(cli, work, bad, test_data):
    with EmbeddingWriter(work / "bad.npz", {"encoder": "one-hot", "dim": 4}) as w:
        for rid, seq in SEQS.items():
            matrix = np.zeros((len(seq), 4), np.float32)
            if rid == "b":
                matrix[3, 1] = bad
            w.add(rid, matrix)
    line = error_line(cli("train", "d.tsv", "bad.npz", "-o", "m9.pt", "--folds", "0", "--epochs", "1"), "train")
    assert "bad.npz" in line and "'b'" in line and "NaN or infinite" in line
    line = error_line(cli("predict", "bad.npz", "--rna-type", "lncRNA"), "predict")
    assert "bad.npz" in line and "NaN or infinite" in line
    assert not (work / "m9.pt").exists()


# --------------------------------------------------------------------------- #11 numeric ranges


@pytest.mark.parametrize("args,hint", [
    (["train", "d.tsv", "e.npz", "-o", "m.pt", "--force", "--seed", "-1"], "0<=x<=4294967295"),
    (["train", "d.tsv", "e.npz", "-o", "m.pt", "--force", "--seed", str(2**40)], "0<=x<=4294967295"),
    (["evaluate", "p.tsv", "d.tsv", "--seed", "-1"], "0<=x<=4294967295"),
    (["split", "d.tsv", "--seed", str(2**40)], "0<=x<=4294967295"),
    (["evaluate", "p.tsv", "d.tsv", "--bootstrap", "1000000000"], "10<=x<=10000"),
    (["split", "d.tsv", "--test-size", "nan"], "0<=x<=0.5"),
    (["split", "d.tsv", "--test-size", "inf"], "0<=x<=0.5"),
    (["dedup", "d.tsv", "--identity", "nan"], "x<=1"),
    (["split", "d.tsv", "--against", "s.fa", "--identity", "nan"], "x<=1"),
    (["train", "d.tsv", "e.npz", "-o", "m.pt", "--force", "--lr", "nan"], "x>0"),
    (["motifs", "--rna-type", "lncRNA", "s.fa", "--alpha", "nan"], "x<=1"),
])
def test_out_of_range_numbers_are_usage_errors_with_the_range(cli, work, args, hint):
    result = cli(*args)
    assert result.exit_code == 2, result.stderr
    assert hint in result.stderr


# --------------------------------------------------------------------------- #12 malformed metadata


@pytest.mark.parametrize("meta", [
    ["a", "list"], 42, "just text", {"format": "rnaloc-embeddings", "encoder": "one-hot", "dim": "four"},
    {"format": "rnaloc-embeddings", "encoder": "one-hot", "dim": -4},
    {"format": "rnaloc-embeddings", "encoder": {"name": "x"}, "dim": 4},
    {"format": "rnaloc-embeddings", "encoder": "one-hot", "dim": 4, "max_length": "long"},
])
def test_malformed_npz_meta_is_one_line_naming_the_file(cli, work, meta):
    _npz(work / "m.npz", ["a", "b"], [0, 32, 64], np.zeros((64, 4), np.float16), meta)
    with pytest.raises(InputError) as err:
        EmbeddingStore(work / "m.npz")
    assert "m.npz" in str(err.value)
    for args in (["predict", "m.npz", "--rna-type", "lncRNA"], ["train", "d.tsv", "m.npz", "-o", "x.pt"]):
        line = one_error_line(cli(*args), args[0])
        assert "m.npz" in line and "unexpected" not in line


@pytest.mark.parametrize("changes", [
    {"encoder": "[1, 2]"}, {"encoder": "7"}, {"encoder": "{not json"}, {"encoder": {"encoder": "one-hot", "dim": "x"}},
    {"rna_type": "protein"}, {"max_length": "-3"}, {"classes": ["nucleus", "cytoplasm", "nucleolus"]},
])
def test_malformed_onnx_metadata_is_one_line_naming_the_file(cli, work, changes):
    bad = _onnx_with_metadata(bundled_model("lncRNA"), work / "bad.onnx", **changes)
    line = one_error_line(cli("predict", "s.fa", "--model", bad), "predict")
    assert "bad.onnx" in line and "unexpected" not in line


@pytest.mark.parametrize("factor", [2.0, 0.5, -1.0])
def test_onnx_outputs_that_are_not_probabilities_are_refused(cli, work, factor):
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(bundled_model("lncRNA"))
    for node in model.graph.node:
        node.output[:] = ["raw_probabilities" if o == "probabilities" else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "rnaloc_factor"))
    model.graph.node.append(helper.make_node("Mul", ["raw_probabilities", "rnaloc_factor"], ["probabilities"]))
    onnx.save(model, work / "scaled.onnx")
    line = one_error_line(cli("predict", "s.fa", "--model", work / "scaled.onnx", "-o", "x.tsv"), "predict")
    assert "scaled.onnx" in line and "not probabilities" in line
    assert not (work / "x.tsv").exists()


# --------------------------------------------------------------------------- #13, #14


def test_curate_with_both_inputs_on_stdin_is_a_usage_error(cli, work):
    result = cli("curate", "-", "--rna-type", "lncRNA", "--sequences", "-", input="x\n")
    assert result.exit_code == 2 and "stdin" in result.stderr


def test_unsafe_pickles_never_get_weights_only_false_advice(cli, work):
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {work / 'PWNED'}",))

    torch.save({"format": "rnaloc-checkpoint", "payload": Evil()}, work / "evil.pt")
    line = one_error_line(cli("export-onnx", "evil.pt", "-o", "x.onnx"), "export-onnx")
    assert "weights_only" not in line and "system" in line and "evil.pt" in line
    assert not (work / "PWNED").exists() and not (work / "x.onnx").exists()


# --------------------------------------------------------------------------- #15 library warnings


def test_library_warnings_go_to_the_debug_log(cli, work, monkeypatch):
    import warnings

    from rnaloc_tools.cli import embed as embed_cli

    real = embed_cli.embed_records

    def noisy(*args, **kwargs):
        warnings.warn("a library's note", UserWarning)
        np.float64(1.0) / np.float64(0.0)  # NumPy's divide-by-zero RuntimeWarning
        return real(*args, **kwargs)

    monkeypatch.setattr(embed_cli, "embed_records", noisy)
    quiet = cli("embed", "s.fa", "--encoder", "one-hot", "-o", "x.npz")
    assert quiet.exit_code == 0 and "Warning" not in quiet.stderr and "library's note" not in quiet.stderr
    loud = cli("-v", "embed", "s.fa", "--encoder", "one-hot", "-o", "y.npz")
    assert "debug: UserWarning: a library's note" in loud.stderr
    assert "RuntimeWarning" in loud.stderr


# --------------------------------------------------------------------------- #16 newline in a file name


def test_a_newline_in_a_file_name_keeps_the_provenance_on_one_line(work):
    odd = work / "two\nlines.fa"
    odd.write_text(FASTA)
    done = subprocess.run(RNALOC + ["predict", odd.name, "--rna-type", "lncRNA", "-o", "p\x85x.tsv"],
                          capture_output=True, text=True, cwd=work)
    assert done.returncode == 0, done.stderr
    lines = (work / "p\x85x.tsv").read_text().split("\n")
    body = [ln for ln in lines if not ln.startswith("#")]
    assert lines[0].startswith("#rnaloc predict") and body[0].startswith("id\t") and len(body) == len(SEQS) + 2
    assert "$'two\\nlines.fa'" in lines[0]
    assert shlex.split(lines[0].split(": ", 1)[1])  # still a shell line
    again = subprocess.run(RNALOC + ["evaluate", "p\x85x.tsv", "d.tsv", "--bootstrap", "10"], capture_output=True,
                           text=True, cwd=work)
    assert again.returncode == 0, again.stderr


# --------------------------------------------------------------------------- #17 one sniffer


@pytest.mark.parametrize("comment_bytes", [70_000, 300_000])
@pytest.mark.parametrize("tool", ["embed", "predict", "motifs", "split"])
def test_long_provenance_headers_are_read_by_every_tool(cli, work, comment_bytes, tool):
    header = "".join(f"#rnaloc step {i}: {'x' * 90}\n" for i in range(comment_bytes // 100))
    header += "#" + "y" * 100_000 + "\n"  # one '#' line longer than any read buffer
    (work / "big.tsv").write_text(header + (work / "d.tsv").read_text())
    args = {"embed": ["embed", "big.tsv", "--encoder", "one-hot", "-o", "x.npz"],
            "predict": ["predict", "big.tsv", "--rna-type", "lncRNA"],
            "motifs": ["motifs", "--rna-type", "lncRNA", "big.tsv", "--no-known"],
            "split": ["split", "big.tsv", "--folds", "0", "--test-size", "0"]}[tool]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr


def test_the_sniffer_keeps_every_byte_of_stdin(cli, work):
    text = "#" + "z" * 200_000 + "\n" + (work / "d.tsv").read_text()
    result = cli("predict", "-", "--rna-type", "lncRNA", input=text)
    assert result.exit_code == 0, result.stderr
    body = [ln for ln in result.stdout.splitlines() if not ln.startswith("#")]
    assert [ln.split("\t")[0] for ln in body[1:]] == list(SEQS)


# --------------------------------------------------------------------------- #18 train byte-reproducible


def test_train_output_is_byte_reproducible_whatever_its_name(cli, work, test_data, one_torch_thread):
    npz = work / "r.npz"
    _embed(cli, test_data / "model-miRNA.tsv", npz)
    digests = []
    for name in ("first.pt", "second-other-name.pt"):
        result = cli("train", test_data / "model-miRNA.tsv", npz, "-o", name, "--folds", "0", "--epochs", "2",
                     "--seed", "3")
        assert result.exit_code == 0, result.stderr
        digests.append(hashlib.sha256((work / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    with zipfile.ZipFile(work / "first.pt") as zf:
        assert all(".part" not in n and "first" not in n for n in zf.namelist())


def test_readme_states_the_thread_condition():
    readme = (REPO / "README.md").read_text()
    assert "same `-t`" in readme or "same number of threads" in readme


# --------------------------------------------------------------------------- #19 SIGTERM


def _slow_predict(work):
    big = "".join(f">s{i}\n{'ACGU' * 250}\n" for i in range(4000))
    (work / "big.fa").write_text(big)
    return RNALOC + ["predict", "big.fa", "--rna-type", "lncRNA", "-o", "out.tsv", "--attention", "att.npz"]


def _catches_sigterm(pid):
    """Whether the process has a SIGTERM handler installed (/proc/PID/status SigCgt, bit 15)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
    return bool(mask & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize("when,times", [("loading", 1), ("loading", 2), ("working", 1), ("working", 2)])
def test_sigterm_early_or_twice_exits_130_and_leaves_nothing(work, when, times):
    """'loading': as soon as Python reaches the package (before click and the tool's imports);
    'working': once the attention NPZ is being written. Twice: the second one does not cut the cleanup."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    proc = subprocess.Popen(_slow_predict(work), cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        if when == "loading":
            while not _catches_sigterm(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
        else:
            while not leftovers(work) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        for _ in range(times):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.02)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert not (work / "out.tsv").exists() and not (work / "att.npz").exists() and leftovers(work) == []


class _DroppedInterrupt:
    """Runs the CLI's signal handler inside ``__del__``, where Python prints the exception it raises
    ("Exception ignored in ...") and drops it: the case a real signal meets when it lands in a weakref
    callback of the import system or in a finaliser (seen in CI: SIGTERM while loading, exit 0)."""

    def __init__(self, signum):
        self.signum = signum

    def __del__(self):
        from rnaloc_tools import interrupts

        (interrupts._on_sigterm if self.signum == signal.SIGTERM else interrupts._on_sigint)(self.signum, None)


@pytest.fixture
def handlers_restored():
    """The handlers of this (pytest) process and the interrupt record put back after the test."""
    from rnaloc_tools import interrupts

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    interrupts.reset()
    yield interrupts
    interrupts.reset()
    for s, handler in before.items():
        signal.signal(s, handler)


#: tools with one or more outputs, each output staged before the interrupt is dropped
DROPPED_CASES = [
    ["predict", "s.fa", "--rna-type", "lncRNA", "-o", "out.tsv", "--attention", "att.npz"],
    ["embed", "s.fa", "--encoder", "one-hot", "-o", "out.npz"],
    ["dedup", "d.tsv", "-o", "out.tsv", "--save-clstr", "out.clstr"],
    ["split", "d.tsv", "-o", "out.tsv", "--test-size", "0.5", "-k", "0"],
]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("args", DROPPED_CASES, ids=lambda a: a[0])
def test_an_interrupt_whose_exception_is_dropped_still_exits_130_and_writes_nothing(
        cli, work, monkeypatch, handlers_restored, args, signum):
    """The interrupt is recorded by the handler; the commit refuses and the CLI exits 130."""
    from rnaloc_tools import fileio

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    stage = fileio.OutputTransaction.stage

    def stage_then_interrupt(self, tmp, path):
        stage(self, tmp, path)
        if not dropped:
            _DroppedInterrupt(signum)  # deleted at once: its exception is dropped, the tool runs on

    monkeypatch.setattr(fileio.OutputTransaction, "stage", stage_then_interrupt)
    before = _snapshot(work)
    result = cli(*args)
    assert dropped == [KeyboardInterrupt], dropped  # the exception really was dropped
    assert result.exit_code == 130, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("interrupted"), result.stderr
    assert _snapshot(work) == before and leftovers(work) == []


def test_an_interrupt_on_stdout_output_still_exits_130(cli, work, monkeypatch, handlers_restored):
    """A tool writing to stdout commits no file: the CLI itself exits 130 when the tool returns."""
    from rnaloc_tools import predict

    monkeypatch.setattr(sys, "unraisablehook", lambda u: None)
    real = predict.Predictor.predict_chunk

    def chunk_then_interrupt(self, *args, **kwargs):
        _DroppedInterrupt(signal.SIGTERM)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(predict.Predictor, "predict_chunk", chunk_then_interrupt)
    result = cli("predict", "s.fa", "--rna-type", "lncRNA")
    assert handlers_restored.pending()
    assert result.exit_code == 130, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("interrupted"), result.stderr


def test_an_interrupt_dropped_while_help_is_printed_exits_130(cli, monkeypatch, handlers_restored):
    """No tool runs (so no commit): the group itself turns the 0 into 130."""
    from rnaloc_tools.cli import PipelineGroup

    monkeypatch.setattr(sys, "unraisablehook", lambda u: None)
    real = PipelineGroup.list_commands

    def list_then_interrupt(self, ctx):
        _DroppedInterrupt(signal.SIGTERM)
        return real(self, ctx)

    monkeypatch.setattr(PipelineGroup, "list_commands", list_then_interrupt)
    result = cli("--help")
    assert handlers_restored.pending() and "Commands:" in result.stdout  # help was printed, then
    assert result.exit_code == 130, result.stderr


def test_an_atomic_write_outside_a_tool_is_not_put_in_place_after_an_interrupt(work, monkeypatch,
                                                                              handlers_restored):
    from rnaloc_tools.fileio import atomic_output

    monkeypatch.setattr(sys, "unraisablehook", lambda u: None)
    _DroppedInterrupt(signal.SIGINT)
    assert handlers_restored.pending()
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(work / "lib.tsv") as fh:
            fh.write("x\n")
    assert not (work / "lib.tsv").exists() and leftovers(work) == []


@pytest.mark.parametrize("command", [["predict", "s.fa", "--rna-type", "lncRNA", "-o", "out.tsv"], ["--version"]],
                         ids=["predict", "version"])
def test_sigterm_while_loading_whose_exit_is_dropped_still_exits_130(work, command):
    """A real process: the handler's SystemExit(130) is dropped while Python loads the tool."""
    script = ("import signal, sys\n"
              "from rnaloc_tools import interrupts\n"
              "import rnaloc_tools.cli as c\n"
              "class D:\n"
              "    def __del__(self):\n"
              "        interrupts._on_sigterm(signal.SIGTERM, None)\n"
              "D()\n"
              f"sys.argv = ['rnaloc'] + {command!r}\n"
              "c.main()\n")
    before = _snapshot(work)
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True, text=True, timeout=300)
    assert "Exception ignored" in proc.stderr and "SystemExit: 130" in proc.stderr, proc.stderr
    assert proc.returncode == 130, proc.stderr
    assert "rnaloc predict" not in proc.stderr and "rnaloc-tools" not in proc.stdout  # the tool never ran
    assert _snapshot(work) == before and leftovers(work) == []


def test_the_library_installs_no_signal_handler():
    """Only the CLI installs handlers: a program that imports the library keeps its own."""
    code = ("import signal, rnaloc_tools.fileio, rnaloc_tools.predict, rnaloc_tools.interrupts\n"
            "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,"
            " signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["True", "True"], out


# --------------------------------------------------------------------------- #20 duplicate columns


@pytest.mark.parametrize("args", [
    ["split", "dup.tsv"], ["predict", "dup.tsv", "--rna-type", "lncRNA"], ["evaluate", "p.tsv", "dup.tsv"],
    ["dedup", "dup.tsv"],
])
def test_duplicate_header_columns_are_named(cli, work, args):
    (work / "dup.tsv").write_text("id\trna_type\tlabel\tsequence\tlabel\n"
                                  "a\tlncRNA\tnucleus\tACGU\tcytoplasm\n")
    line = one_error_line(cli(*args), args[0])
    assert "dup.tsv" in line and "duplicate column 'label'" in line


# --------------------------------------------------------------------------- #21 Galaxy


def test_galaxy_matplotlib_config_goes_in_the_job_folder():
    macros = (REPO / "galaxy" / "macros.xml").read_text()
    env = macros.split('<token name="@ENV@">', 1)[1].split("</token>", 1)[0]
    assert "mktemp" not in env and 'MPLCONFIGDIR="\\$PWD/' in env


# --------------------------------------------------------------------------- global options after the tool name


def test_verbose_and_debug_after_the_tool_name(cli, work):
    result = cli("predict", "s.fa", "--rna-type", "lncRNA", "-o", "x.tsv", "-v")
    assert result.exit_code == 0 and "rnaloc predict: debug: " in result.stderr
    result = cli("predict", "s.fa", "--rna-type", "lncRNA", "-o", "y.tsv")
    assert result.exit_code == 0 and "debug:" not in result.stderr
    plain = subprocess.run(RNALOC + ["embed", "missing.fa", "--encoder", "one-hot", "-o", "y.npz", "--debug"],
                           capture_output=True, text=True, cwd=work)
    assert plain.returncode != 0 and "Traceback" in plain.stderr
