"""A `HybridResult` in the search response shape of Elasticsearch / OpenSearch.

Clients read `took`, `timed_out`, `_shards`, `hits.total`, `hits.max_score` and `hits.hits[]` as
usual. With `explain`, each hit's `_explanation` lists the stage scores (term, vector, fused,
rerank) the way Elasticsearch nests explanation details. What the pipeline did (degraded or not,
warnings, fusion, timings) is under the response's `ext.dsr`, where OpenSearch search pipelines put
their own response extensions.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from dsr.search.hybrid import HybridHit, HybridResult
from dsr.server.dsr_request import DsrRequest, SourceFilter


def filter_source(source: Mapping[str, Any], flt: SourceFilter) -> dict[str, Any] | None:
    """`_source` filtering as Elasticsearch does it: dotted paths, `*` wildcards, excludes win."""
    if not flt.enabled:
        return None
    if not flt.includes and not flt.excludes:
        return dict(source)
    return _filter(source, flt.includes, flt.excludes, "")


def _filter(source: Mapping[str, Any], includes: tuple[str, ...], excludes: tuple[str, ...],
            prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in source.items():
        path = prefix + key
        if any(fnmatchcase(path, p) for p in excludes):
            continue
        if not includes or any(fnmatchcase(path, p) for p in includes):
            if isinstance(value, Mapping) and excludes:
                value = _filter(value, (), excludes, path + ".")
            out[key] = value
        elif isinstance(value, Mapping):
            sub = _filter(value, includes, excludes, path + ".")
            if sub:
                out[key] = sub
    return out


def explanation(hit: HybridHit, result: HybridResult) -> dict[str, Any]:
    """Per-stage scores and ranks of one hit as an Elasticsearch `_explanation` tree."""
    details = []
    if hit.term is not None:
        details.append(_node(hit.term.score, f"term: BM25 score, rank {hit.term.rank} "
                             f"of {result.term_hits}"))
    else:
        details.append(_node(0.0, "term: not among the term matches"))
    if hit.vector is not None:
        details.append(_node(hit.vector.score, f"vector: DSR dot product ({result.vector_source}), "
                             f"rank {hit.vector.rank} of {result.vector_hits}"))
    elif result.vector_source != "none":
        details.append(_node(0.0, "vector: not among the DSR neighbours"))
    fusion = result.fusion
    how = (f"rrf(k={fusion.rrf_k})" if fusion.mode.value == "rrf"
           else f"linear({fusion.normalization.value})")
    details.append(_node(hit.fused.score, f"fused: {how}, rank {hit.fused.rank} of {result.pool}"))
    if hit.rerank is not None:
        details.append(_node(hit.rerank.score, f"rerank: pairwise ranker score, rank {hit.rerank.rank} "
                             f"of {result.reranked}"))
    final = "re-ranked" if hit.rerank is not None else "fused"
    return _node(hit.score, f"dsr hybrid score ({final}), final rank {hit.rank}", details)


def _node(value: float, description: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"value": float(value), "description": description, "details": details or []}


def search_response(result: HybridResult, req: DsrRequest, index: str, took_ms: int) -> dict[str, Any]:
    hits = []
    for h in result.hits:
        out: dict[str, Any] = {"_index": index, "_id": h.id, "_score": float(h.score)}
        src = filter_source(h.source, req.source)
        if src is not None:
            out["_source"] = src
        if req.search.explain:
            out["_explanation"] = explanation(h, result)
        hits.append(out)
    # the term side stopped at term_k: more documents may match than the pool holds
    term_k = req.search.term_k or 0
    relation = "gte" if result.term_hits >= term_k > 0 else "eq"
    total: Any = result.pool if req.total_as_int else {"value": result.pool, "relation": relation}
    return {
        "took": took_ms,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": total,
            "max_score": max((h["_score"] for h in hits), default=None),
            "hits": hits,
        },
        "ext": {"dsr": {
            "degraded": result.degraded,
            "warnings": list(result.warnings),
            "vector_source": result.vector_source,
            "fusion": result.fusion.to_config(),
            "pool": result.pool,
            "term_hits": result.term_hits,
            "vector_hits": result.vector_hits,
            "reranked": result.reranked,
            "timings_ms": dict(result.timings_ms),
        }},
    }
