"""The kmer architecture (the bundled models' graph) keeps the model contract."""

import itertools

import numpy as np
import pytest
import torch

from rnaloc_tools.encoders.onehot import one_hot
from rnaloc_tools.model import build_model
from rnaloc_tools.model.checkpoint import save_checkpoint
from rnaloc_tools.model.kmer import kmer_counts

RNG = np.random.default_rng(7)


def random_seq(n):
    return "".join(RNG.choice(list("ACGU"), n))


def batch(seqs):
    width = max(map(len, seqs))
    x = torch.zeros(len(seqs), width, 4)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.from_numpy(one_hot(s))
    return x, torch.tensor([len(s) for s in seqs])


def random_model(hidden=0, kmax=4, seed=0):
    torch.manual_seed(seed)
    model, hp = build_model("kmer", dim=4, n_classes=2, kmax=kmax, hidden=hidden)
    with torch.no_grad():
        model.feature_mean.uniform_(0.0, 0.3)
        model.feature_scale.uniform_(0.05, 0.2)
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval(), hp


def naive_counts(seq, k):
    counts = dict.fromkeys(("".join(p) for p in itertools.product("ACGU", repeat=k)), 0.0)
    for i in range(len(seq) - k + 1):
        counts[seq[i : i + k]] += 1
    return np.array(list(counts.values()))


@pytest.mark.parametrize("length", [1, 2, 5, 60])
def test_counts_match_naive_counting(length):
    seq = random_seq(length)
    x, _ = batch([seq])
    counts, _ = kmer_counts(x, 1, 6)
    for k, c in zip(range(1, 7), counts):
        np.testing.assert_allclose(c[0].numpy(), naive_counts(seq, k), atol=1e-5)


def test_ambiguous_code_counts_as_fractions():
    x, _ = batch(["ANG"])
    counts, _ = kmer_counts(x, 2, 2)
    two = dict(zip(("".join(p) for p in itertools.product("ACGU", repeat=2)), counts[0][0].tolist()))
    # AN -> AA, AC, AG, AU; NG -> AG, CG, GG, UG; a quarter each
    assert two["AA"] == pytest.approx(0.25) and two["CG"] == pytest.approx(0.25) and two["AG"] == pytest.approx(0.5)
    assert sum(two.values()) == pytest.approx(2.0)


@pytest.mark.parametrize("hidden", [0, 16])
def test_importance_is_a_distribution_zero_beyond_length(hidden):
    model, _ = random_model(hidden)
    seqs = [random_seq(n) for n in (3, 40, 257, 1)]
    x, lengths = batch(seqs)
    with torch.no_grad():
        logits, imp = model(x, lengths)
    assert logits.shape == (4, 2) and imp.shape == (4, 257)
    assert (imp >= 0).all()
    np.testing.assert_allclose(imp.sum(1).numpy(), 1.0, atol=1e-5)
    for i, n in enumerate(lengths.tolist()):
        assert (imp[i, n:] == 0).all()


@pytest.mark.parametrize("hidden", [0, 16])
def test_batch_invariance(hidden):
    model, _ = random_model(hidden)
    seqs = [random_seq(n) for n in (30, 500, 7, 129)]
    x, lengths = batch(seqs)
    with torch.no_grad():
        logits, imp = model(x, lengths)
        for i, s in enumerate(seqs):
            xi, li = batch([s])
            lo, im = model(xi, li)
            np.testing.assert_allclose(lo[0].numpy(), logits[i].numpy(), atol=1e-5)
            np.testing.assert_allclose(im[0].numpy(), imp[i, : len(s)].numpy(), atol=1e-6)


def test_padding_content_is_ignored():
    model, _ = random_model()
    x, lengths = batch([random_seq(50), random_seq(80)])
    noisy = x.clone()
    noisy[0, 50:] = torch.rand(30, 4)  # garbage beyond the length
    with torch.no_grad():
        a, b = model(x, lengths), model(noisy, lengths)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(a[1].numpy(), b[1].numpy(), atol=1e-7)


def test_importance_points_at_the_k_mer_that_drives_the_prediction():
    # Only the 3-mer GAU pushes towards class 1; it occurs once, at positions 20..22.
    model, _ = build_model("kmer", dim=4, n_classes=2, kmax=3, length_feature=False)
    model.eval()
    gau = 4 + 16 + (2 * 16 + 0 * 4 + 3)  # after the 1-mers and the 2-mers
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[1, gau] = 5.0
    seq = "C" * 20 + "GAU" + "C" * 30
    with torch.no_grad():
        logits, imp = model(*batch([seq]))
    assert logits[0].argmax() == 1
    assert imp[0, 20:23].sum() == pytest.approx(1.0, abs=1e-5)
    assert imp[0, :20].sum() == 0 and imp[0, 23:].sum() == 0


@pytest.mark.parametrize("hidden", [0, 8])
def test_gradient_of_the_margin_matches_autograd(hidden):
    # The importance rests on an analytic gradient (ONNX has no autograd); check it against autograd.
    model, _ = random_model(hidden=hidden, kmax=3)
    x, lengths = batch([random_seq(40)])
    freqs, _, _ = model.raw_features(x, lengths)
    freqs = freqs.detach().requires_grad_(True)
    logits = model.head(model._standardise(freqs, lengths))
    pred = int(logits.argmax(1))
    (logits[0, pred] - logits[0, 1 - pred]).backward()
    with torch.no_grad():
        analytic = model.margin_gradient(freqs, model._standardise(freqs, lengths), torch.tensor([pred]))
    np.testing.assert_allclose(analytic[0].numpy(), freqs.grad[0].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hidden", [0, 16])
def test_onnx_export_matches_torch_at_unseen_lengths(tmp_path, hidden):
    ort = pytest.importorskip("onnxruntime")
    from rnaloc_tools.encoders.onehot import OneHotEncoder
    from rnaloc_tools.model.onnx_export import export_onnx

    model, hp = random_model(hidden, kmax=5)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model, hp, arch="kmer", classes=["nucleus", "cytoplasm"], rna_type="lncRNA",
                    encoder=OneHotEncoder().meta())
    export_onnx(ckpt, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for lengths in [(1,), (3000,), (64, 9, 700)]:
        x, lens = batch([random_seq(n) for n in lengths])
        with torch.no_grad():
            logits, imp = model(x, lens)
        p, a = session.run(["probabilities", "attention"], {"embeddings": x.numpy(), "lengths": lens.numpy()})
        np.testing.assert_allclose(p, torch.softmax(logits, 1).numpy(), atol=1e-5)
        np.testing.assert_allclose(a, imp.numpy(), atol=1e-5)


def test_generic_training_loop_sets_the_scaler_once_from_the_first_batch():
    model, _ = build_model("kmer", dim=4, n_classes=2, kmax=3)
    x, lengths = batch([random_seq(n) for n in (30, 90, 45)])
    model.eval()
    model(x, lengths)  # inference never touches the scaler
    assert int(model.scaler_fitted) == 0 and (model.feature_scale == 1).all()
    model.train()
    model(x, lengths)
    z = model.features(x, lengths)
    assert int(model.scaler_fitted) == 1
    np.testing.assert_allclose(z.mean(0).detach().numpy(), 0.0, atol=1e-4)
    scale = model.feature_scale.clone()
    model(*batch([random_seq(500)]))  # a later batch leaves it alone
    assert torch.equal(scale, model.feature_scale)
