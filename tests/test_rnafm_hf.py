"""RNA-FM weights in MultiMolecule's Hugging Face format (multimolecule/rnafm): parity with multimolecule itself.

The reference is the other implementation: ``multimolecule.RnaFmModel`` (its own
tokenizer, its own forward pass) on a seeded random model written with its own
``save_pretrained``. The same folder goes through ``rnaloc embed --weights``.
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import leftovers, one_error_line
from rnaloc_tools.encoders import rnafm_hf
from rnaloc_tools.encoders.rnafm import RnaFmEncoder
from rnaloc_tools.formats import EmbeddingStore

import multimolecule  # noqa: E402,F401 - the parity reference, in the test extra (a missing one fails, never skips)

#: fp32 tolerance against multimolecule's forward pass (the issue: <= 1e-4).
TOL = 1e-4
IUPAC = "RYSWKMBDHVN"


def _seqs():
    rng = np.random.default_rng(12)
    letters = list("ACGU") * 4 + list(IUPAC)
    return {
        "len1": "N",
        "len37": "".join(rng.choice(letters, 37)),
        "len1022": "".join(rng.choice(letters, 1022)),
    }


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A seeded random multimolecule RnaFmModel (2 layers, RNA-FM's width) saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("hf") / "rnafm"
    return rnafm_hf.write_random_hf_checkpoint(str(folder), layers=2, hidden=640, heads=20, ffn=5120, seed=3)


@pytest.fixture(scope="module")
def reference(hf_folder):
    """multimolecule's own tokenizer and forward pass: id -> (L, 640) float32, BOS/EOS stripped."""
    from multimolecule import RnaFmModel, RnaTokenizer

    model = RnaFmModel.from_pretrained(hf_folder).eval()
    tokenizer = RnaTokenizer()
    out = {}
    for rid, seq in _seqs().items():
        batch = tokenizer(seq, return_tensors="pt")
        assert batch["input_ids"].shape[1] == len(seq) + 2
        with torch.no_grad():
            out[rid] = model(**batch).last_hidden_state[0, 1:-1].float().numpy()
    return out


def _max_diff(folder, reference):
    enc = RnaFmEncoder(folder, device="cpu", precision="fp32")
    seqs = _seqs()
    mats = enc.embed(list(seqs.values()))  # one padded batch of the three lengths
    return max(float(np.abs(m - reference[rid]).max()) for rid, m in zip(seqs, mats))


def test_parity_with_multimolecule(hf_folder, reference):
    assert _max_diff(hf_folder, reference) <= TOL


@pytest.mark.parametrize("bug", ["vocabulary order", "position offset"])
def test_parity_test_catches_a_wrong_mapping(hf_folder, reference, monkeypatch, bug):
    """The parity check fails when the vocabulary order or the position rows are mapped wrongly."""
    if bug == "vocabulary order":
        vocab = list(rnafm_hf.HF_VOCAB)
        a, c = vocab.index("A"), vocab.index("C")
        vocab[a], vocab[c] = vocab[c], vocab[a]
        monkeypatch.setattr(rnafm_hf, "HF_VOCAB", tuple(vocab))
    else:
        monkeypatch.setattr(rnafm_hf, "position_rows", lambda w: torch.roll(w, 1, dims=0))
    assert _max_diff(hf_folder, reference) > 100 * TOL


def _fasta(path):
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in _seqs().items()))
    return path


@pytest.mark.parametrize("form", ["folder", "safetensors file"])
def test_embed_cli_reads_the_download(cli, tmp_path, hf_folder, reference, form):
    weights = hf_folder if form == "folder" else os.path.join(hf_folder, "model.safetensors")
    out = tmp_path / "x.npz"
    result = cli("embed", _fasta(tmp_path / "x.fa"), "--weights", weights, "--device", "cpu", "--precision", "fp32",
                 "-o", out)
    assert result.exit_code == 0, result.stderr
    store = EmbeddingStore(out)
    for rid, ref in reference.items():
        got = store.get(rid)  # float16 in the file
        assert got.shape == ref.shape
        assert np.all(np.abs(got - ref) <= TOL + np.spacing(np.abs(ref).astype(np.float16)).astype(np.float32))
    meta = store.meta
    assert meta["weights_format"] == "multimolecule-safetensors" and meta["weights_file"] == "model.safetensors"
    with open(os.path.join(hf_folder, "model.safetensors"), "rb") as fh:
        import hashlib

        assert meta["checkpoint_sha256"] == hashlib.sha256(fh.read()).hexdigest()


def test_npz_meta_records_the_pth_format(cli, tmp_path, tiny_rnafm):
    out = tmp_path / "x.npz"
    result = cli("embed", _fasta(tmp_path / "x.fa"), "--weights", tiny_rnafm, "--device", "cpu", "-o", out)
    assert result.exit_code == 0, result.stderr
    meta = EmbeddingStore(out).meta
    assert meta["weights_format"] == "rna-fm-pth" and meta["weights_file"] == os.path.basename(tiny_rnafm)


def test_pretraining_layout_with_lm_head_and_vocab_file_loads_the_same(tmp_path, hf_folder, reference):
    """The hub's download is saved from RnaFmForPreTraining (backbone under 'model.', LM and SS heads) with vocab.txt."""
    from multimolecule import RnaFmForPreTraining, RnaFmModel

    backbone = RnaFmModel.from_pretrained(hf_folder)
    full = RnaFmForPreTraining(backbone.config)
    full.model.load_state_dict(backbone.state_dict(), strict=False)
    folder = tmp_path / "pretraining"
    full.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(rnafm_hf.HF_VOCAB) + "\n")
    assert _max_diff(str(folder), reference) <= TOL


def _config(folder, **changes):
    path = os.path.join(folder, "config.json")
    cfg = json.load(open(path))
    cfg.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del cfg[key]
    with open(path, "w") as fh:
        json.dump(cfg, fh)


@pytest.mark.parametrize("case, expected", [
    ("mrnafm", "this is mRNA-FM"),
    ("no config.json", "no config.json beside it"),
    ("another size", "a model of another size (24 layers, 1280-d, 20 heads, FFN 5120), not the published RNA-FM"),
    ("tiny without the test mark", "a model of another size (2 layers, 640-d"),
    ("another model", "not RNA-FM (model_type 'rnabert'"),
    ("empty folder", "neither a multimolecule/rnafm download"),
    ("truncated weights", "truncated, corrupted or not a safetensors file"),
])
def test_other_models_are_one_line_errors(cli, tmp_path, hf_folder, case, expected):
    folder = tmp_path / "w"
    shutil.copytree(hf_folder, folder)
    weights = folder
    if case == "mrnafm":  # multimolecule/mrnafm's config: codon model, 1280-d, 3-mer vocabulary
        _config(folder, codon=True, hidden_size=1280, embed_norm=False, vocab_size=131, rnaloc_test_model=None)
    elif case == "no config.json":
        os.remove(folder / "config.json")
        weights = folder / "model.safetensors"
    elif case == "another size":
        _config(folder, num_hidden_layers=24, hidden_size=1280, rnaloc_test_model=None)
    elif case == "tiny without the test mark":
        _config(folder, rnaloc_test_model=None)
    elif case == "another model":
        _config(folder, model_type="rnabert")
    elif case == "empty folder":
        for f in os.listdir(folder):
            os.remove(folder / f)
    elif case == "truncated weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    out.mkdir()
    result = cli("embed", _fasta(tmp_path / "x.fa"), "--weights", weights, "-o", out / "x.npz")
    line = one_error_line(result, "embed")
    assert expected in line, line
    assert leftovers(out) == [] and not (out / "x.npz").exists()


def test_config_that_is_not_a_regular_file_is_refused(tmp_path, hf_folder):
    folder = tmp_path / "w"
    shutil.copytree(hf_folder, folder)
    os.remove(folder / "config.json")
    os.mkfifo(folder / "config.json")  # would block a reader forever
    with pytest.raises(Exception, match="not a regular file"):
        RnaFmEncoder(str(folder), device="cpu")


def test_the_download_layer_norm_epsilon_is_used(tmp_path, hf_folder):
    """A config whose layer_norm_eps is not the package's 1e-5 still matches multimolecule (eps carried over)."""
    from multimolecule import RnaFmModel, RnaTokenizer

    folder = tmp_path / "eps"
    shutil.copytree(hf_folder, folder)
    _config(folder, layer_norm_eps=1e-3)  # 100x the package default, so that ignoring it shows
    seq = _seqs()["len37"]
    model = RnaFmModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        ref = model(**RnaTokenizer()(seq, return_tensors="pt")).last_hidden_state[0, 1:-1].numpy()
    got = RnaFmEncoder(str(folder), device="cpu", precision="fp32").embed([seq])[0]
    assert np.abs(got - ref).max() <= TOL
