"""Losses: cross-entropy, and the focal loss with class-balanced alpha the paper used for lncRNA."""

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("auto", "focal", "ce")
FOCAL_GAMMA = 1.5


def default_loss(rna_type):
    """The paper's choice: focal loss for lncRNA, cross-entropy otherwise."""
    return "focal" if rna_type == "lncRNA" else "ce"


def class_balanced_alpha(counts):
    """alpha_c proportional to 1 / n_c, normalised to sum to 1 (rarer classes weigh more)."""
    counts = torch.as_tensor(counts, dtype=torch.float32).clamp(min=1)
    inv = 1.0 / counts
    return inv / inv.sum()


class FocalLoss(nn.Module):
    """FL = -alpha_y (1 - p_y)^gamma log p_y, averaged over the batch (Lin et al. 2017)."""

    def __init__(self, alpha, gamma=FOCAL_GAMMA):
        super().__init__()
        self.register_buffer("alpha", torch.as_tensor(alpha, dtype=torch.float32))
        self.gamma = gamma

    def forward(self, logits, target):
        # logits: (B, C); target: (B,)
        logp = F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)  # (B,)
        p = logp.exp()
        return (-self.alpha[target] * (1 - p) ** self.gamma * logp).mean()


def make_loss(name, counts):
    """The loss called ``name`` ('focal' or 'ce') for a training set with these class counts."""
    if name == "focal":
        return FocalLoss(class_balanced_alpha(counts))
    if name == "ce":
        return nn.CrossEntropyLoss()
    raise ValueError(f"unknown loss {name!r}")
