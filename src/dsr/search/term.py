"""The term side: BM25 (or the caller's own query DSL) from the backend, filtered there."""

from __future__ import annotations

from dsr.backends.base import Hit, SearchBackend
from dsr.search.request import SearchRequest
from dsr.search.timings import Timings


class TermSide:
    """The term matches of a request; its failures are the search's (there is nothing to fall back to)."""

    def __init__(self, backend: SearchBackend, index: str) -> None:
        self.backend = backend
        self.index = index

    def on(self, backend: SearchBackend) -> TermSide:
        """The same side searching through `backend` (a caller's view of this side's backend)."""
        return self if backend is self.backend else TermSide(backend, self.index)

    def search(self, request: SearchRequest, k: int, timings: Timings) -> list[Hit]:
        with timings.stage("term"):
            return self.backend.term_search(self.index, request.text, size=k, filters=request.filters,
                                            query=request.term_query, extra=request.term_extra)
