"""Sampled softmax over the batch: cross-entropy of the positive against the row's negatives, with
scores scaled by 1/temperature (L2-normalised vectors give scores in [-1, 1])."""

from __future__ import annotations

import torch
from torch import nn


class InBatchSoftmaxLoss(nn.Module):
    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, scores: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        allowed = negatives.clone()
        allowed[torch.arange(len(positive)), positive] = True
        logits = (scores / self.temperature).masked_fill(~allowed, float("-inf"))
        per_row = nn.functional.cross_entropy(logits, positive, reduction="none")
        w = torch.ones_like(per_row) if weights is None else weights
        return (per_row * w).sum() / w.sum().clamp(min=1e-9)
