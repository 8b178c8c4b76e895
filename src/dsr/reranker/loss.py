"""The Siamese pairwise loss: binary cross-entropy on `logit(a) - logit(b)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PairwiseBCELoss(nn.Module):
    """Weighted BCE of `sigmoid(logit_a - logit_b)` against the label (1 = a preferred).

    The weights carry the position-bias correction of the pairs (see `pairs.PositionBias`); the
    loss is their weighted mean, so the scale does not depend on the batch's weights.
    """

    def forward(self, logit_a: torch.Tensor, logit_b: torch.Tensor, labels: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        diff = logit_a - logit_b
        if labels is None:
            labels = torch.ones_like(diff)
        losses = F.binary_cross_entropy_with_logits(diff, labels, reduction="none")
        if weights is None:
            return losses.mean()
        return (losses * weights).sum() / weights.sum().clamp_min(1e-12)
