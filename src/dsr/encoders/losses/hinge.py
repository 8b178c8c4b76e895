"""The DSR paper's loss: max(0, δ - Q(q)·S(s+) + Q(q)·S(s-)), averaged over each row's negatives."""

from __future__ import annotations

import torch
from torch import nn


class HingeLoss(nn.Module):
    def __init__(self, margin: float = 0.3) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, scores: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        pos = scores.gather(1, positive[:, None])  # (B, 1)
        hinge = torch.relu(self.margin - pos + scores) * negatives
        per_row = hinge.sum(1) / negatives.sum(1).clamp(min=1)
        has_neg = negatives.any(1).float()
        w = has_neg if weights is None else weights * has_neg
        return (per_row * w).sum() / w.sum().clamp(min=1e-9)
