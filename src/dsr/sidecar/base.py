"""The vector protocols: what a search reads (`VectorReader`) and what the sidecar also writes (`VectorIndex`).

Items are keyed by the catalog's own string ids. A search reads item vectors from one of three places:
the FAISS sidecar in-process, the same sidecar over HTTP (`dsr sidecar serve`), or the engine's own kNN
on the index's embedding field (an adapter in `dsr.search`, since this layer knows no engine). All three
answer the same two questions, so the ranker gets the same inputs whichever of them a deployment uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

SIDECAR = "sidecar"
ENGINE = "engine"


@dataclass(frozen=True)
class Neighbours:
    """One query's nearest items, best first, scored by the inner product of the two unit vectors."""

    ids: tuple[str, ...]
    scores: tuple[float, ...]
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Documents that came back with the neighbours (the engine's kNN returns them; a sidecar holds none)."""


@runtime_checkable
class VectorReader(Protocol):
    """Read access to item vectors: a query's neighbours, and its similarity to given items.

    The second question is what term-only candidates need: the term side found them, the vector side
    did not, and the ranker reads every candidate's query-item similarity.
    """

    @property
    def origin(self) -> str:
        """Where the vectors live, as search results name it: `SIDECAR` or `ENGINE`."""
        ...

    @property
    def applies_filters(self) -> bool:
        """Whether `neighbours` applies filters itself.

        A sidecar holds no document fields: the searcher over-fetches its neighbours and filters them on
        their sources, and never passes it filters.
        """
        ...

    def neighbours(self, query: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> Neighbours:
        """The `k` items nearest to `query` (one vector); with `filters`, only items that pass them."""
        ...

    def similarities(self, query: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        """`query` · item for each of `ids` this source holds a vector for; the others are absent."""
        ...


@runtime_checkable
class VectorIndex(VectorReader, Protocol):
    """The sidecar: a `VectorReader` that also stores vectors, searches in batches and saves itself."""

    @property
    def dim(self) -> int: ...

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


def neighbours_of(scores: np.ndarray, ids: Sequence[str]) -> Neighbours:
    """One row of a `search` answer as `Neighbours` (the -inf padding left out)."""
    row = np.asarray(scores[:len(ids)], dtype=np.float32)
    finite = np.isfinite(row)
    if finite.all():
        return Neighbours(tuple(ids), tuple(row.tolist()))
    return Neighbours(tuple(i for i, ok in zip(ids, finite.tolist(), strict=True) if ok),
                      tuple(row[finite].tolist()))
