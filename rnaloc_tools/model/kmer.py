"""The k-mer frequency model ("kmer"): the bundled default models' architecture.

The one-hot input (A, C, G, U channels; IUPAC codes as fractions) is turned into
1..kmax-mer frequencies inside the graph, so the same ONNX file takes the same
inputs as every other model. A k-mer's count is the sum over window starts i of
the product of the one-hot vectors x_i (x) x_{i+1} (x) ... (x) x_{i+k-1}; it is
computed as a matrix product of an a-mer and a b-mer window table (a + b = k),
so memory grows with 4^ceil(k/2) per position, not 4^k. An ambiguous code counts
as the matching fractions (an N adds 1/4 to each of four k-mers).

Features: frequencies (count / number of windows), square-root transformed,
plus the log10 length, standardised with the mean and sd of the training data
(buffers, set by :func:`KmerModel.set_scaler` from all the training data, or, in
the generic `rnaloc train` loop, from the first training batch); then a linear
layer (``hidden == 0``: logistic regression) or one hidden ReLU layer; then a
fixed ``bias`` added to the logits (a decision threshold chosen outside,
default 0).

Importance: the first-order contribution of each k-mer window to the margin of
the predicted class over the other (gradient of the margin with respect to the
frequencies, computed analytically in the graph, times the window's
contribution to its frequency), spread over the nucleotides the window covers
and summed over k; positions that push towards the prediction get importance
in proportion to that push, the others none. When no position pushes towards
the prediction the importance is uniform.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register

_EPS = 1e-6


def valid_mask(lengths, width):
    """(B, width) bool: True at positions < length."""
    positions = torch.arange(width, device=lengths.device).unsqueeze(0)  # (1, W)
    return positions < lengths.unsqueeze(1)  # (B, W)


def shift(x, by):
    """x (B, L, C) -> (B, L, C) with out[:, i] = x[:, i + by], zero at the end."""
    if by == 0:
        return x
    return F.pad(x[:, by:], (0, 0, 0, by))[:, : x.shape[1]]  # the slice matters when by > L


def window_products(x, a):
    """x (B, L, 4) -> (B, L, 4^a): out[:, i] = x_i (x) ... (x) x_{i+a-1}, first base most significant.

    Windows that run past the end of ``x`` (or into zero padding) are zero.
    """
    batch, width = x.shape[0], x.shape[1]
    out = x
    for j in range(1, a):
        nxt = shift(x, j)  # (B, L, 4)
        out = (out.unsqueeze(-1) * nxt.unsqueeze(-2)).reshape(batch, width, -1)  # (B, L, 4^(j+1))
    return out


def split(k):
    """A k-mer as an a-mer followed by a b-mer."""
    a = (k + 1) // 2
    return a, k - a


def kmer_counts(x, kmin, kmax):
    """Expected k-mer counts for k = kmin..kmax of a one-hot batch x (B, L, 4), zero beyond lengths.

    Returns a list of (B, 4^k) tensors and the window tables it used (a dict a -> (B, L, 4^a)).
    """
    tables = {}
    counts = []
    for k in range(kmin, kmax + 1):
        a, b = split(k)
        for n in (a, b):
            if n and n not in tables:
                tables[n] = window_products(x, n)
        if b == 0:
            counts.append(tables[a].sum(1))  # (B, 4^a)
        else:
            pair = torch.matmul(tables[a].transpose(1, 2), shift(tables[b], a))  # (B, 4^a, 4^b)
            counts.append(pair.reshape(x.shape[0], -1))  # (B, 4^k)
    return counts, tables


def n_features(kmin, kmax):
    return sum(4**k for k in range(kmin, kmax + 1))


@dataclass
class KmerHParams:
    """1..kmax-mer frequencies (+ log length) -> standardise -> linear or one hidden layer."""

    dim: int = 4
    n_classes: int = 2
    kmin: int = 1
    kmax: int = 5
    hidden: int = 0  # 0: logistic regression on the features; > 0: one hidden ReLU layer
    dropout: float = 0.0
    length_feature: bool = True


@register("kmer", KmerHParams)
class KmerModel(nn.Module):
    """k-mer frequencies computed in the graph from one-hot input, then a small classifier."""

    def __init__(self, hp):
        super().__init__()
        if hp.dim != 4:
            raise ValueError(f"the kmer architecture takes one-hot input (dim 4), not dim {hp.dim}")
        if not 1 <= hp.kmin <= hp.kmax <= 8:
            raise ValueError(f"need 1 <= kmin <= kmax <= 8, got {hp.kmin}..{hp.kmax}")
        self.hp = hp
        self.ks = list(range(hp.kmin, hp.kmax + 1))
        n_in = n_features(hp.kmin, hp.kmax) + int(hp.length_feature)
        self.register_buffer("feature_mean", torch.zeros(n_in))
        self.register_buffer("feature_scale", torch.ones(n_in))
        # 0 until the standardisation is set; `rnaloc train` (the generic loop) sets it from the
        # first training batch, the bundled-model workflow from all the training data
        self.register_buffer("scaler_fitted", torch.zeros((), dtype=torch.int64))
        self.register_buffer("bias", torch.zeros(hp.n_classes))
        self.dropout = nn.Dropout(hp.dropout)
        if hp.hidden > 0:
            self.hidden = nn.Linear(n_in, hp.hidden)
            self.classifier = nn.Linear(hp.hidden, hp.n_classes)
        else:
            self.hidden = None
            self.classifier = nn.Linear(n_in, hp.n_classes)
        self.register_buffer("spread", torch.ones(1, 1, hp.kmax), persistent=False)

    # -- features ---------------------------------------------------------
    def raw_features(self, x, lengths):
        """(B, L, 4), (B,) -> frequencies (B, F) before the square root, the counts' windows, tables."""
        width = x.shape[1]
        x = x * valid_mask(lengths, width).unsqueeze(-1).to(x.dtype)  # (B, L, 4)
        counts, tables = kmer_counts(x, self.hp.kmin, self.hp.kmax)
        windows = []
        freqs = []
        for k, c in zip(self.ks, counts):
            n = (lengths - (k - 1)).clamp(min=1).to(x.dtype).unsqueeze(1)  # (B, 1)
            windows.append(n)
            freqs.append(c / n)
        return torch.cat(freqs, 1), windows, tables

    def features(self, x, lengths):
        """Standardised model input (B, F [+1])."""
        freqs, _, _ = self.raw_features(x, lengths)
        return self._standardise(freqs, lengths)

    def _transform(self, freqs, lengths):
        feats = torch.sqrt(freqs.clamp(min=0.0) + _EPS)
        if self.hp.length_feature:
            feats = torch.cat([feats, torch.log10(lengths.to(freqs.dtype)).unsqueeze(1)], 1)
        return feats

    def _standardise(self, freqs, lengths):
        return (self._transform(freqs, lengths) - self.feature_mean) / self.feature_scale

    @torch.no_grad()
    def fit_scaler(self, x_list):
        """Set the standardisation from training sequences (a list of (L, 4) tensors)."""
        rows = []
        for x in x_list:
            lengths = torch.tensor([x.shape[0]])
            freqs, _, _ = self.raw_features(x.unsqueeze(0), lengths)
            rows.append(self._transform(freqs, lengths))
        self.set_scaler(torch.cat(rows, 0))

    @torch.no_grad()
    def set_scaler(self, transformed):
        """Standardise with the mean and sd of ``transformed`` (N, F) (sd floored)."""
        self.feature_mean.copy_(transformed.mean(0))
        self.feature_scale.copy_(transformed.std(0, unbiased=False).clamp(min=1e-3))
        self.scaler_fitted.fill_(1)

    # -- classifier -------------------------------------------------------
    def head(self, z):
        """Standardised features (B, F) -> logits (B, C) without the decision bias."""
        z = self.dropout(z)
        if self.hidden is not None:
            z = torch.relu(self.hidden(z))
        return self.classifier(z)

    def margin_gradient(self, freqs, z, pred):
        """d(logit[pred] - logit[other]) / d(freqs), analytically (exportable; no autograd) -> (B, F)."""
        other = 1 - pred if self.hp.n_classes == 2 else torch.zeros_like(pred)  # (B,)
        w_out = self.classifier.weight  # (C, H or F')
        direction = w_out[pred] - w_out[other]  # (B, H or F')
        if self.hidden is not None:
            active = (self.hidden(z) > 0).to(z.dtype)  # (B, H)
            grad_z = torch.matmul(direction * active, self.hidden.weight)  # (B, F')
        else:
            grad_z = direction
        n_freq = freqs.shape[1]
        # chain rule through the standardisation and the square root
        return grad_z[:, :n_freq] / self.feature_scale[:n_freq] * 0.5 / torch.sqrt(freqs.clamp(min=0.0) + _EPS)

    def forward(self, x, lengths):
        # x: (B, L, 4) one-hot; lengths: (B,)
        width = x.shape[1]
        freqs, windows, tables = self.raw_features(x, lengths)  # (B, F)
        if self.training and not bool(self.scaler_fitted):  # first training batch (never in eval/export)
            self.set_scaler(self._transform(freqs, lengths).detach())
        z = self._standardise(freqs, lengths)  # (B, F')
        logits = self.head(z) + self.bias  # (B, C)

        grad_f = self.margin_gradient(freqs, z, logits.argmax(1))  # (B, F)

        # contribution of each window start, spread over the nucleotides it covers
        score = x.new_zeros((x.shape[0], width))  # (B, L)
        offset = 0
        for k, n in zip(self.ks, windows):
            a, b = split(k)
            g = grad_f[:, offset : offset + 4**k] / n  # (B, 4^k): per-window contribution
            offset += 4**k
            if b == 0:
                start = (tables[a] * g.unsqueeze(1)).sum(-1)  # (B, L)
            else:
                g = g.reshape(-1, 4**a, 4**b)  # (B, 4^a, 4^b)
                start = (torch.matmul(tables[a], g) * shift(tables[b], a)).sum(-1)  # (B, L)
            covered = F.conv1d(F.pad(start.unsqueeze(1), (k - 1, 0)), self.spread[:, :, :k])  # (B, 1, L)
            score = score + covered.squeeze(1)
        mask = valid_mask(lengths, width).to(x.dtype)  # (B, L)
        push = torch.relu(score) * mask
        total = push.sum(1, keepdim=True)  # (B, 1)
        uniform = mask / lengths.to(x.dtype).unsqueeze(1)
        importance = torch.where(total > 0, push / total.clamp(min=1e-30), uniform)  # (B, L)
        return logits, importance
