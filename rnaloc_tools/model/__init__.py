"""Models: heads that turn a per-nucleotide embedding matrix into class probabilities.

The contract every architecture keeps (so that train, export-onnx, predict and
motifs treat them alike):

    module = build_model(arch, dim=D, n_classes=C, **hparams)
    logits, importance = module(x, lengths)

    x           (B, L, D) float32, zero beyond each sequence's length
    lengths     (B,) int64, 1 <= lengths <= L
    logits      (B, C)
    importance  (B, L) float32: per-nucleotide attention/importance, >= 0, zero
                beyond the length, summing to 1 over each sequence's positions

A sequence's outputs never depend on the other sequences in the batch (masking,
no batch statistics at inference), and the module exports to ONNX with dynamic
batch and length. The exported graph has inputs ``embeddings`` (B, L, D) and
``lengths`` (B,) and outputs ``probabilities`` (B, C, softmax) and
``attention`` (B, L).
"""

from .registry import ARCHITECTURES, build_model, register

__all__ = ["ARCHITECTURES", "build_model", "register"]
