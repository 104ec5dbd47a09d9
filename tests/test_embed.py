"""`rnaloc embed`: one-hot and RNA-FM (tiny checkpoint), files and pipes, long sequences, bad inputs, Ctrl-C."""

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import interruptible, leftovers
from rnaloc_tools.encoders.onehot import one_hot
from rnaloc_tools.encoders.rnafm import RnaFmEncoder
from rnaloc_tools.formats import EmbeddingStore, read_records

RNALOC = [sys.executable, "-m", "rnaloc_tools"]
#: float16 storage: values come back within this relative tolerance of the float32 result.
F16_RTOL = 2e-3


def _fasta(path, records):
    with open(path, "w") as fh:
        for rid, seq in records:
            fh.write(f">{rid}\n{seq}\n")
    return path


def _random_seq(rng, n):
    return "".join(rng.choice(list("ACGU"), n))


def _env():
    return dict(os.environ, RNALOC_NO_PROGRESS="1")


def test_one_hot_from_file(cli, test_data, tmp_path):
    out = tmp_path / "x.npz"
    src = test_data / "embed-mixed.fa"
    result = cli("embed", src, "--encoder", "one-hot", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    store = EmbeddingStore(out)
    records = list(read_records(src))
    assert store.ids == [r.id for r in records] == ["mix1", "mix2", "mix3", "mix4"]
    assert store.meta["encoder"] == "one-hot" and store.meta["dim"] == 4
    for rec in records:
        np.testing.assert_allclose(store.get(rec.id), one_hot(rec.seq), rtol=F16_RTOL)
    # T -> U, lower case, IUPAC as fractions: mix1 starts 'acgt' -> A C G U; N = 0.25 each
    np.testing.assert_array_equal(store.get("mix1")[:4], np.eye(4))
    np.testing.assert_allclose(store.get("mix2")[-1], [0.25] * 4)
    np.testing.assert_allclose(store.get("mix2")[0], [0.5, 0, 0.5, 0])  # R = A/G
    assert leftovers(tmp_path) == []


def test_rna_fm_from_file(cli, test_data, tmp_path, tiny_rnafm):
    out = tmp_path / "x.npz"
    src = test_data / "example-circRNA.fa"
    # fp32 on both sides: --precision auto takes bf16 on a CPU with native bf16 (this test compares numbers)
    result = cli("embed", src, "--encoder", "rna-fm", "--weights", tiny_rnafm, "--precision", "fp32", "-o", out)
    assert result.exit_code == 0, result.stderr
    store = EmbeddingStore(out)
    records = list(read_records(src))
    assert store.ids == [r.id for r in records]
    assert store.meta["encoder"] == "rna-fm" and store.meta["dim"] == 32
    assert store.meta["checkpoint_sha256"] == RnaFmEncoder(tiny_rnafm).meta()["checkpoint_sha256"]
    enc = RnaFmEncoder(tiny_rnafm, device="cpu", precision="fp32")
    for rec in records:
        expect = enc.embed([rec.seq[: enc.max_len]])[0]
        got = store.get(rec.id)
        assert got.shape == (min(len(rec.seq), 1022), 32)
        np.testing.assert_allclose(got, expect, rtol=F16_RTOL, atol=F16_RTOL)


def test_weights_from_environment(cli, test_data, tmp_path, tiny_rnafm):
    out = tmp_path / "x.npz"
    result = cli("embed", test_data / "example-miRNA.fa", "-o", out, env={"RNALOC_RNAFM_WEIGHTS": str(tiny_rnafm)})
    assert result.exit_code == 0, result.stderr
    assert EmbeddingStore(out).meta["encoder"] == "rna-fm"


def test_dataset_tsv_and_gz_inputs(cli, test_data, tmp_path):
    gz = tmp_path / "in.fa.gz"
    gz.write_bytes(gzip.compress((test_data / "embed-mixed.fa").read_bytes()))
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert cli("embed", gz, "--encoder", "one-hot", "-o", a).exit_code == 0
    assert EmbeddingStore(a).ids == ["mix1", "mix2", "mix3", "mix4"]
    assert cli("embed", test_data / "embed-dataset.tsv", "--encoder", "one-hot", "-o", b).exit_code == 0
    store = EmbeddingStore(b)
    assert store.ids == ["t1", "t2"]
    np.testing.assert_allclose(store.get("t1"), one_hot("UGGAACU"))


@pytest.mark.parametrize("encoder", ["one-hot", "rna-fm"])
def test_stdin_through_a_real_pipe(cli, test_data, tmp_path, tiny_rnafm, encoder):
    src = test_data / "example-lncRNA.fa"
    from_file, from_pipe = tmp_path / "file.npz", tmp_path / "pipe.npz"
    assert cli("embed", src, "--encoder", encoder, "--weights", tiny_rnafm, "-o", from_file).exit_code == 0
    piped = subprocess.run(
        f"cat '{src}' | '{sys.executable}' -m rnaloc_tools embed - --encoder {encoder} "
        f"--weights '{tiny_rnafm}' -o '{from_pipe}'",
        shell=True, env=_env(), capture_output=True, text=True,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == ""
    a, b = EmbeddingStore(from_file), EmbeddingStore(from_pipe)
    assert a.ids == b.ids == [r.id for r in read_records(src)]
    for rid in a.ids:
        np.testing.assert_array_equal(a.get(rid), b.get(rid))


def test_long_sequence_windows_and_truncate(cli, tmp_path, tiny_rnafm):
    rng = np.random.default_rng(0)
    src = _fasta(tmp_path / "long.fa", [("long", _random_seq(rng, 3000)), ("short", _random_seq(rng, 50))])
    win, cut = tmp_path / "w.npz", tmp_path / "t.npz"
    r1 = cli("embed", src, "--weights", tiny_rnafm, "--long", "windows", "-o", win)
    r2 = cli("embed", src, "--weights", tiny_rnafm, "--long", "truncate", "-o", cut)
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.stderr + r2.stderr
    w, t = EmbeddingStore(win), EmbeddingStore(cut)
    assert w.length("long") == 3000 and t.length("long") == 1022
    assert w.length("short") == t.length("short") == 50
    assert w.meta["long_policy"].startswith("windows") and t.meta["long_policy"] == "truncate"
    # the first 767 nt lie in the first window only: identical to the truncated embedding there
    np.testing.assert_array_equal(w.get("long")[:767], t.get("long")[:767])
    assert np.isfinite(w.get("long")).all()
    assert "truncated" in r2.stderr and "1 of 2" in r2.stderr  # never silent
    assert "windows" in r1.stderr


def test_sequence_alone_equals_sequence_in_a_batch(cli, tmp_path, tiny_rnafm):
    rng = np.random.default_rng(1)
    records = [(f"s{i}", _random_seq(rng, n)) for i, n in enumerate([40, 300, 7, 1000, 120])]
    many, one = tmp_path / "many.npz", tmp_path / "one.npz"
    assert cli("embed", _fasta(tmp_path / "m.fa", records), "--weights", tiny_rnafm, "-o", many).exit_code == 0
    assert cli("embed", _fasta(tmp_path / "o.fa", records[:1]), "--weights", tiny_rnafm, "-o", one).exit_code == 0
    # tolerance: one float16 rounding step of values of magnitude <~4
    np.testing.assert_allclose(EmbeddingStore(many).get("s0"), EmbeddingStore(one).get("s0"), rtol=F16_RTOL, atol=4e-3)


def _bad_inputs(tmp):
    tmp = Path(tmp)
    (tmp / "empty.fa").write_text("")
    (tmp / "notfasta.txt").write_text("hello world\nthis is not a sequence file\n")
    (tmp / "dup.fa").write_text(">a\nACGU\n>a\nGGCC\n")
    (tmp / "emptyseq.fa").write_text(">a\n\n>b\nACGU\n")
    (tmp / "illegal.fa").write_text(">ok\nACGU\n>bad\nACGXU\n")
    return tmp


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty.fa", "empty input"),
        ("notfasta.txt", "not FASTA"),
        ("dup.fa", "record 'a': duplicate id"),
        ("emptyseq.fa", "record 'a': empty sequence"),
        ("illegal.fa", "record 'bad': illegal letter(s) 'X'"),
    ],
)
@pytest.mark.parametrize("encoder", ["one-hot", "rna-fm"])
def test_bad_sequence_inputs(cli, tmp_path, tiny_rnafm, name, message, encoder):
    _bad_inputs(tmp_path)
    out = tmp_path / "out" / "x.npz"
    out.parent.mkdir()
    result = cli("embed", tmp_path / name, "--encoder", encoder, "--weights", tiny_rnafm, "-o", out)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and name in lines[0], result.stderr
    assert list(out.parent.iterdir()) == []


def _bad_weights(tmp, tiny):
    import torch

    tmp = Path(tmp)
    data = Path(tiny).read_bytes()
    (tmp / "truncated.pth").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[len(data) // 3 : len(data) // 3 + 512] = b"\0" * 512
    (tmp / "corrupted.pth").write_bytes(bytes(corrupt))
    torch.save({"linear.weight": torch.zeros(4, 4)}, tmp / "statedict.pth")
    (tmp / "text.pth").write_text("RNA-FM weights go here\n")
    import zipfile

    with zipfile.ZipFile(tmp / "zip.pth", "w") as zf:
        zf.writestr("readme.txt", "not a checkpoint")
    return tmp


@pytest.mark.parametrize(
    "weights, message",
    [
        ("missing.pth", "weights file not found"),
        ("truncated.pth", "truncated"),
        ("corrupted.pth", "corrupted"),
        ("statedict.pth", "not an RNA-FM checkpoint"),
        ("text.pth", "not a PyTorch checkpoint"),
        ("zip.pth", "not a PyTorch checkpoint"),
    ],
)
def test_bad_weights(cli, test_data, tmp_path, tiny_rnafm, weights, message):
    _bad_weights(tmp_path, tiny_rnafm)
    out = tmp_path / "out" / "x.npz"
    out.parent.mkdir()
    result = cli("embed", test_data / "example-miRNA.fa", "--weights", tmp_path / weights, "-o", out)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and weights in lines[0], result.stderr
    assert list(out.parent.iterdir()) == []


def test_weights_not_given(cli, test_data, tmp_path):
    result = cli("embed", test_data / "example-miRNA.fa", "-o", tmp_path / "x.npz", env={"RNALOC_RNAFM_WEIGHTS": None})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "weights not given" in lines[0] and "github.com/ml4bio/RNA-FM" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["no-such-folder/x.npz", "a-file/x.npz"])
def test_unwritable_output(cli, test_data, tmp_path, where):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("a file, not a folder\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("embed", test_data / "example-miRNA.fa", "--encoder", "one-hot", "-o", tmp_path / where)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list((tmp_path / "a-folder").iterdir()) == []


def test_read_only_folder(cli, test_data, read_only_folder):
    result = cli("embed", test_data / "example-miRNA.fa", "--encoder", "one-hot", "-o", read_only_folder / "x.npz")
    assert result.exit_code == 1 and "x.npz: cannot write" in result.stderr, result.stderr
    assert list(read_only_folder.iterdir()) == []


def test_npz_to_stdout_is_a_usage_error(cli, test_data):
    result = cli("embed", test_data / "example-miRNA.fa", "--encoder", "one-hot", "-o", "-")
    assert result.exit_code == 2 and "stdout" in result.stderr


def test_sigint_leaves_no_partial_npz(tmp_path, tiny_rnafm):
    rng = np.random.default_rng(2)
    src = _fasta(tmp_path / "big.fa", [(f"s{i}", _random_seq(rng, 1000)) for i in range(3000)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "x.npz"
    proc = subprocess.Popen(
        RNALOC + ["embed", str(src), "--weights", str(tiny_rnafm), "--toks-per-batch", "2048", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), preexec_fn=interruptible,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".part") for p in out_dir.iterdir()):  # the writer has started
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)  # inside the embedding loop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_batches_respect_the_budget_and_limit_padding():
    from types import SimpleNamespace

    from rnaloc_tools.embed import MAX_PADDING, pack_batches

    lengths = [1022, 1022, 1022, 944, 791, 537, 504, 309, 272, 201, 150, 144, 72, 64] + [22] * 5 + [19, 18]
    pieces = [SimpleNamespace(seq="A" * n) for n in lengths]
    batches = list(pack_batches(pieces, 4096, extra_tokens=2))
    assert sorted(len(p.seq) for b in batches for p in b) == sorted(lengths)  # every piece once
    for b in batches:
        width = max(len(p.seq) for p in b) + 2
        real = sum(len(p.seq) + 2 for p in b)
        assert width * len(b) <= 4096
        assert width * len(b) - real <= MAX_PADDING * width * len(b)
    assert not any({791, 504} <= {len(p.seq) for p in b} for b in batches)  # the budget alone would join them
    # dense lengths (a large file) fill the budget: padding never splits them
    dense = [SimpleNamespace(seq="A" * n) for n in range(1000, 900, -1)]
    assert [len(b) for b in pack_batches(dense, 4096, extra_tokens=2)][:3] == [4, 4, 4]
    # a piece longer than the budget gets a batch of its own
    assert [len(b) for b in pack_batches([SimpleNamespace(seq="A" * 50)] * 2, 40)] == [1, 1]


def test_batches_budget_counts_the_encoders_padded_width():
    from types import SimpleNamespace

    from rnaloc_tools.embed import pack_batches

    ladder = lambda width: -(-width // 64) * 64  # noqa: E731 - an encoder's batch_width: steps of 64
    short = [SimpleNamespace(seq="A" * 20)] * 10  # 22 tokens each, padded to 64
    assert [len(b) for b in pack_batches(short, 256, extra_tokens=2)] == [10]  # 10 x 22 tokens fit
    assert [len(b) for b in pack_batches(short, 256, extra_tokens=2, batch_width=ladder)] == [4, 4, 2]  # 4 x 64
    # the padding limit counts the longest piece, not the rounded width: short pieces still share a batch
    assert [len(b) for b in pack_batches(short, 4096, extra_tokens=2, batch_width=ladder)] == [10]
