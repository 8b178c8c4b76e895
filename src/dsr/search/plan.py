"""`Plan`: what one search will do, decided once from the request and the searcher's parts.

Which sides run, whether the ranker runs and what it reads, whether neighbours are filtered here, and
how many of them get their sources while the term search is still running: each is a named decision
here, so the pipeline itself only follows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsr.search.fusion import FusionConfig
from dsr.search.request import SearchDefaults, SearchRequest
from dsr.sidecar.base import VectorReader

EARLY_FETCH_PERCENT = 60  # of rerank_top: the neighbours fetched while the term search runs
ALL = 1 << 30


@dataclass(frozen=True)
class Plan:
    """The decisions of one search.

    Attributes:
        request: the request with the searcher's defaults applied.
        term_k, knn_k, rerank_top, fusion: the request's depths and fusion, resolved.
        term: the term side runs (there is text or a term query, and term_k > 0).
        vector: the vector side runs (a query tower and a vector source, text, and knn_k > 0).
        rerank: the ranker re-orders the head (`rerank_top`) of the fused pool.
        filter_neighbours: the vector source cannot filter, so its neighbours are over-fetched and
            filtered here on their sources (which then must all be fetched before fusion).
        cluster_filter: the neighbours are over-fetched and the cluster says which of them match the
            request's `neighbour_filter` (a shop's own restrictions), returning their sources.
        records: item records stand in for the sources the ranker reads of neighbours; only the page
            returned is fetched from the index, after re-ranking. Never on a `restricted` search:
            the ranker then reads only what the cluster returned to the caller.
        restricted: the search has a caller's rights on a cluster that may keep documents from them.
        prefetch: how many of the first neighbours get their sources while the term search runs.
        bare: no stage needs a source (the whole order is asked for and no page: a shop's search,
            whose final pass the cluster shows; the ranker, if it runs, reads item records), so the
            term search and the cluster's neighbour filter return ids and scores only.
    """

    request: SearchRequest
    term_k: int
    knn_k: int
    rerank_top: int
    fusion: FusionConfig
    term: bool
    vector: bool
    rerank: bool
    filter_neighbours: bool
    records: bool
    prefetch: int
    restricted: bool = False
    cluster_filter: bool = False
    bare: bool = False


def plan_search(request: SearchRequest, defaults: SearchDefaults, *, vectors: VectorReader | None,
                ranker: bool, records: bool, restricted: bool = False) -> Plan:
    """The plan for `request` on a searcher with these parts.

    Args:
        vectors: the vector source, None when the searcher has no vector side (no query tower).
        ranker: whether the searcher has a ranker.
        records: whether its item records hold every field the ranker reads.
        restricted: the request has a caller's credentials and the cluster has security, so it may
            keep documents (or fields) from the caller.
    """
    request = request.resolve(defaults)
    term_k, knn_k, rerank_top = _set(request.term_k), _set(request.knn_k), _set(request.rerank_top)
    has_text = bool(request.text.strip())
    term = term_k > 0 and (has_text or request.term_query is not None)
    vector = vectors is not None and knn_k > 0 and has_text
    rerank = request.rerank and ranker and rerank_top > 0
    cluster_filter = vector and request.neighbour_filter is not None
    filter_neighbours = vector and bool(request.filters) and vectors is not None and not vectors.applies_filters
    # with dsr's filters every neighbour's source is fetched for the filter anyway, so records save
    # nothing; the cluster's neighbour filter (a shop's own restrictions) needs no sources, so they do.
    # A restricted search never ranks on records: they hold every item and every field, whatever the
    # caller may read, and a hidden item (or field, under field level security) would shape the order
    # of the page. Its neighbours reach the ranker only as the sources the cluster returned with the
    # caller's rights: a neighbour the caller may not read is not returned, and is dropped as a gone
    # one is. (Confirming the ids first and ranking on records would keep the fields hidden from the
    # caller in play; the early mget costs little more, as it runs while the term search does.)
    from_records = rerank and records and not request.filters and not restricted
    return Plan(
        request=request, term_k=term_k, knn_k=knn_k, rerank_top=rerank_top,
        fusion=request.fusion or defaults.fusion, term=term, vector=vector, rerank=rerank,
        filter_neighbours=filter_neighbours, records=from_records, restricted=restricted,
        cluster_filter=cluster_filter,
        bare=request.whole_order and request.size == 0 and not request.filters and (not rerank or from_records),
        # the cluster's filter returns the sources of the neighbours that pass it (unless none are needed)
        prefetch=0 if cluster_filter else _prefetch(vector, filter_neighbours, rerank and not from_records,
                                                     rerank_top, request.page_end),
    )


def _prefetch(vector: bool, filter_neighbours: bool, ranker_reads_sources: bool, rerank_top: int,
              page_end: int) -> int:
    """How many neighbours get their sources while the term search runs.

    Filtering needs them all. For the ranker, fusion of two lists rarely lifts a neighbour from the
    lower half of its list into the head of `rerank_top` unless the term side found it too (and
    brought its source), so the top share is fetched early and any other neighbour that reaches the
    head is fetched after fusion: less work for the cluster on every search. Otherwise only the page
    needs sources, and it is known only after fusion.
    """
    if not vector:
        return 0
    if filter_neighbours:
        return ALL
    if ranker_reads_sources:
        return max(page_end, -(-rerank_top * EARLY_FETCH_PERCENT // 100))
    return 0


def _set(value: int | None) -> int:
    if value is None:
        raise ValueError("the request was not resolved against the searcher's defaults")
    return value
