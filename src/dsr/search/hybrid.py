"""`HybridSearcher`: term match from the cluster + DSR neighbours, fused, then re-ranked.

Built by composition (as pyserini's hybrid searcher is): it is handed a `SearchBackend`, an index
name, a query `Encoder`, a `VectorIndex` sidecar (or told to use the engine's own kNN) and
optionally a `Reranker`, once per process; a search only runs them. The term search runs on a
small thread pool owned by the searcher while the vector side and its `mget` run.

Filters apply to both sides: the backend filters the term query (and its own kNN); sidecar
neighbours are over-fetched, their sources fetched with `mget`, and filtered here with the same
filter language. A failing sidecar does not fail the search: the result is term-only and says so
(`degraded`, with a warning).

The ranker reads a few fields of every candidate. Term hits bring them in their sources; for sidecar
neighbours they come from the item records ingest keeps beside the vectors (`dsr.sidecar.items`), and
only the page returned is fetched from the cluster. Without records (a remote sidecar, an index
ingested by other means) the neighbours likely to reach the ranker are fetched with `mget` while the
term search runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsr.backends import filters as filter_lang
from dsr.backends.base import EMBEDDING_FIELD, Filters, Hit, SearchBackend
from dsr.encoders.base import Encoder
from dsr.errors import DsrError, EngineError, UsageError
from dsr.reranker.base import Candidate, Reranker
from dsr.search.fusion import Fused, FusionConfig, fuse
from dsr.sidecar.base import VectorIndex
from dsr.sidecar.items import ItemRecords

log = logging.getLogger(__name__)

TERM = "term"
VECTOR = "vector"

VECTOR_SIDECAR = "sidecar"
VECTOR_ENGINE = "engine"
VECTOR_NONE = "none"
EARLY_FETCH_PERCENT = 60  # of rerank_top: the sidecar neighbours fetched while the term search runs


@dataclass(frozen=True)
class StageScore:
    """A hit's score and 1-based rank in one stage of the pipeline."""

    score: float
    rank: int


Ranked = tuple[Fused, StageScore | None, float]  # a fused candidate, its rerank stage (if any), its final score


@dataclass(frozen=True)
class HybridHit:
    """One result with every stage that saw it: term, vector, fused and (if run) rerank."""

    id: str
    score: float  # the final score: the ranker's when re-ranked, else the fused score
    rank: int  # 1-based final rank over the whole candidate pool
    source: Mapping[str, Any]
    fused: StageScore
    term: StageScore | None = None
    vector: StageScore | None = None
    rerank: StageScore | None = None

    def stages(self) -> dict[str, StageScore]:
        """The stages that scored this hit, in pipeline order."""
        out = {}
        for name in (TERM, VECTOR, "fused", "rerank"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class HybridResult:
    """A page of hits plus what the pipeline did to produce them."""

    hits: list[HybridHit]
    pool: int  # candidates after fusion and de-duplication
    term_hits: int  # how many hits the term side returned (term_k means "maybe more")
    vector_hits: int
    vector_source: str  # "sidecar", "engine" or "none"
    reranked: int  # how many of the pool the ranker scored
    fusion: FusionConfig
    degraded: bool = False  # True when a stage failed and was skipped
    warnings: tuple[str, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)


class HybridSearcher:
    """Term + vector retrieval, fusion, and re-ranking of the top `rerank_top`.

    Args:
        backend: the cluster (or embedded index) holding the documents.
        index: the index to search.
        encoder: the query tower; None disables the vector side (term-only search).
        vectors: the FAISS sidecar; None with `engine_knn=True` uses the engine's own kNN instead.
        reranker: the pairwise ranker; None returns fused order.
        engine_knn: use `backend.knn_search` for the vector side.
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
        vectors: VectorIndex | None = None,
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
        self.backend = backend
        self.index = index
        self.encoder = encoder
        self.vectors = vectors
        self.reranker = reranker
        self.engine_knn = engine_knn
        self.fusion = fusion
        self.term_k = term_k
        self.knn_k = knn_k
        self.rerank_top = rerank_top
        self.overfetch = max(1, overfetch)
        self.embedding_field = embedding_field
        self.item_records = item_records
        needed = ranker_item_fields(reranker)
        self._records_feed_ranker = (item_records is not None and needed is not None
                                     and item_records.covers(needed))
        if item_records is not None and reranker is not None and not self._records_feed_ranker:
            log.warning("the item records in %s lack fields the ranker reads; neighbours are fetched with mget",
                        item_records.path)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dsr-hybrid")

    @property
    def vector_source(self) -> str:
        if self.encoder is None:
            return VECTOR_NONE
        if self.vectors is not None:
            return VECTOR_SIDECAR
        return VECTOR_ENGINE if self.engine_knn else VECTOR_NONE

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def search(
        self,
        query: str,
        *,
        user: Mapping[str, Any] | None = None,
        filters: Filters | None = None,
        size: int = 10,
        offset: int = 0,
        term_k: int | None = None,
        knn_k: int | None = None,
        fusion: FusionConfig | None = None,
        rerank: bool = True,
        rerank_top: int | None = None,
        explain: bool = False,
        term_query: Mapping[str, Any] | None = None,
    ) -> list[HybridHit]:
        """The page of hits for `query`; `run` also says what the pipeline did (degraded, timings)."""
        return self.run(query, user=user, filters=filters, size=size, offset=offset, term_k=term_k,
                        knn_k=knn_k, fusion=fusion, rerank=rerank, rerank_top=rerank_top, explain=explain,
                        term_query=term_query).hits

    def run(
        self,
        query: str,
        *,
        user: Mapping[str, Any] | None = None,
        filters: Filters | None = None,
        size: int = 10,
        offset: int = 0,
        term_k: int | None = None,
        knn_k: int | None = None,
        fusion: FusionConfig | None = None,
        rerank: bool = True,
        rerank_top: int | None = None,
        explain: bool = False,
        term_query: Mapping[str, Any] | None = None,
    ) -> HybridResult:
        """Run the whole pipeline and return the hits `offset .. offset+size` of the final order.

        `term_query` (engine query DSL) replaces the default `multi_match` on the term side.
        `explain` is accepted for symmetry with the HTTP API; per-stage scores are always kept.
        """
        del explain  # every hit carries its stage scores anyway; the caller decides what to show
        term_k = self.term_k if term_k is None else term_k
        knn_k = self.knn_k if knn_k is None else knn_k
        rerank_top = self.rerank_top if rerank_top is None else rerank_top
        fusion = fusion or self.fusion
        if min(term_k, knn_k) < 0 or size < 0 or offset < 0 or rerank_top < 0:
            raise UsageError("term_k, knn_k, size, from and rerank_top must be >= 0")
        timings: dict[str, float] = {}
        warnings: list[str] = []
        degraded = False
        started = time.perf_counter()

        run_vector = self.vector_source != VECTOR_NONE and knn_k > 0 and bool(query.strip())
        run_term = term_k > 0 and (bool(query.strip()) or term_query is not None)
        # The term search starts first, in the background. The sidecar is in-process and fast, so its
        # neighbours are found meanwhile and their sources fetched while the term search still runs:
        # the wall time is max(term, vector + mget) rather than their sum.
        term_future: Future[list[Hit]] | None = None
        if run_term:
            term_future = self._pool.submit(self._term_side, query, term_k, filters, term_query, timings)

        vector_hits: list[Hit] = []
        query_vector: np.ndarray | None = None
        sources: dict[str, Mapping[str, Any]] = {}
        if run_vector:
            try:
                vector_hits, query_vector = self._vector_side(query, user, filters, knn_k, timings)
            except (DsrError, OSError, RuntimeError, ValueError) as e:
                # the sidecar (or the engine's kNN) failing must not fail the search
                if isinstance(e, EngineError) and self.vectors is None:
                    log.warning("engine kNN failed, answering term-only: %s", e)
                else:
                    log.warning("vector search failed, answering term-only: %s", e)
                degraded = True
                warnings.append(f"vector search unavailable ({type(e).__name__}: {e}); "
                                "results are term-only")
                vector_hits = []
        # Sidecar neighbours need their sources before fusion when they are to be filtered, and most
        # of them when the ranker will read the top of the pool and no item records can stand in:
        # then they are fetched while the term search still runs. Otherwise only the page shown
        # needs sources, fetched after fusion (or after re-ranking, when records fed the ranker).
        will_rerank = rerank and self.reranker is not None and rerank_top > 0
        from_records = will_rerank and self._records_feed_ranker and not filters
        early = self.vectors is not None and (bool(filters) or (will_rerank and not from_records))
        t0 = time.perf_counter()
        missing = [h.id for h in vector_hits[:self._early_fetch(bool(filters), rerank_top, offset + size)]
                   if not h.source] if early else []
        gone = self._fetch_sources(missing, sources, warnings) if missing else set()
        timings["mget"] = _ms(t0)

        term_hits: list[Hit] = term_future.result() if term_future is not None else []
        for h in vector_hits:
            if h.source:
                sources.setdefault(h.id, h.source)
        sources.update({h.id: h.source for h in term_hits})
        if gone:
            vector_hits = [h for h in vector_hits if h.id not in gone or h.id in sources]
        if early and filters:
            vector_hits = [h for h in vector_hits if filter_lang.matches(sources[h.id], filters)]
        vector_hits = vector_hits[:knn_k]

        t0 = time.perf_counter()
        fused = fuse({TERM: [(h.id, h.score) for h in term_hits],
                      VECTOR: [(h.id, h.score) for h in vector_hits]}, fusion)
        timings["fuse"] = _ms(t0)

        t0 = time.perf_counter()
        views: dict[str, Mapping[str, Any]] = {}  # the ranker's view of candidates without a source
        for _ in range(3):  # a neighbour missing from the index (sidecar out of sync) forces a re-fusion
            # with records, the page is known only after re-ranking and is fetched then
            wanted = (fused[:rerank_top] if will_rerank else []) + ([] if from_records else fused[offset:offset + size])
            need = list(dict.fromkeys(f.id for f in wanted if f.id not in sources and f.id not in views))
            if need and from_records:
                t1 = time.perf_counter()
                views.update(self.item_records.get_many(need))  # type: ignore[union-attr]
                timings["records"] = timings.get("records", 0.0) + _ms(t1)
                need = [i for i in need if i not in views]
            if not need:
                break
            gone = self._fetch_sources(need, sources, warnings)
            if not gone:
                break
            vector_hits = [h for h in vector_hits if h.id not in gone]
            fused = fuse({TERM: [(h.id, h.score) for h in term_hits],
                          VECTOR: [(h.id, h.score) for h in vector_hits]}, fusion)
        timings["mget"] += _ms(t0)

        t0 = time.perf_counter()
        order: list[Ranked] = [(f, None, f.score) for f in fused]
        reranked = 0
        if will_rerank and fused:
            head = fused[:rerank_top]
            try:
                scores = self._rerank(query, user, head, {**views, **sources}, query_vector)
            except (DsrError, RuntimeError, ValueError) as e:
                log.warning("re-ranking failed, answering in fused order: %s", e)
                degraded = True
                warnings.append(f"re-ranking unavailable ({type(e).__name__}: {e}); fused order")
            else:
                reranked = len(head)
                by_score = sorted(range(len(head)), key=lambda i: (-scores[i], i))
                top = [(head[i], StageScore(float(scores[i]), r), float(scores[i]))
                       for r, i in enumerate(by_score, start=1)]
                order = top + order[len(head):]
        timings["rerank"] = _ms(t0)

        if from_records:  # the page's own sources, from the cluster
            t0 = time.perf_counter()
            order = self._fetch_page(order, offset, size, sources, warnings)
            timings["mget"] += _ms(t0)

        fused_rank = {f.id: r for r, f in enumerate(fused, start=1)}
        hits = []
        for rank, (f, rr, final) in enumerate(order, start=1):
            if rank <= offset:
                continue
            if len(hits) >= size:
                break
            hits.append(HybridHit(
                id=f.id, score=final, rank=rank, source=self._clean(f.id, sources.get(f.id, {})),
                fused=StageScore(f.score, fused_rank[f.id]),
                term=_stage(f, TERM), vector=_stage(f, VECTOR), rerank=rr,
            ))
        timings["total"] = _ms(started)
        return HybridResult(hits=hits, pool=len(fused), term_hits=len(term_hits),
                            vector_hits=len(vector_hits), vector_source=self.vector_source,
                            reranked=reranked, fusion=fusion, degraded=degraded,
                            warnings=tuple(warnings), timings_ms=timings)

    def _fetch_page(self, order: list[Ranked], offset: int, size: int, sources: dict[str, Mapping[str, Any]],
                    warnings: list[str]) -> list[Ranked]:
        """Fetch the sources of the page's hits that have none; a hit gone from the index leaves the order."""
        for _ in range(3):
            need = [f.id for f, _, _ in order[offset:offset + size] if f.id not in sources]
            if not need:
                break
            gone = self._fetch_sources(need, sources, warnings)
            if not gone:
                break
            order = [entry for entry in order if entry[0].id not in gone]
        return order

    def _early_fetch(self, filtering: bool, rerank_top: int, page_end: int) -> int:
        """How many sidecar neighbours get their sources while the term search runs.

        Filtering needs them all. For the ranker, fusion of two lists rarely lifts a neighbour from
        the lower half of its list into the head of `rerank_top` unless the term side found it too
        (and brought its source), so the top share is fetched early and any other neighbour that
        reaches the head is fetched after fusion: less work for the cluster on every search.
        """
        if filtering:
            return 1 << 30
        return max(page_end, -(-rerank_top * EARLY_FETCH_PERCENT // 100))

    def _fetch_sources(self, ids: Sequence[str], sources: dict[str, Mapping[str, Any]],
                       warnings: list[str]) -> set[str]:
        """`mget` the ids' sources into `sources`; returns the ids the index no longer has (warned about)."""
        got = self.backend.mget(self.index, ids)
        sources.update(got)
        gone = set(ids) - set(got)
        self._warn_gone(gone, warnings)
        return gone

    def _warn_gone(self, gone: set[str], warnings: list[str]) -> None:
        if gone:
            log.warning("%d sidecar neighbour(s) missing from index %s", len(gone), self.index)
            warnings.append(f"{len(gone)} vector neighbour(s) not found in index {self.index!r} "
                            "(sidecar out of sync); skipped")

    def _term_side(self, query: str, term_k: int, filters: Filters | None,
                   term_query: Mapping[str, Any] | None, timings: dict[str, float]) -> list[Hit]:
        t0 = time.perf_counter()
        try:
            return self.backend.term_search(self.index, query, size=term_k, filters=filters, query=term_query)
        finally:
            timings["term"] = _ms(t0)

    def _vector_side(self, query: str, user: Mapping[str, Any] | None, filters: Filters | None,
                     knn_k: int, timings: dict[str, float]) -> tuple[list[Hit], np.ndarray]:
        assert self.encoder is not None
        t0 = time.perf_counter()
        qv = np.asarray(self.encoder.encode_queries([query], [user]), dtype=np.float32)
        timings["encode"] = _ms(t0)
        t0 = time.perf_counter()
        if self.vectors is not None:
            k = knn_k * self.overfetch if filters else knn_k
            scores, ids = self.vectors.search(qv, k)
            hits = [Hit(doc_id, float(s)) for doc_id, s in zip(ids[0], scores[0], strict=False)
                    if np.isfinite(s)]
        else:
            hits = self.backend.knn_search(self.index, qv[0], k=knn_k,
                                           num_candidates=max(knn_k * 2, 100), filters=filters)
        timings["vector"] = _ms(t0)
        return hits, qv[0]

    def _rerank(self, query: str, user: Mapping[str, Any] | None, head: Sequence[Fused],
                sources: Mapping[str, Mapping[str, Any]], query_vector: np.ndarray | None) -> np.ndarray:
        assert self.reranker is not None
        dsr_scores = [f.stage_scores.get(VECTOR) for f in head]
        if query_vector is not None:  # term-only hits: their DSR score from the sidecar's stored vector
            self._fill_dsr_scores(head, dsr_scores, query_vector)
        candidates = []
        for rank, (f, dsr_score) in enumerate(zip(head, dsr_scores, strict=True)):
            source = sources.get(f.id, {})
            item = {**(self._clean(f.id, source) if self.embedding_field in source else source), "id": f.id}
            candidates.append(Candidate(item=item, bm25=f.stage_scores.get(TERM), dsr=dsr_score, fused_rank=rank))
        scores = np.asarray(self.reranker.score(query, candidates, user), dtype=np.float32)
        if scores.shape != (len(candidates),):
            raise ValueError(f"ranker returned {scores.shape} scores for {len(candidates)} candidates")
        return scores

    def _fill_dsr_scores(self, head: Sequence[Fused], dsr_scores: list[float | None], query_vector: np.ndarray) -> None:
        """Set the query-item dot product of the head's term-only hits (backends never return vectors)."""
        lookup = getattr(self.vectors, "vectors", None)
        if not callable(lookup):
            return
        try:
            found = [i for i, score in enumerate(dsr_scores)
                     if score is None and head[i].id in self.vectors]  # type: ignore[operator]
            if found:
                vecs = np.asarray(lookup([head[i].id for i in found]), dtype=np.float32)
                for i, v in zip(found, (vecs @ query_vector).tolist(), strict=True):
                    dsr_scores[i] = float(v)
        except (DsrError, KeyError, TypeError, ValueError, RuntimeError) as e:
            log.debug("no sidecar vectors for term-only hits: %s", e)

    def _clean(self, doc_id: str, source: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in source.items() if k != self.embedding_field}


def ranker_item_fields(reranker: Reranker | None) -> tuple[str, ...] | None:
    """The item fields `reranker` reads, when it declares them (an `item_fields` attribute), else None."""
    fields = getattr(reranker, "item_fields", None)
    return tuple(fields) if fields is not None else None


def _stage(f: Fused, stage: str) -> StageScore | None:
    if stage not in f.stage_scores:
        return None
    return StageScore(f.stage_scores[stage], f.stage_ranks[stage])


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


__all__ = ["HybridHit", "HybridResult", "HybridSearcher", "StageScore"]
