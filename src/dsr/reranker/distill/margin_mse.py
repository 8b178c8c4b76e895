"""Margin-MSE: the student's score difference between two items regresses on the teacher's."""

from __future__ import annotations

import torch
from torch import nn


class MarginMSELoss(nn.Module):
    """Mean squared error between `student(a) - student(b)` and the teacher's margin for the same pair.

    Matching margins rather than absolute scores leaves the student free to use its own offset and
    only asks it to order (and space) two items of one query the way the teacher does; that is all
    a ranker needs. Optional per-pair weights scale each squared error.
    """

    def forward(
        self,
        student_a: torch.Tensor,
        student_b: torch.Tensor,
        teacher_margin: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        err = (student_a - student_b - teacher_margin) ** 2
        if weights is None:
            return err.mean()
        return (err * weights).sum() / weights.sum().clamp_min(1e-12)
