"""The RNALoc-LM head ("rnaloc") and the paper's Transformer + MLP baseline ("transformer").

Both keep the contract of :mod:`rnaloc_tools.model`: ``logits, importance =
module(x, lengths)`` with masking everywhere, so that a sequence's outputs never
depend on the rest of its batch, and both export to ONNX with dynamic batch and
length: attention is written with explicit matmul/softmax (``nn.MultiheadAttention``
pins the length in the exporters) and the backward LSTM direction runs a
forward LSTM over each sequence reversed within its own length (a gather), so
it never sees padding (``pack_padded_sequence`` does not export well).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register


def valid_mask(lengths, width):
    """(B, width) bool: True at positions < length."""
    positions = torch.arange(width, device=lengths.device).unsqueeze(0)  # (1, W)
    return positions < lengths.unsqueeze(1)  # (B, W)


def reverse_within_length(x, lengths):
    """Reverse each sequence of ``x`` (B, L, C) within its own length; padding stays at the end."""
    width = x.shape[1]
    positions = torch.arange(width, device=x.device).unsqueeze(0)  # (1, L)
    rev = lengths.unsqueeze(1) - 1 - positions  # (B, L)
    index = torch.where(rev >= 0, rev, positions)  # padding positions map to themselves
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def masked_mean(x, mask):
    """Mean of ``x`` (B, L, C) over the positions where ``mask`` (B, L) is True -> (B, C)."""
    weights = mask.to(x.dtype).unsqueeze(-1)  # (B, L, 1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class MaskedBiLSTM(nn.Module):
    """A stacked bidirectional LSTM whose backward direction never sees padding."""

    def __init__(self, input_size, hidden, layers):
        super().__init__()
        self.hidden = hidden
        self.forward_lstms = nn.ModuleList()
        self.backward_lstms = nn.ModuleList()
        for i in range(layers):
            size = input_size if i == 0 else 2 * hidden
            self.forward_lstms.append(nn.LSTM(size, hidden, batch_first=True))
            self.backward_lstms.append(nn.LSTM(size, hidden, batch_first=True))

    def forward(self, x, lengths):
        # x: (B, L, C) zero beyond lengths; returns (B, L, 2 * hidden), zero beyond lengths
        mask = valid_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        state = x.new_zeros((1, x.shape[0], self.hidden))  # (1, B, H): keeps the batch dynamic in ONNX
        for fwd, bwd in zip(self.forward_lstms, self.backward_lstms):
            out_f, _ = fwd(x, (state, state))  # (B, L, H)
            out_b, _ = bwd(reverse_within_length(x, lengths), (state, state))  # (B, L, H) reversed
            out_b = reverse_within_length(out_b, lengths)
            x = torch.cat([out_f, out_b], dim=2) * mask  # (B, L, 2H)
        return x


class MaskedMultiheadAttention(nn.Module):
    """Self-attention with a key padding mask; returns the output and the head-averaged weights."""

    def __init__(self, embed, heads):
        super().__init__()
        if embed % heads:
            raise ValueError(f"attention embed size {embed} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = embed // heads
        self.in_proj = nn.Linear(embed, 3 * embed)
        self.out_proj = nn.Linear(embed, embed)

    def forward(self, x, mask):
        # x: (B, L, E); mask: (B, L) True at valid positions
        batch, width, embed = x.shape
        qkv = self.in_proj(x).reshape(batch, width, 3, self.heads, self.head_dim)  # (B, L, 3, H, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, d)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)  # (B, H, L, L)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))  # every row has a valid key
        weights = torch.softmax(scores, dim=-1)  # (B, H, L, L)
        out = torch.matmul(weights, v)  # (B, H, L, d)
        out = out.transpose(1, 2).reshape(batch, width, embed)  # (B, L, E)
        return self.out_proj(out), weights.mean(1)  # (B, L, E), (B, L, L)


def received_attention(weights, mask):
    """Attention each key position receives, averaged over the valid queries -> (B, L)."""
    q = mask.to(weights.dtype).unsqueeze(-1)  # (B, L, 1)
    return (weights * q).sum(1) / q.sum(1).clamp(min=1.0)  # (B, L)


def normalise(importance, mask):
    """Zero beyond the length, sum 1 over each sequence's positions."""
    importance = importance * mask.to(importance.dtype)
    return importance / importance.sum(1, keepdim=True).clamp(min=1e-12)


def _check_positive(hp, *names):
    for name in names:
        value = getattr(hp, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")


def _check_dropout(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"dropout must be a number from 0 to below 1, not {value!r}")


@dataclass
class RnalocHParams:
    """The paper's head (DESIGN.md): TextCNN -> BiLSTM -> multi-head attention -> linear."""

    dim: int = 640
    n_classes: int = 2
    kernels: tuple = (3, 4, 5)
    filters: int = 50
    dropout: float = 0.5
    lstm_hidden: int = 40
    lstm_layers: int = 4
    attention_heads: int = 5

    def __post_init__(self):
        self.kernels = tuple(int(k) for k in self.kernels)
        _check_positive(self, "dim", "n_classes", "filters", "lstm_hidden", "lstm_layers", "attention_heads")
        if not self.kernels or min(self.kernels) < 1:
            raise ValueError(f"kernels must be one or more sizes >= 1, not {self.kernels}")
        _check_dropout(self.dropout)


@register("rnaloc", RnalocHParams)
class RnalocHead(nn.Module):
    """Conv (k, D) x 50 filters for k in 3, 4, 5 -> concat 150 -> dropout -> BiLSTM 2x40 x 4 layers
    -> attention (80, 5 heads) -> mean over valid positions -> linear.

    Feature position t covers nucleotides t .. t + max(k) - 1 (the maps are trimmed to
    the shortest one, as in the paper); a sequence has max(1, length - max(k) + 1)
    valid feature positions. Sequences shorter than the largest kernel are padded
    with zeros inside the model (one feature position), so every length >= 1 works.
    """

    #: Its attention matrices grow with length^2: batches of long sequences are kept small.
    quadratic_in_length = True

    def __init__(self, hp):
        super().__init__()
        self.hp = hp
        self.kmax = max(hp.kernels)
        # Conv2d with a (k, D) kernel over a (L, D) image == Conv1d with D input channels.
        self.convs = nn.ModuleList(nn.Conv1d(hp.dim, hp.filters, k) for k in hp.kernels)
        self.dropout = nn.Dropout(hp.dropout)
        channels = hp.filters * len(hp.kernels)
        self.lstm = MaskedBiLSTM(channels, hp.lstm_hidden, hp.lstm_layers)
        self.attention = MaskedMultiheadAttention(2 * hp.lstm_hidden, hp.attention_heads)
        self.classifier = nn.Linear(2 * hp.lstm_hidden, hp.n_classes)
        self.register_buffer("spread", torch.ones(1, 1, self.kmax), persistent=False)

    def forward(self, x, lengths):
        # x: (B, L, D); lengths: (B,)
        width = x.shape[1]
        x = x * valid_mask(lengths, width).unsqueeze(-1).to(x.dtype)  # zero beyond lengths
        x = F.pad(x, (0, 0, 0, self.kmax - 1)).transpose(1, 2)  # (B, D, L + kmax - 1)
        maps = [torch.relu(conv(x))[:, :, :width] for conv in self.convs]  # each (B, F, L)
        h = self.dropout(torch.cat(maps, dim=1).transpose(1, 2))  # (B, L, 3F)
        feat_lengths = (lengths - self.kmax + 1).clamp(min=1)  # (B,)
        mask = valid_mask(feat_lengths, width)  # (B, L) valid feature positions
        h = self.lstm(h * mask.unsqueeze(-1).to(h.dtype), feat_lengths)  # (B, L, 80)
        h, weights = self.attention(h, mask)  # (B, L, 80), (B, L, L)
        logits = self.classifier(masked_mean(h, mask))  # (B, C)
        received = received_attention(weights, mask) * mask.to(h.dtype)  # (B, L) per feature position
        # Feature position t covers nucleotides t .. t + kmax - 1: spread its attention over them.
        per_nt = F.conv1d(F.pad(received.unsqueeze(1), (self.kmax - 1, 0)), self.spread).squeeze(1)  # (B, L)
        return logits, normalise(per_nt, valid_mask(lengths, width))


@dataclass
class TransformerHParams:
    """The paper's baseline (its Table 2): embeddings -> Transformer encoder -> MLP."""

    dim: int = 640
    n_classes: int = 2
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    ffn: int = 256
    mlp_hidden: int = 64
    dropout: float = 0.1

    def __post_init__(self):
        _check_positive(self, "dim", "n_classes", "d_model", "heads", "layers", "ffn", "mlp_hidden")
        _check_dropout(self.dropout)


class _EncoderLayer(nn.Module):
    """A post-norm Transformer encoder layer built on :class:`MaskedMultiheadAttention`."""

    def __init__(self, d_model, heads, ffn, dropout):
        super().__init__()
        self.attention = MaskedMultiheadAttention(d_model, heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask):
        # x: (B, L, E); mask: (B, L)
        a, weights = self.attention(x, mask)  # (B, L, E), (B, L, L)
        x = self.norm1(x + self.dropout(a))
        x = self.norm2(x + self.dropout(self.ffn(x)))
        return x, weights


@register("transformer", TransformerHParams)
class TransformerBaseline(nn.Module):
    """Linear projection -> sinusoidal positions -> Transformer encoder -> masked mean -> MLP.

    The importance is the attention each position receives in the last layer,
    averaged over heads and valid queries.
    """

    quadratic_in_length = True

    def __init__(self, hp):
        super().__init__()
        self.hp = hp
        self.project = nn.Linear(hp.dim, hp.d_model)
        self.layers = nn.ModuleList(
            _EncoderLayer(hp.d_model, hp.heads, hp.ffn, hp.dropout) for _ in range(hp.layers)
        )
        self.mlp = nn.Sequential(
            nn.Linear(hp.d_model, hp.mlp_hidden), nn.ReLU(), nn.Dropout(hp.dropout), nn.Linear(hp.mlp_hidden, hp.n_classes)
        )
        freqs = torch.exp(torch.arange(0, hp.d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / hp.d_model))
        self.register_buffer("freqs", freqs, persistent=False)

    def positions(self, width, device):
        pos = torch.arange(width, device=device, dtype=torch.float32).unsqueeze(1) * self.freqs  # (L, E/2)
        return torch.stack([pos.sin(), pos.cos()], dim=2).flatten(1)[:, : self.hp.d_model]  # (L, E)

    def forward(self, x, lengths):
        # x: (B, L, D); lengths: (B,)
        width = x.shape[1]
        mask = valid_mask(lengths, width)  # (B, L)
        h = self.project(x) + self.positions(width, x.device)  # (B, L, E)
        weights = None
        for layer in self.layers:
            h, weights = layer(h * mask.unsqueeze(-1).to(h.dtype), mask)  # (B, L, E), (B, L, L)
        logits = self.mlp(masked_mean(h, mask))  # (B, C)
        return logits, normalise(received_attention(weights, mask), mask)  # (B, C), (B, L)
