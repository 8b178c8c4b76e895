"""The vector side: the query tower, then the neighbours from whichever `VectorReader` holds the vectors.

A source that applies filters itself (the engine's kNN) is handed them; a sidecar cannot, so with
filters it is asked for `overfetch` times as many neighbours, which the searcher filters on their
sources. A failing vector side does not fail the search: the outcome carries a warning and no hits,
and the search answers term-only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dsr.backends.base import Hit, SearchBackend
from dsr.encoders.base import Encoder
from dsr.errors import DsrError
from dsr.search.engine_vectors import EngineVectors
from dsr.search.request import SearchRequest
from dsr.search.timings import Timings
from dsr.sidecar.base import VectorReader

log = logging.getLogger(__name__)

CLUSTER_FILTER_FIRST = 2
"""Neighbours asked per wanted one when the cluster filters them (a shop's restrictions): most shop
filters keep most items, so a first round of twice as many usually suffices; `VectorSide.wider` asks
for the full over-fetch when it does not."""


@dataclass(frozen=True)
class VectorOutcome:
    """The neighbours, best first, and the query vector (None when the side failed or did not run)."""

    hits: list[Hit]
    query: np.ndarray | None = None
    warning: str | None = None


class VectorSide:
    """Encode the query, then find its neighbours."""

    def __init__(self, encoder: Encoder, source: VectorReader, *, overfetch: int = 5) -> None:
        self.encoder = encoder
        self.source = source
        self.overfetch = max(1, overfetch)

    def on(self, backend: SearchBackend) -> VectorSide:
        """This side with the engine's kNN asked through `backend`; a sidecar asks no cluster, so it stays."""
        if not isinstance(self.source, EngineVectors) or self.source.backend is backend:
            return self
        return VectorSide(self.encoder, self.source.on(backend), overfetch=self.overfetch)

    def search(self, request: SearchRequest, k: int, timings: Timings) -> VectorOutcome:
        try:
            with timings.stage("encode"):
                query = np.asarray(self.encoder.encode_queries([request.text], [request.user]),
                                   dtype=np.float32)[0]
            with timings.stage("vector"):
                if self.source.applies_filters and request.neighbour_filter is None:
                    found = self.source.neighbours(query, k, request.filters)
                else:
                    per = (min(CLUSTER_FILTER_FIRST, self.overfetch) if request.neighbour_filter is not None
                           else self.overfetch if request.filters else 1)
                    found = self.source.neighbours(query, k * per)
        except (DsrError, OSError, RuntimeError, ValueError) as e:
            log.warning("vector search (%s) failed, answering term-only: %s", self.source.origin, e)
            return VectorOutcome([], warning=f"vector search unavailable ({type(e).__name__}: {e}); "
                                             "results are term-only")
        hits = [Hit(doc_id, score, found.sources.get(doc_id, {}))
                for doc_id, score in zip(found.ids, found.scores, strict=True)]
        return VectorOutcome(hits, query)

    def wider(self, query: np.ndarray, k: int, timings: Timings) -> list[Hit] | None:
        """The `k * overfetch` nearest neighbours of `query`, for a second round of the cluster's filter;
        None (logged) if the source fails now."""
        try:
            with timings.stage("vector"):
                found = self.source.neighbours(query, k * self.overfetch)
        except (DsrError, OSError, RuntimeError, ValueError) as e:
            log.warning("vector search (%s) failed on its second round: %s", self.source.origin, e)
            return None
        return [Hit(doc_id, score, found.sources.get(doc_id, {}))
                for doc_id, score in zip(found.ids, found.scores, strict=True)]

    def similarities(self, query: np.ndarray, ids: list[str]) -> dict[str, float]:
        """The DSR similarity of hits the vector side did not return; none (logged) if the source fails."""
        if not ids:
            return {}
        try:
            return self.source.similarities(query, ids)
        except (DsrError, OSError, RuntimeError, ValueError) as e:
            log.warning("no DSR similarity for %d term-only hit(s) from the %s: %s", len(ids), self.source.origin, e)
            return {}
