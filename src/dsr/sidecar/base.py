"""The `VectorIndex` protocol: nearest-neighbour search keyed by the catalog's own string ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorIndex(Protocol):
    dim: int

    def __len__(self) -> int: ...

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Insert or replace the vectors of these ids."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Remove these ids; returns how many were present."""
        ...

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Scores (n, k) float32 (inner product, higher is nearer) and the ids, row by row.

        Rows with fewer than k stored vectors are shorter in the id lists and padded with -inf.
        """
        ...

    def ids(self) -> list[str]: ...

    def save(self, directory: Path) -> None: ...
