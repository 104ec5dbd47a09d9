"""Promises that cross tools: each test follows a promise through train -> export-onnx -> predict
(or embed) the way a user meets it, so that breaking the promise anywhere on the way fails here.

- the tie rule: a model records the class that was more frequent in its training data, and an exact
  0.5/0.5 output is called as that class by `rnaloc predict` (never silently class 0);
- `train --max-len N`: `predict` shows the model the first N positions of a longer sequence, exactly
  as in training, and its attention is zero beyond N;
- `embed --long windows`: every position of a long sequence is the mean of the windows that cover it;
- the same input gives the same bytes, run after run.
"""

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore, read_records, read_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write_fasta(path, records):
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))
    return path


def _predictions(path):
    return pd.read_csv(path, sep="\t", comment="#")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the tie class reaches `rnaloc predict` -----------------------------------------------------

def _tied_model(cli, test_data, folder, majority):
    """A one-hot model trained on data where ``majority`` is the larger class, then given a zero
    classifier layer, so that it outputs exactly 0.5/0.5 for every sequence."""
    table = read_table(test_data / "model-miRNA.tsv").df
    minority = table[table.label != majority]
    kept = pd.concat([table[table.label == majority], minority.iloc[: len(minority) // 2]])
    kept = kept.drop(columns=[c for c in ("split", "fold") if c in kept.columns])
    dataset = folder / "train.tsv"
    kept.to_csv(dataset, sep="\t", index=False)
    npz = folder / "e.npz"
    assert cli("embed", dataset, "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("train", dataset, npz, "-o", folder / "m.pt", "--folds", "0", "--epochs", "1")
    assert result.exit_code == 0, result.stderr
    ckpt = torch.load(folder / "m.pt", weights_only=True)
    assert ckpt["tie_class"] == majority  # recorded from the training data's class counts
    for key in ("classifier.weight", "classifier.bias"):
        ckpt["state_dict"][key] = torch.zeros_like(ckpt["state_dict"][key])
    torch.save(ckpt, folder / "tied.pt")
    result = cli("export-onnx", folder / "tied.pt", "-o", folder / "tied.onnx")
    assert result.exit_code == 0, result.stderr
    return folder / "tied.onnx"


@pytest.mark.parametrize("majority", ["intracellular", "extracellular"])
def test_an_exact_tie_is_called_as_the_recorded_training_majority(cli, test_data, tmp_path, majority):
    onnx_model = _tied_model(cli, test_data, tmp_path, majority)
    out = tmp_path / "p.tsv"
    result = cli("predict", test_data / "example-miRNA.fa", "--model", onnx_model, "-o", out)
    assert result.exit_code == 0, result.stderr
    rows = _predictions(out)
    assert len(rows) == len(list(read_records(test_data / "example-miRNA.fa")))
    assert (rows["probability_extracellular"] == 0.5).all() and (rows["probability_intracellular"] == 0.5).all()
    assert (rows["prediction"] == majority).all(), rows["prediction"].tolist()


# --- a model trained with --max-len N sees the first N positions in predict too ------------------

def test_a_max_len_model_predicts_long_sequences_as_their_first_n_nucleotides(cli, test_data, tmp_path):
    n = 20
    npz = tmp_path / "e.npz"
    assert cli("embed", test_data / "model-miRNA.tsv", "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("train", test_data / "model-miRNA.tsv", npz, "-o", tmp_path / "m.pt", "--folds", "0",
                 "--max-len", n, "--epochs", "2")
    assert result.exit_code == 0, result.stderr
    assert cli("export-onnx", tmp_path / "m.pt", "-o", tmp_path / "m.onnx").exit_code == 0

    records = [(r.id, r.seq) for r in read_records(test_data / "example-miRNA.fa")]
    long = [(rid, seq) for rid, seq in records if len(seq) > n + 5]
    assert len(long) >= 3, "the example needs sequences longer than the crop"
    full = _write_fasta(tmp_path / "full.fa", long)
    cropped = _write_fasta(tmp_path / "cropped.fa", [(rid, seq[:n]) for rid, seq in long])
    outs = {}
    for name, fasta in (("full", full), ("cropped", cropped)):
        out, att = tmp_path / f"{name}.tsv", tmp_path / f"{name}.att.npz"
        result = cli("predict", fasta, "--model", tmp_path / "m.onnx", "--attention", att, "-o", out)
        assert result.exit_code == 0, result.stderr
        outs[name] = (_predictions(out), EmbeddingStore(att, format_name=ATTENTION_FORMAT))
    (p_full, a_full), (p_cut, a_cut) = outs["full"], outs["cropped"]
    prob_cols = [c for c in p_full.columns if c.startswith("probability_")]
    np.testing.assert_array_equal(p_full[prob_cols].to_numpy(), p_cut[prob_cols].to_numpy())
    assert p_full["prediction"].tolist() == p_cut["prediction"].tolist()
    for rid, seq in long:
        weights_full, weights_cut = a_full.get(rid)[:, 0], a_cut.get(rid)[:, 0]
        assert len(weights_full) == len(seq)  # one weight per nucleotide of the input sequence
        np.testing.assert_allclose(weights_full[:n], weights_cut, rtol=1e-6, atol=1e-7)
        assert not weights_full[n:].any()  # zero attention beyond the crop
        assert weights_full[:n].sum() == pytest.approx(1, abs=1e-5)


# --- --long windows: the mean of the windows that cover each position -----------------------------

def test_window_averaging_at_every_position_of_a_3000_nt_sequence(cli, tmp_path, tiny_rnafm):
    rng = np.random.default_rng(11)
    seq = "".join(rng.choice(list("ACGU"), 3000))
    result = cli("embed", _write_fasta(tmp_path / "long.fa", [("long", seq)]), "--weights", tiny_rnafm,
                 "--long", "windows", "-o", tmp_path / "w.npz")
    assert result.exit_code == 0, result.stderr
    merged = EmbeddingStore(tmp_path / "w.npz").get("long").astype(np.float64)
    assert merged.shape[0] == 3000

    # By hand, from the documented rule: windows of 1022 nt overlapping by 1022 // 4 = 255 nt
    # (stride 767), the last one ending at the sequence's end.
    spans = [(0, 1022), (767, 1789), (1534, 2556), (1978, 3000)]
    windows = _write_fasta(tmp_path / "windows.fa", [(f"w{s}", seq[s:e]) for s, e in spans])
    result = cli("embed", windows, "--weights", tiny_rnafm, "-o", tmp_path / "parts.npz")
    assert result.exit_code == 0, result.stderr
    parts = EmbeddingStore(tmp_path / "parts.npz")
    expected = np.zeros_like(merged)
    for pos in range(3000):
        covering = [parts.get(f"w{s}")[pos - s].astype(np.float64) for s, e in spans if s <= pos < e]
        expected[pos] = np.mean(covering, axis=0)
    # Both sides went through float16 storage (the windows' means, and each window alone):
    # a few float16 rounding steps of values of magnitude <~4.
    np.testing.assert_allclose(merged, expected, rtol=2e-3, atol=4e-3)
    # the overlaps really are averages: they differ from either window alone
    only_first = parts.get("w0")[767:1022].astype(np.float64)
    assert np.abs(merged[767:1022] - only_first).max() > 1e-2


# --- the same input gives the same bytes -----------------------------------------------------------

@pytest.mark.parametrize("rna_type", ["miRNA", "lncRNA", "circRNA"])
def test_two_predict_runs_write_identical_files(cli, test_data, tmp_path, rna_type):
    fasta = test_data / f"example-{rna_type}.fa"
    out, att = tmp_path / "p.tsv", tmp_path / "a.npz"
    digests = []
    for _ in range(2):
        result = cli("predict", fasta, "--rna-type", rna_type, "--attention", att, "-o", out)
        assert result.exit_code == 0, result.stderr
        digests.append((_sha(out), _sha(att)))
    assert digests[0] == digests[1]


def test_two_embed_runs_write_identical_files(cli, test_data, tmp_path, tiny_rnafm):
    digests = []
    out = tmp_path / "e.npz"
    for _ in range(2):
        result = cli("embed", test_data / "example-lncRNA.fa", "--weights", tiny_rnafm, "-o", out)
        assert result.exit_code == 0, result.stderr
        digests.append(_sha(out))
    assert digests[0] == digests[1]


# --- a failed overwrite keeps the previous file ------------------------------------------------
#
# A real full disk: a small tmpfs mounted over the output folder inside a private mount namespace
# (`unshare -m`, root only). The folder holds the previous output (one 4 KiB page) and a filler, so
# only FREE_PAGES pages are left; the tool is asked to overwrite the previous output with something
# larger and must fail with one line, leaving the previous bytes and no temporary file.

import os  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from conftest import REPO  # noqa: E402

PAGE = 4096


def _can_mount_tmpfs():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=8k none /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_full_disk = pytest.mark.skipif(
    not _can_mount_tmpfs(), reason="a full disk is simulated with a tmpfs in a private mount namespace: needs root "
    "and `unshare -m` (CI runs as root)")


def _on_a_full_disk(tmp_path, argv, target, free_pages):
    """Run ``rnaloc ARGV`` with the folder of ``target`` on a nearly full tmpfs; return
    (exit code, stderr, names in the folder afterwards, bytes of ``target`` afterwards)."""
    folder = target.parent
    folder.mkdir(exist_ok=True)
    previous = b"previous bytes\n" + b"x" * (PAGE - 15)
    size = PAGE * (2 + free_pages)  # the previous output, the filler, and the free pages
    rnaloc = [sys.executable, "-m", "rnaloc_tools"] + [str(a) for a in argv]
    script = "\n".join([
        f"mount -t tmpfs -o size={size} none {shlex.quote(str(folder))} || exit 99",
        f"printf '%s' {shlex.quote(previous.decode())} > {shlex.quote(str(target))}",
        f"head -c {PAGE} /dev/zero > {shlex.quote(str(folder / 'filler'))}",
        f"{shlex.join(rnaloc)} 2> {shlex.quote(str(tmp_path / 'stderr'))}",
        "echo rc=$?",
        f"ls -A {shlex.quote(str(folder))}",
        f"echo ---; cat {shlex.quote(str(target))}",
    ])
    env = dict(os.environ, PYTHONPATH=str(REPO), RNALOC_NO_PROGRESS="1")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, env=env, timeout=600)
    head, _, content = done.stdout.partition(b"\n---\n")
    lines = head.decode().splitlines()
    assert lines and lines[0].startswith("rc="), done.stdout + done.stderr
    return int(lines[0][3:]), (tmp_path / "stderr").read_text(), sorted(lines[1:]), content, previous


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, test_data):
    from rnaloc_tools.embed import embed_records
    from rnaloc_tools.encoders import get_encoder
    from rnaloc_tools.model.onnx_export import export_onnx
    from rnaloc_tools.model.training import TrainConfig, train_to_files
    from rnaloc_tools.predict import predict_file

    folder = tmp_path_factory.mktemp("small-model")
    embed_records(read_records(test_data / "model-miRNA.tsv"), get_encoder("one-hot"), folder / "e.npz")
    train_to_files(test_data / "model-miRNA.tsv", [folder / "e.npz"], folder / "m.pt", TrainConfig(folds=0, epochs=1))
    export_onnx(folder / "m.pt", folder / "m.onnx")
    predict_file(str(test_data / "model-miRNA.tsv"), str(folder / "p.tsv"), model=str(folder / "m.onnx"))
    return folder


def _cases(test_data, datasets, model):
    """tool -> (argv with OUT for the output, output file name, free pages left)."""
    mirna = datasets / "miRNA" / "train.tsv.gz"
    return {
        "curate": (["curate", datasets / "raw" / "rnalocate-circrna-export.tsv.gz", "--rna-type", "circRNA",
                    "-o", "OUT"], "curated.tsv", 1),
        "dedup": (["dedup", mirna, "--keep", "all", "-o", "OUT"], "dedup.tsv", 1),
        "split": (["split", test_data / "split-input.tsv", "-o", "OUT"], "split.tsv", 0),
        "embed": (["embed", test_data / "example-lncRNA.fa", "--encoder", "one-hot", "-o", "OUT"], "e.npz", 1),
        "train": (["train", test_data / "model-miRNA.tsv", model / "e.npz", "--folds", "0", "--epochs", "1",
                   "--force", "-o", "OUT"], "m.pt", 1),
        "export-onnx": (["export-onnx", model / "m.pt", "--force", "-o", "OUT"], "m.onnx", 1),
        "predict": (["predict", mirna, "--model", model / "m.onnx", "-o", "OUT"], "p.tsv", 1),
        "evaluate": (["evaluate", model / "p.tsv", test_data / "model-miRNA.tsv", "-o", "OUT"], "metrics.tsv", 0),
        # motifs writes a folder of tables and logos: OUTDIR is that folder, the previous motifs.tsv in it
        "motifs": (["motifs", "--rna-type", "miRNA", test_data / "example-miRNA.fa", "-o", "OUTDIR"],
                   "motifs.tsv", 1),
    }


@needs_full_disk
@pytest.mark.parametrize("tool", ["curate", "dedup", "split", "embed", "train", "export-onnx", "predict", "evaluate",
                                  "motifs"])
def test_a_failed_overwrite_on_a_full_disk_keeps_the_previous_file(tmp_path, test_data, datasets, small_model, tool):
    if tool in ("dedup", "split") and shutil.which("cd-hit-est") is None:
        pytest.skip("cd-hit-est not installed")
    argv, name, free_pages = _cases(test_data, datasets, small_model)[tool]
    target = tmp_path / "out" / name
    if tool == "train":  # its report folder goes on the full disk too
        argv = argv + ["--report-dir", tmp_path / "out" / "report"]
    argv = [target if a == "OUT" else target.parent if a == "OUTDIR" else a for a in argv]
    rc, stderr, names, content, previous = _on_a_full_disk(tmp_path, argv, target, free_pages)
    # the log lines before it are fine; the failure itself is one line, and no traceback
    errors = [line for line in stderr.strip().splitlines() if ": error: " in line or "Traceback" in line]
    assert rc == 1, stderr
    assert len(errors) == 1 and errors[0].startswith(f"rnaloc {tool}: error: "), stderr  # one line, no traceback
    assert content == previous  # the previous output survives, byte for byte
    assert names == sorted([name, "filler"])  # no temporary file, no partial report
    assert "no space left on device" in errors[0].lower() and "unexpected" not in errors[0], errors[0]
    # it names the file it could not write: the output, or (train) a file of its report folder
    assert str(target) in errors[0] or target.name in errors[0] or str(target.parent) in errors[0], errors[0]
# --- an output folder nobody can write into (root included) -------------------------------------

@pytest.mark.parametrize("tool", ["embed", "predict", "train-report", "motifs"])
def test_a_read_only_output_folder_is_refused_before_the_work(cli, test_data, tmp_path, read_only_folder, tool):
    fasta = test_data / "example-miRNA.fa"
    if tool == "embed":
        argv = ["embed", fasta, "--encoder", "one-hot", "-o", read_only_folder / "e.npz"]
    elif tool == "predict":
        argv = ["predict", fasta, "--rna-type", "miRNA", "-o", read_only_folder / "p.tsv"]
    elif tool == "motifs":
        argv = ["motifs", "--rna-type", "miRNA", fasta, "-o", read_only_folder / "motifs"]
    else:
        npz = tmp_path / "e.npz"
        assert cli("embed", test_data / "model-miRNA.tsv", "--encoder", "one-hot", "-o", npz).exit_code == 0
        argv = ["train", test_data / "model-miRNA.tsv", npz, "--folds", "0", "--epochs", "1",
                "-o", tmp_path / "m.pt", "--report-dir", read_only_folder / "report"]
    result = cli(*argv)
    command = argv[0]
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert result.exit_code == 1, result.stderr
    assert len(errors) == 1 and errors[0].startswith(f"rnaloc {command}: error: ") and "writ" in errors[0], result.stderr
    assert list(read_only_folder.iterdir()) == []
    assert not (tmp_path / "m.pt").exists()  # train: nothing written elsewhere either
