"""`HybridSearcher`: term match from the cluster + DSR neighbours, fused, then re-ranked.

Built by composition (as pyserini's hybrid searcher is): it is handed a `SearchBackend`, an index
name, a query `Encoder`, a `VectorReader` (the FAISS sidecar, in-process or over HTTP, or the
engine's own kNN through `EngineVectors`) and optionally a `Reranker`, once per process; a search
only runs them. `run` is the pipeline, one stage per step:

1. plan: the request resolved against the searcher's defaults, and every branch decided (`plan.py`);
2. the term side starts on a small thread pool owned by the searcher (`term.py`);
3. meanwhile the vector side encodes the query and finds its neighbours (`vector.py`), and the
   sources the neighbours will need are fetched while the term search still runs (`sources.py`);
4. neighbours gone from the index or failing the filters are dropped;
5. fusion, re-ranking of the head and the page's sources, repeated (a bounded number of times) when
   a neighbour turns out to be gone from the index (`fusion.py`, `rerank.py`, `Sources.settle`).

Filters apply to both sides: the backend filters the term query (and its own kNN); sidecar
neighbours are over-fetched, their sources fetched, and filtered here with the same filter language.
A failing vector side does not fail the search: the result is term-only and says so (`degraded`,
with a warning); a failing ranker leaves the fused order, likewise.

The ranker reads a few fields of every candidate. Term hits bring them in their sources; for sidecar
neighbours they come from the item records ingest keeps beside the vectors (`dsr.sidecar.items`), and
only the page returned is fetched from the cluster. Without records (a remote sidecar, an index
ingested by other means) the neighbours likely to reach the ranker are fetched with `mget` while the
term search runs. Term-only candidates get their DSR similarity from the vector source, so the ranker
sees the same features whichever source a deployment uses.

Whose rights: a request with a `caller` runs every request to the cluster (the term search, the
engine's kNN and similarity lookups, every `mget`) through `backend.for_caller(caller)`, so the
cluster's security decides what the search sees and returns. Sidecar neighbours are ids the sidecar
holds for every item. On a cluster with security (`backend.hides_from_callers()`) the search is
`restricted`: each neighbour that is fused, ranked or shown has first been returned by the cluster
with the caller's rights, as a source the ranker reads (item records do not stand in for it, see
`plan.py`), and one the cluster does not return is dropped as a gone one is, without a word to the
caller (`sources.py`). On a cluster without security (one that answers requests without
credentials) and on the embedded index nothing can be hidden: a caller's search runs as dsr's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from dsr.backends import filters as filter_lang
from dsr.backends.base import EMBEDDING_FIELD, Hit, SearchBackend
from dsr.encoders.base import Encoder
from dsr.errors import UsageError
from dsr.reranker.base import Reranker
from dsr.search.engine_vectors import EngineVectors
from dsr.search.fusion import Fused, FusionConfig, fuse
from dsr.search.plan import Plan, plan_search
from dsr.search.request import SearchDefaults, SearchRequest
from dsr.search.rerank import Ranked, Reranked, Reranking, fused_order, ranker_item_fields
from dsr.search.result import TERM, VECTOR, VECTOR_NONE, HybridHit, HybridResult, StageScore
from dsr.search.sources import Sources
from dsr.search.term import TermSide
from dsr.search.timings import Timings
from dsr.search.vector import CLUSTER_FILTER_FIRST, VectorOutcome, VectorSide
from dsr.sidecar.base import VectorReader
from dsr.sidecar.items import ItemRecords

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Ranking:
    """One settled round of fusion and re-ranking: the fused pool and the page of the final order over it."""

    fused: list[Fused]
    page: list[Ranked]  # the places offset .. offset+size of the final order
    pool: int  # the fused candidates still in the index
    neighbours: int  # the vector hits among them
    reranked: int
    warning: str | None = None
    order: list[Ranked] | None = None  # the whole final order, when the request asks for it


class HybridSearcher:
    """Term + vector retrieval, fusion, and re-ranking of the top `rerank_top`.

    Args:
        backend: the cluster (or embedded index) holding the documents.
        index: the index to search.
        encoder: the query tower; None disables the vector side (term-only search).
        vectors: where the item vectors are read: a sidecar (`dsr.sidecar.open_vector_index`) or
            `EngineVectors` over the backend; None with `engine_knn=True` means the latter.
        reranker: the pairwise ranker; None returns fused order.
        engine_knn: read the vectors from the engine's own kNN (`EngineVectors(backend, index)`).
        fusion: default fusion (a search may override it).
        term_k, knn_k: default depth of each side.
        rerank_top: default number of fused candidates the ranker re-orders.
        overfetch: with filters, sidecar neighbours fetched per wanted neighbour before filtering.
        item_records: the sidecar's item records; used for the ranker's view of neighbours when they
            hold every field the ranker reads.
    """

    def __init__(
        self,
        backend: SearchBackend,
        index: str,
        encoder: Encoder | None = None,
        vectors: VectorReader | None = None,
        reranker: Reranker | None = None,
        *,
        engine_knn: bool = False,
        fusion: FusionConfig = FusionConfig(),
        term_k: int = 100,
        knn_k: int = 100,
        rerank_top: int = 100,
        overfetch: int = 5,
        embedding_field: str = EMBEDDING_FIELD,
        item_records: ItemRecords | None = None,
    ) -> None:
        if engine_knn and vectors is not None:
            raise UsageError("use either a vector sidecar or the engine's kNN, not both")
        if engine_knn:
            vectors = EngineVectors(backend, index)
        self.backend = backend
        self.index = index
        self.encoder = encoder
        self.vectors = vectors
        self.reranker = reranker
        self.defaults = SearchDefaults(term_k=term_k, knn_k=knn_k, rerank_top=rerank_top, fusion=fusion)
        self.embedding_field = embedding_field
        self.item_records = item_records
        self._term = TermSide(backend, index)
        self._vector = (VectorSide(encoder, vectors, overfetch=overfetch)
                        if encoder is not None and vectors is not None else None)
        self._reranking = Reranking(reranker, embedding_field=embedding_field) if reranker is not None else None
        needed = ranker_item_fields(reranker)
        self._records_feed_ranker = (item_records is not None and needed is not None
                                     and item_records.covers(needed))
        if item_records is not None and reranker is not None and not self._records_feed_ranker:
            log.warning("the item records in %s lack fields the ranker reads; neighbours are fetched with mget",
                        item_records.path)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dsr-hybrid")

    @property
    def vector_source(self) -> str:
        """Where the vector side reads: "sidecar", "engine", or "none" (no query tower or no vectors)."""
        return self._vector.source.origin if self._vector is not None else VECTOR_NONE

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def background(self, call: Callable[..., T], *args: Any) -> Future[T]:
        """`call(*args)` on the searcher's own threads (a request of a search that runs while another does)."""
        return self._pool.submit(call, *args)

    def search(self, text: str, **options: Any) -> list[HybridHit]:
        """The page of hits for `text`; `options` are `SearchRequest`'s. `run` also says what the pipeline did."""
        return self.run(SearchRequest(text, **options)).hits

    def plan(self, request: SearchRequest) -> Plan:
        """What `run` will do for `request` on this searcher."""
        restricted = request.caller is not None and self.backend.hides_from_callers()
        return plan_search(request, self.defaults, vectors=self._vector.source if self._vector else None,
                           ranker=self._reranking is not None, records=self._records_feed_ranker,
                           restricted=restricted)

    def run(self, request: SearchRequest) -> HybridResult:
        """Run the whole pipeline and return the hits `offset .. offset+size` of the final order."""
        started = time.perf_counter()
        timings = Timings("mget")
        plan = self.plan(request)
        req = plan.request
        if plan.bare:  # ids and scores are all the cluster need return
            req = replace(req, term_extra={**(req.term_extra or {}), "_source": False})
        backend = self.backend if req.caller is None else self.backend.for_caller(req.caller)
        term_side = self._term.on(backend)
        vector_side = self._vector.on(backend) if self._vector is not None else None
        # missing neighbours are reported unless they may be hidden from the caller rather than gone
        sources = Sources(backend, self.index, timings, report_gone=not plan.restricted)

        # The term search starts first, in the background. The vector source is fast, so its
        # neighbours are found meanwhile and the sources they need fetched while the term search still
        # runs: the wall time is max(term, vector + mget) rather than their sum.
        term_future: Future[list[Hit]] | None = None
        if plan.term:
            term_future = self._pool.submit(term_side.search, req, plan.term_k, timings)
        vector = VectorOutcome([])
        if plan.vector and vector_side is not None:
            vector = vector_side.search(req, plan.knn_k, timings)
        sources.add(vector.hits)
        sources.fetch([h.id for h in vector.hits[:plan.prefetch]])
        passed: set[str] | None = None
        if plan.cluster_filter and req.neighbour_filter is not None:
            passed, vector = self._filtered_by_cluster(req, plan, vector, vector_side, sources, timings)
        term_hits = term_future.result() if term_future is not None else []
        sources.add(term_hits)

        neighbours = self._usable(vector.hits, plan, sources, passed)
        ranking = sources.settle(lambda: self._rank(plan, term_hits, neighbours, sources, vector.query, timings,
                                                    vector_side))

        hits = self._page(ranking, req, sources)
        order = self._order(ranking) if req.whole_order else ()
        warnings = tuple(w for w in (vector.warning, sources.warning(), ranking.warning) if w)
        timings.add("total", (time.perf_counter() - started) * 1000.0)
        return HybridResult(hits=hits, pool=ranking.pool, term_hits=len(term_hits),
                            vector_hits=ranking.neighbours, vector_source=self.vector_source,
                            reranked=ranking.reranked, fusion=plan.fusion,
                            degraded=vector.warning is not None or ranking.warning is not None,
                            warnings=warnings, timings_ms=timings.as_dict(), order=order)

    def _filtered_by_cluster(self, req: SearchRequest, plan: Plan, vector: VectorOutcome,
                             vector_side: VectorSide | None, sources: Sources,
                             timings: Timings) -> tuple[set[str], VectorOutcome]:
        """The neighbours the cluster says pass the shop's restrictions, in at most two rounds: the first
        ones found, then (when fewer than `knn_k` pass and the source may hold more) the full over-fetch."""
        assert req.neighbour_filter is not None
        extra = _filter_extra(req.term_extra)
        asked = [h.id for h in vector.hits]
        passed = sources.matching(asked, req.neighbour_filter, extra)
        if (len(passed) >= plan.knn_k or vector_side is None or vector.query is None
                or len(asked) < plan.knn_k * CLUSTER_FILTER_FIRST or vector_side.overfetch <= CLUSTER_FILTER_FIRST):
            return passed, vector
        wider = vector_side.wider(vector.query, plan.knn_k, timings)
        if wider is None:
            return passed, vector
        seen = set(asked)
        sources.add(wider)
        passed |= sources.matching([h.id for h in wider if h.id not in seen], req.neighbour_filter, extra)
        return passed, replace(vector, hits=wider)

    def _usable(self, hits: list[Hit], plan: Plan, sources: Sources, passed: set[str] | None) -> list[Hit]:
        """The neighbours that go into fusion: not gone from the index, passing the filters, at most knn_k."""
        kept = [h for h in hits if h.id not in sources.gone]
        if passed is not None:  # the cluster said which match the shop's own restrictions
            kept = [h for h in kept if h.id in passed]
        if plan.filter_neighbours:  # every one of them was fetched while the term search ran
            kept = [h for h in kept if filter_lang.matches(sources.get(h.id) or {}, plan.request.filters)]
        return kept[:plan.knn_k]

    def _rank(self, plan: Plan, term_hits: list[Hit], neighbours: list[Hit], sources: Sources,
              query: np.ndarray | None, timings: Timings, vector_side: VectorSide | None) -> Ranking:
        """One round: fuse, fetch what the ranker reads, re-rank the head, fetch the page's sources."""
        req = plan.request
        kept = [h for h in neighbours if h.id not in sources.gone] if sources.gone else neighbours
        with timings.stage("fuse"):
            fused = fuse({TERM: _ranked_list(term_hits), VECTOR: _ranked_list(kept)}, plan.fusion)
        head = fused[:plan.rerank_top] if plan.rerank else []
        tail = fused[len(head):]

        # The ranker reads the head: sources, or item records standing in for them. Without records
        # the fused page is fetched in the same request (re-ranking moves hits only within the head).
        records = self._records([f.id for f in head if sources.get(f.id) is None], timings) if plan.records else {}
        page_before = [] if plan.records else [f.id for f in fused[req.offset:req.page_end]]
        sources.require([f.id for f in head if f.id not in records] + page_before)
        if sources.gone:  # only in the last round can any in the head be gone
            head = [f for f in head if f.id not in sources.gone]

        with timings.stage("rerank"):
            if head and self._reranking is not None:
                items = {f.id: sources.known.get(f.id) or records.get(f.id) or {} for f in head}
                similarities = self._dsr_of_term_only(head, query, vector_side)
                reranked = self._reranking.rank(req.text, req.user, head, items, similarities)
            else:
                reranked = Reranked(fused_order(head), 0)
        # the final order is the re-ranked head, then the rest in fused order; with records, the page
        # is known only now
        page = _page_of(reranked.order, tail, req.offset, req.page_end)
        sources.require([r.id for r in page])
        if not sources.gone:
            whole = reranked.order + fused_order(tail) if req.whole_order else None
            return Ranking(fused, page, len(fused), len(kept), reranked.count, reranked.warning, whole)
        # the last round: hits that moved up into the page past one gone from the index are fetched once more
        order = [r for r in reranked.order + fused_order(tail) if r.id not in sources.gone]
        sources.fetch([r.id for r in order[req.offset:req.page_end]])
        page = [r for r in order[req.offset:req.page_end] if r.id not in sources.gone]
        whole = [r for r in order if r.id not in sources.gone] if req.whole_order else None
        return Ranking(fused, page, sum(1 for f in fused if f.id not in sources.gone),
                       sum(1 for h in kept if h.id not in sources.gone), reranked.count, reranked.warning, whole)

    def _dsr_of_term_only(self, head: list[Fused], query: np.ndarray | None,
                          vector_side: VectorSide | None) -> dict[str, float]:
        """The DSR similarity of the head's term-only hits: the ranker reads every candidate's."""
        if query is None or vector_side is None:
            return {}
        return vector_side.similarities(query, [f.id for f in head if VECTOR not in f.stage_scores])

    def _records(self, ids: list[str], timings: Timings) -> dict[str, dict[str, Any]]:
        if not ids or self.item_records is None:
            return {}
        with timings.stage("records"):
            return self.item_records.get_many(ids)

    def _page(self, ranking: Ranking, req: SearchRequest, sources: Sources) -> list[HybridHit]:
        fused_rank = {f.id: r for r, f in enumerate(ranking.fused, start=1)}
        hits = []
        for rank, r in enumerate(ranking.page, start=req.offset + 1):
            source = sources.get(r.id)
            if source is None:  # gone from the index after the last round
                continue
            f = r.fused
            hits.append(HybridHit(
                id=f.id, score=r.score, rank=rank, source=self._clean(source),
                fused=StageScore(f.score, fused_rank[f.id]), term=_stage(f, TERM), vector=_stage(f, VECTOR),
                rerank=r.rerank,
            ))
        return hits

    def _order(self, ranking: Ranking) -> tuple[HybridHit, ...]:
        """The whole final order as hits without sources (the shop's own search shows them from the cluster)."""
        fused_rank = {f.id: r for r, f in enumerate(ranking.fused, start=1)}
        return tuple(
            HybridHit(id=r.id, score=r.score, rank=rank, source={}, fused=StageScore(r.fused.score, fused_rank[r.id]),
                      term=_stage(r.fused, TERM), vector=_stage(r.fused, VECTOR), rerank=r.rerank)
            for rank, r in enumerate(ranking.order or (), start=1))

    def _clean(self, source: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in source.items() if k != self.embedding_field}


def _filter_extra(term_extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The term search's body keys the neighbour filter carries too: not `min_score`, which would drop every
    neighbour (a filter scores nothing)."""
    return {k: v for k, v in (term_extra or {}).items() if k != "min_score"}


def _page_of(head: list[Ranked], tail: list[Fused], start: int, end: int) -> list[Ranked]:
    """Places `start .. end` of the order `head` then `tail` (only those are built)."""
    page = head[start:end]
    return page + fused_order(tail[max(0, start - len(head)):max(0, end - len(head))])


def _ranked_list(hits: Sequence[Hit]) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


def _stage(f: Fused, stage: str) -> StageScore | None:
    if stage not in f.stage_scores:
        return None
    return StageScore(f.stage_scores[stage], f.stage_ranks[stage])


__all__ = ["TERM", "VECTOR", "HybridHit", "HybridResult", "HybridSearcher", "StageScore"]
