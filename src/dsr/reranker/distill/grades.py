"""Graded labels as soft class distributions, and back to one relevance score.

The teacher is a classifier over the grade scale (e.g. 1, 2, 3 for Home Depot), trained with soft
targets: a grade between two classes (Home Depot grades are rater averages such as 2.33) puts its mass
on the two neighbouring classes in proportion to its distance, so the mean of the target distribution
is exactly the grade. Nothing of the label's information is lost to rounding, and the expected grade
under the teacher's predicted distribution is the natural scalar relevance score to rank by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GradeScale:
    """`classes` evenly spaced grade values from `low` to `high` (both inclusive)."""

    low: float
    high: float
    classes: int

    def __post_init__(self) -> None:
        if self.classes < 2:
            raise ValueError("a grade scale needs at least 2 classes")
        if not self.high > self.low:
            raise ValueError(f"grade scale high ({self.high}) must be above low ({self.low})")

    @property
    def values(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.classes, dtype=np.float64)

    def soft_targets(self, grades: Sequence[float] | np.ndarray) -> np.ndarray:
        """(n, classes) float32 rows summing to 1 whose mean grade is the (clipped) input grade."""
        g = np.clip(np.asarray(grades, dtype=np.float64), self.low, self.high)
        pos = (g - self.low) / (self.high - self.low) * (self.classes - 1)
        lower = np.minimum(np.floor(pos).astype(np.int64), self.classes - 2)
        frac = pos - lower
        out = np.zeros((len(g), self.classes), dtype=np.float32)
        rows = np.arange(len(g))
        out[rows, lower] = 1.0 - frac
        out[rows, lower + 1] += frac
        return out

    def expected(self, probs: np.ndarray) -> np.ndarray:
        """Expected grade of each row of class probabilities."""
        return (np.asarray(probs, dtype=np.float64) @ self.values).astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "classes": self.classes}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> GradeScale:
        return cls(float(cfg["low"]), float(cfg["high"]), int(cfg["classes"]))

    @classmethod
    def fit(cls, grades: Sequence[float], *, classes: int | None = None) -> GradeScale:
        """The scale spanning the observed grades; one class per integer step unless told otherwise."""
        arr = np.asarray(grades, dtype=np.float64)
        if arr.size == 0:
            raise ValueError("no grades to fit a scale to")
        low, high = float(arr.min()), float(arr.max())
        if high <= low:
            raise ValueError(f"every grade is {low}: a classifier needs at least two different grades")
        n = classes if classes is not None else max(2, round(high - low) + 1)
        return cls(low, high, int(n))
