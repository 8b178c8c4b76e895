"""`GatedBackend`: a backend whose searches have at most a fixed number of requests in flight at once.

A hybrid search sends several requests to the cluster (the term search, the engine's kNN, mget, kNN
similarities), some at the same time; many searches at once multiply them. Past a point the cluster
answers 429 (a circuit breaker, a full search queue) although each search alone is harmless, so the
requests of every search through one backend share a bound: a request beyond it waits for one in
flight to finish. A request holds its slot only while it runs, and never waits for another while
holding one, so the bound cannot deadlock. Writes and index administration are not bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from dsr.backends.base import BulkResult, Caller, Filters, Hit, IndexSpec, SearchBackend


class GatedBackend:
    """`backend` with at most `limit` of its read requests (searches, kNN, mget) in flight at once."""

    def __init__(self, backend: SearchBackend, limit: int, *, _slots: threading.BoundedSemaphore | None = None) -> None:
        if limit < 1:
            raise ValueError(f"the limit of requests in flight must be >= 1, got {limit}")
        self.backend = backend
        self.limit = limit
        self.flavor = backend.flavor
        self.url = backend.url
        self._slots = threading.BoundedSemaphore(limit) if _slots is None else _slots

    def for_caller(self, caller: Caller) -> GatedBackend:
        """The backend's view for `caller`, its requests within the same bound as everyone's."""
        return GatedBackend(self.backend.for_caller(caller), self.limit, _slots=self._slots)

    # -- bounded: the requests of a search -------------------------------------------------
    def term_search(self, index: str, text: str, *, size: int = 10, filters: Filters | None = None,
                    query: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> list[Hit]:
        with self._slots:
            return self.backend.term_search(index, text, size=size, filters=filters, query=query, extra=extra)

    def knn_search(self, index: str, vector: np.ndarray, *, k: int = 10, num_candidates: int | None = None,
                   filters: Filters | None = None) -> list[Hit]:
        with self._slots:
            return self.backend.knn_search(index, vector, k=k, num_candidates=num_candidates, filters=filters)

    def knn_similarities(self, index: str, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        with self._slots:
            return self.backend.knn_similarities(index, vector, ids)

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._slots:
            return self.backend.mget(index, ids)

    def raw_search(self, index: str, body: Mapping[str, Any],
                   params: Mapping[str, str | bool] | None = None) -> dict[str, Any]:
        with self._slots:
            return self.backend.raw_search(index, body, params)

    def matching(self, index: str, ids: Sequence[str], query: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        with self._slots:
            return self.backend.matching(index, ids, query, extra)

    def count(self, index: str) -> int:
        with self._slots:
            return self.backend.count(index)

    # -- passed through --------------------------------------------------------------------
    def ensure_index(self, spec: IndexSpec) -> bool:
        return self.backend.ensure_index(spec)

    def delete_index(self, index: str) -> None:
        self.backend.delete_index(index)

    def index_exists(self, index: str) -> bool:
        return self.backend.index_exists(index)

    def bulk_upsert(self, index: str, docs: Iterable[Mapping[str, Any]]) -> BulkResult:
        return self.backend.bulk_upsert(index, docs)

    def delete(self, index: str, ids: Sequence[str]) -> BulkResult:
        return self.backend.delete(index, ids)

    def refresh(self, index: str) -> None:
        self.backend.refresh(index)

    def iter_ids(self, index: str) -> Iterator[str]:
        return self.backend.iter_ids(index)

    def hides_from_callers(self) -> bool:
        return self.backend.hides_from_callers()

    def close(self) -> None:
        self.backend.close()

    def __getattr__(self, name: str) -> Any:  # anything else a backend offers, unbounded
        if name == "backend":  # not set yet (a copy being made): no backend to ask
            raise AttributeError(name)
        return getattr(self.backend, name)
