"""`EngineVectors`: the engine's own kNN on the index's embedding field, as a `VectorReader`.

For a deployment without a sidecar: the index holds the item vectors (`dsr ingest` writes them to
the embedding field), and the engine answers both questions a search asks of a vector source. Its
neighbours come with their sources and are filtered by the engine itself; the similarity of term-only
hits is a kNN query restricted to their ids (`SearchBackend.knn_similarities`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dsr.backends.base import SearchBackend
from dsr.sidecar.base import ENGINE, Neighbours

MIN_CANDIDATES = 100  # the engine's HNSW candidate list is at least this long, and twice k


class EngineVectors:
    """The vector side served by `backend`'s kNN on `index`.

    Args:
        num_candidates: how many candidates the engine's HNSW search keeps; by default twice k and
            at least `MIN_CANDIDATES`. More is slower and nearer to exact.
    """

    origin = ENGINE
    applies_filters = True

    def __init__(self, backend: SearchBackend, index: str, *, num_candidates: int | None = None) -> None:
        self.backend = backend
        self.index = index
        self.num_candidates = num_candidates

    def on(self, backend: SearchBackend) -> EngineVectors:
        """The same reader asking the engine through `backend` (a caller's view of this reader's backend)."""
        if backend is self.backend:
            return self
        return EngineVectors(backend, self.index, num_candidates=self.num_candidates)

    def neighbours(self, query: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> Neighbours:
        candidates = max(k * 2, MIN_CANDIDATES) if self.num_candidates is None else max(k, self.num_candidates)
        hits = self.backend.knn_search(self.index, query, k=k, num_candidates=candidates, filters=filters)
        return Neighbours(tuple(h.id for h in hits), tuple(h.score for h in hits),
                          {h.id: h.source for h in hits if h.source})

    def similarities(self, query: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        return self.backend.knn_similarities(self.index, query, ids) if ids else {}
