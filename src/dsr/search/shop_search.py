"""A shop's own search request answered hybrid, everything else of it answered by the cluster.

The shop's front end sends facets (`aggs`), `post_filter`, `highlight`, `sort`, `from`/`size` and
`search_after`, `collapse`, `suggest` and more. dsr does not re-implement any of them. A hybrid
search runs in three requests to the cluster, each with the caller's credentials:

1. **term side**: the shop's query itself, unchanged (its filters, boosts and scoring), for the top
   `term_k`;
2. **vector side**: the sidecar's neighbours of the shopper's text, kept only where the cluster says
   the query's restrictions (`dsr.search.shop_query`) match them;
3. fusion and re-ranking order the candidates (`HybridSearcher`), then the **final pass** sends the
   shop's body back to the cluster with its `query` replaced by one that matches exactly the
   candidates and scores each by its place in the final order (`candidates_query`). So the cluster
   computes the aggregations over the hybrid result set, applies `post_filter` to the hits and not
   to them, sorts (by `_score`, the final order, or by the shop's fields), pages, collapses,
   highlights (with the shop's query as `highlight_query`), and counts `hits.total`: the answer is
   the cluster's own, for the candidate set, and always consistent with its pages.

The response keeps the cluster's shape; dsr puts back the final scores in `_score`/`max_score`,
replaces `_explanation` with one per stage (the cluster's own explanation of the term side inside
it), adds its stage timings beside the cluster's `profile`, and reports its own `took`. In `sort`
values a `_score` is the place-based score of the final pass (what `search_after` sends back).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dsr.backends.base import SearchBackend
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchRequest
from dsr.search.result import HybridHit, HybridResult
from dsr.search.shop_query import ShopQuery

MAX_PLACED = 1000
"""Candidates scored by their place in the final pass (one clause each; the engines refuse a query of
more than 1,024 clauses by default). Candidates beyond them still match, with score 0."""

RELAYED_BODY_KEYS = frozenset({
    "size", "from", "sort", "search_after", "aggs", "aggregations", "post_filter", "highlight", "collapse",
    "_source", "fields", "docvalue_fields", "stored_fields", "script_fields", "track_total_hits", "track_scores",
    "version", "seq_no_primary_term", "stats", "suggest", "timeout", "runtime_mappings",
    "profile", "explain", "query", "ext", "min_score",
})
"""The body keys a hybrid answer honours: relayed to the final pass, or handled by dsr (`query`, `ext`,
`explain`, `profile`, `min_score`, which applies to the term side's scores)."""

TERM_PASS_KEYS = ("runtime_mappings", "timeout")
"""Body keys the term side and the neighbour filter carry too (the query may read runtime fields)."""

REFUSED_BODY_KEYS = {
    "rescore": "it re-scores the top hits with another query, which would undo the fused order",
    "knn": "it is the engine's own vector search; dsr's vector side replaces it",
    "retriever": "it is the engine's own retrieval pipeline",
    "rank": "it is the engine's own rank fusion",
    "pit": "a point in time search is not on an index",
    "slice": "a sliced search is for scrolling through everything, not for ranked pages",
    "terminate_after": "it would count and aggregate only part of the candidates",
    "indices_boost": "it scales scores per index, and a hybrid search runs on one index",
}

RELAYED_PARAMS = frozenset({
    "typed_keys", "rest_total_hits_as_int", "track_total_hits", "timeout", "size", "from", "_source",
    "_source_includes", "_source_excludes", "stored_fields", "docvalue_fields", "sort", "allow_no_indices",
    "ignore_unavailable", "expand_wildcards", "request_cache", "preference", "batched_reduce_size",
    "max_concurrent_shard_requests", "pre_filter_shard_size", "ccs_minimize_roundtrips",
    "allow_partial_search_results", "track_scores", "version", "seq_no_primary_term", "error_trace",
    "human", "search_type", "include_named_queries_score",
})
HANDLED_PARAMS = frozenset({"pretty", "explain"})


@dataclass(frozen=True)
class ShopSearchRequest:
    """A shop's search body (without `ext.dsr`), its URL parameters, its query read, and the hybrid search.

    `search` holds the shopper's text, the user, the depths, fusion and ranker choice, and the caller;
    its `size`/`offset` are not used (the cluster pages the candidates).
    """

    body: Mapping[str, Any]
    params: Mapping[str, str]
    query: ShopQuery
    search: SearchRequest

    @property
    def explain(self) -> bool:
        value = self.params.get("explain", self.body.get("explain", False))
        return value is True or value in ("true", "")

    @property
    def counts_only(self) -> bool:
        """The request shows no hits (`size` 0): aggregations and totals only."""
        size = self.params.get("size", self.body.get("size"))
        return size == 0 or size == "0"

    @property
    def profile(self) -> bool:
        return self.body.get("profile") is True


@dataclass(frozen=True)
class ShopAnswer:
    """The cluster's answer to the final pass, with dsr's scores, explanations and timings in it."""

    response: dict[str, Any]
    result: HybridResult


def refused_keys(body: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """The body keys and URL parameters a hybrid answer cannot honour, each with the reason."""
    out: dict[str, str] = {}
    for key in body:
        if key in REFUSED_BODY_KEYS:
            out[key] = REFUSED_BODY_KEYS[key]
        elif key not in RELAYED_BODY_KEYS:
            out[key] = "dsr does not know how this search body key combines with a hybrid search"
    for key in params:
        if key not in RELAYED_PARAMS and key not in HANDLED_PARAMS:
            out[key] = "dsr does not know how this URL parameter combines with a hybrid search"
    return out


class ShopSearcher:
    """Runs a `ShopSearchRequest` with a `HybridSearcher` (its backend, index, models and defaults)."""

    def __init__(self, searcher: HybridSearcher) -> None:
        self.searcher = searcher

    def run(self, request: ShopSearchRequest) -> ShopAnswer:
        started = time.perf_counter()
        body = request.body
        term_extra = {k: body[k] for k in TERM_PASS_KEYS if k in body}
        if "min_score" in body:
            term_extra["min_score"] = body["min_score"]
        # a page of no hits (facet counts only, as front ends ask for each disjunctive facet) needs the
        # candidate set and not its order: the ranker is not asked
        rerank = request.search.rerank and not request.counts_only
        search = replace(request.search, size=0, offset=0, rerank=rerank, term_query=dict(request.query.query),
                         neighbour_filter=(request.query.restrictions.query() if request.query.restrictions
                                           else None),
                         term_extra=term_extra or None, whole_order=True)
        result = self.searcher.run(search)
        backend = self._backend(search)
        index = self.searcher.index
        params = {k: v for k, v in request.params.items() if k in RELAYED_PARAMS}
        final_started = time.perf_counter()
        page = _page_bounds(request)
        by_id = {h.id: h for h in result.order}
        if page is not None:  # the cluster's work split in two requests at once, neither scoring by place
            counts_body, page_body = split_bodies(body, result.order, request.query, *page)
            page_params = {k: v for k, v in params.items() if k not in ("size", "from")}
            shown = (self.searcher.background(backend.raw_search, index, page_body, page_params)
                     if page[1] else None)
            response = backend.raw_search(index, counts_body, page_params)
            _merge_page(response, shown.result() if shown is not None else {}, result.order, page[1])
        else:
            response = backend.raw_search(index, final_body(body, result.order, request.query), params)
            _rescore_hits(response.get("hits"), result.order, by_id)
        final_ms = (time.perf_counter() - final_started) * 1000.0
        if request.explain:
            explanations = self._term_explanations(backend, request, response)
            _explain_hits(response.get("hits"), by_id, explanations, result)
        timings = {**result.timings_ms, "final_pass": round(final_ms, 3)}
        if request.profile and isinstance(response.get("profile"), dict):
            response["profile"]["dsr"] = {"timings_ms": timings, "candidates": len(result.order),
                                          "term_hits": result.term_hits, "vector_hits": result.vector_hits,
                                          "reranked": result.reranked}
        response["took"] = int((time.perf_counter() - started) * 1000)
        return ShopAnswer(response, replace(result, timings_ms=timings))

    def _backend(self, search: SearchRequest) -> SearchBackend:
        backend = self.searcher.backend
        return backend if search.caller is None else backend.for_caller(search.caller)

    def _term_explanations(self, backend: SearchBackend, request: ShopSearchRequest,
                           response: Mapping[str, Any]) -> dict[str, Any]:
        """The cluster's own explanation of the shop's query for each hit of the page that it matches."""
        ids = [str(h["_id"]) for h in _hit_list(response.get("hits"))]
        if not ids:
            return {}
        body = {"query": {"bool": {"must": [dict(request.query.query)], "filter": [{"ids": {"values": ids}}]}},
                **{k: request.body[k] for k in TERM_PASS_KEYS if k in request.body},
                "explain": True, "size": len(ids), "_source": False, "track_total_hits": False}
        answer = backend.raw_search(self.searcher.index, body)
        return {str(h["_id"]): h.get("_explanation") for h in _hit_list(answer.get("hits"))}


def candidates_query(order: tuple[HybridHit, ...], shop_query: ShopQuery) -> dict[str, Any]:
    """A query that matches exactly the candidates, each scored by its place in the final order.

    The best of `n` placed candidates scores `n`, the next `n - 1`, and so on, so the cluster's own
    `_score` order is the final order. When the shop's query names clauses (`_name`), it is added
    with boost 0, so `matched_queries` says what it says on a plain search and no score changes.
    """
    ids = [h.id for h in order]
    placed = ids[:MAX_PLACED]
    should: list[dict[str, Any]] = [
        {"constant_score": {"filter": {"ids": {"values": [doc_id]}}, "boost": float(len(placed) - i)}}
        for i, doc_id in enumerate(placed)]
    if '"_name"' in json.dumps(shop_query.query):
        should.append({"bool": {"must": [dict(shop_query.query)], "boost": 0.0}})
    clause: dict[str, Any] = {"filter": [{"ids": {"values": ids}}]}
    if should:
        clause["should"] = should
    return {"bool": clause}


SPLIT_BLOCKERS = frozenset({"sort", "search_after", "collapse", "post_filter", "track_scores", "stored_fields",
                            "profile"})
"""Body keys whose hits only a final pass over every candidate, scored by place, can show (and `profile`,
which shows the cluster's profile of that one request)."""
COUNT_KEYS = ("aggs", "aggregations", "suggest", "track_total_hits", "timeout", "runtime_mappings", "stats")
"""The keys of the counting request of a split final pass (the rest are the page's)."""
PAGE_KEYS = ("highlight", "_source", "fields", "docvalue_fields", "script_fields", "version", "seq_no_primary_term",
             "timeout", "runtime_mappings")
PAGE_MARGIN = 10  # candidates asked beyond the page, in case some are gone from the index


def _page_bounds(request: ShopSearchRequest) -> tuple[int, int] | None:
    """`(from, size)` when the final pass can be split (hits in the final order, nothing that needs every
    candidate scored), else None."""
    body, params = request.body, request.params
    if any(key in body for key in SPLIT_BLOCKERS) or any(k in params for k in ("sort", "stored_fields")):
        return None
    try:
        start = int(params.get("from", body.get("from", 0)))
        size = int(params.get("size", body.get("size", 10)))
    except (TypeError, ValueError):
        return None  # the cluster says what is wrong with them
    return (start, size) if start >= 0 and size >= 0 else None


def split_bodies(body: Mapping[str, Any], order: tuple[HybridHit, ...], shop_query: ShopQuery, start: int,
                 size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The final pass as two requests: the counting one (aggregations, totals, suggestions over every
    candidate, no hits) and the page (the page's candidates with the shop's highlight and fields).

    When the order is by `_score` and no key needs every candidate scored, the page is known before
    the cluster is asked: scoring every candidate by its place (one clause each) is the dearest part of
    the one-request final pass, and here neither request needs it.
    """
    counts: dict[str, Any] = {"query": {"bool": {"filter": [{"ids": {"values": [h.id for h in order]}}]}}, "size": 0}
    page_ids = {h.id for h in order[start:start + size + PAGE_MARGIN]} if size else set()
    shown: dict[str, Any] = {"query": candidates_query(tuple(h for h in order if h.id in page_ids), shop_query),
                             "size": len(page_ids), "track_total_hits": False}
    for key, value in without_dsr_ext(body).items():
        if key in COUNT_KEYS or key == "ext":
            counts[key] = value
        if key in PAGE_KEYS or key == "ext":
            shown[key] = _highlighted(value, shop_query) if key == "highlight" else value
    return counts, shown


def _merge_page(response: dict[str, Any], page: Mapping[str, Any], order: tuple[HybridHit, ...], size: int) -> None:
    """The counting answer with the page's hits in it, in the final order, with the final scores."""
    place = {h.id: i for i, h in enumerate(order)}
    found = sorted((h for h in _hit_list(page.get("hits")) if str(h.get("_id")) in place),
                   key=lambda h: place[str(h["_id"])])
    hits = response.setdefault("hits", {})
    total = hits.get("total")
    count = total.get("value") if isinstance(total, Mapping) else total
    hits["hits"] = found[:size]
    for h in hits["hits"]:
        h["_score"] = order[place[str(h["_id"])]].score
    hits["max_score"] = order[0].score if order and (count or hits["hits"]) else None
    response["timed_out"] = bool(response.get("timed_out")) or bool(page.get("timed_out"))


def final_body(body: Mapping[str, Any], order: tuple[HybridHit, ...], shop_query: ShopQuery) -> dict[str, Any]:
    """The shop's body for the final pass: its query replaced by the candidates, everything else kept."""
    out: dict[str, Any] = {"query": candidates_query(order, shop_query)}
    for key, value in without_dsr_ext(body).items():
        if key not in ("query", "explain", "min_score"):
            out[key] = _highlighted(value, shop_query) if key == "highlight" else value
    return out


def without_dsr_ext(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` without `ext.dsr` (and without `ext` when nothing else is in it): what the cluster reads,
    which refuses an ext section it does not know."""
    out = dict(body)
    ext = out.get("ext")
    if isinstance(ext, Mapping) and "dsr" in ext:
        rest = {k: v for k, v in ext.items() if k != "dsr"}
        if rest:
            out["ext"] = rest
        else:
            del out["ext"]
    return out


def _highlighted(highlight: Any, shop_query: ShopQuery) -> Any:
    """The shop's highlight spec, highlighting the shop's own query (the candidates query holds no terms)."""
    if isinstance(highlight, Mapping) and "highlight_query" not in highlight:
        return {**highlight, "highlight_query": dict(shop_query.query)}
    return highlight


def _hit_list(hits: Any) -> list[dict[str, Any]]:
    if not isinstance(hits, Mapping):
        return []
    found = hits.get("hits")
    return [h for h in found if isinstance(h, dict)] if isinstance(found, list) else []


def _rescore_hits(hits: Any, order: tuple[HybridHit, ...], by_id: Mapping[str, HybridHit]) -> None:
    """The final scores in place of the place-based ones, in the hits and in their inner hits.

    `max_score` becomes the final score of the best placed candidate that matched (the first hit of
    the `_score` order): the cluster's maximum of the place-based scores names it. A hit shown without
    its `_id` (`stored_fields: "_none_"`) is named by its place-based score the same way.
    """
    if not isinstance(hits, dict):
        return
    for h in _hit_list(hits):
        placed = by_id.get(str(h["_id"])) if "_id" in h else _by_place(h.get("_score"), order)
        if placed is not None and h.get("_score") is not None:
            h["_score"] = placed.score
        for inner in (h.get("inner_hits") or {}).values():
            if isinstance(inner, dict):
                _rescore_hits(inner.get("hits"), order, by_id)
    top = _by_place(hits.get("max_score"), order)
    if top is not None:
        hits["max_score"] = top.score


def _by_place(score: Any, order: tuple[HybridHit, ...]) -> HybridHit | None:
    """The candidate a place-based score of the final pass stands for (None: not one of the placed)."""
    if not isinstance(score, int | float) or isinstance(score, bool) or score <= 0:
        return None
    place = round(min(len(order), MAX_PLACED) - score)
    return order[place] if 0 <= place < len(order) else None


def _explain_hits(hits: Any, by_id: Mapping[str, HybridHit], term: Mapping[str, Any], result: HybridResult) -> None:
    for h in _hit_list(hits):
        placed = by_id.get(str(h.get("_id")))
        if placed is not None:
            h["_explanation"] = explanation(placed, term.get(placed.id), result)


def explanation(hit: HybridHit, term_explanation: Any, result: HybridResult) -> dict[str, Any]:
    """A hit's explanation in the cluster's shape, one level per stage of the hybrid pipeline."""
    fusion = result.fusion
    stages: list[dict[str, Any]] = []
    if hit.term is not None:
        stages.append({"value": hit.term.score, "description": f"term side: the shop's query, rank {hit.term.rank}",
                       "details": [term_explanation] if isinstance(term_explanation, dict) else []})
    if hit.vector is not None:
        stages.append({"value": hit.vector.score, "description": "vector side: DSR similarity of the query and "
                       f"item towers, rank {hit.vector.rank}", "details": []})
    how = f"rrf, rank_constant {fusion.rrf_k}" if fusion.mode.value == "rrf" else (
        f"{fusion.mode.value}, {fusion.normalization.value} normalisation")
    fused = {"value": hit.fused.score, "description": f"fused ({how}), rank {hit.fused.rank}", "details": stages}
    if hit.rerank is None:
        return {"value": hit.score, "description": f"dsr hybrid: fused order, rank {hit.rank}", "details": [fused]}
    return {"value": hit.score, "description": f"dsr hybrid: re-ranked by the pairwise ranker, rank {hit.rank} "
            f"(ranker rank {hit.rerank.rank} of {result.reranked})", "details": [fused]}
