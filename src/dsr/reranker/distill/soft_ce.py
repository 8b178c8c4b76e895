"""Cross-entropy against soft targets: the teacher's classification loss."""

from __future__ import annotations

import torch
from torch import nn


class SoftTargetCrossEntropy(nn.Module):
    """Mean over the batch of `-sum_k target_k * log softmax(logits)_k`.

    With one-hot targets this is the usual cross-entropy; soft targets keep the information in graded
    labels that sit between two classes (see `grades.GradeScale.soft_targets`).
    """

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.shape != targets.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
        return -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
