"""One hit explained: the cluster's own explanation of its term score, its DSR similarity, the ranker's inputs.

* The term side is explained by the cluster itself: the default term query of the search (the one
  `dsr.backends.cluster.term_query` builds), restricted to the one item with an `ids` filter (which
  does not change its score) and run with `explain: true` through the caller's view of the backend,
  so the explanation is the cluster's Lucene explanation of exactly the score the term side got.
* The DSR similarity is the vector side's score when the neighbours held the item, else the one the
  searcher looks up for a term-only candidate (`VectorSide.similarities`, the same source and query
  tower): the value the ranker was given.
* The ranker's inputs: the head of the fused pool rebuilt as the ranker's candidates (the same ids,
  order, stage scores and sources the search gave it) and handed to `ranker_inputs.explain_candidate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dsr.backends.base import Filters, SearchBackend
from dsr.backends.cluster import term_query
from dsr.reranker.base import Candidate
from dsr.search.result import HybridHit


def term_explain_body(text: str, filters: Filters | None, item_id: str) -> dict[str, Any]:
    """The search whose one hit carries the cluster's explanation of `item_id`'s term score."""
    return {"query": {"bool": {"must": [term_query(text, filters, None)], "filter": [{"ids": {"values": [item_id]}}]}},
            "explain": True, "size": 1, "_source": False}


def term_explanation(backend: SearchBackend, index: str, text: str, filters: Filters | None,
                     item_id: str) -> dict[str, Any]:
    """`{"matched", "score", "explanation"}`: the cluster's `_explanation` tree, or that the term query misses it."""
    answer = backend.raw_search(index, term_explain_body(text, filters, item_id))
    hits = (answer.get("hits") or {}).get("hits") or []
    if not hits:
        return {"matched": False, "score": None, "explanation": None,
                "note": "the term query does not match this item: it came from the vector side alone"}
    hit = hits[0]
    return {"matched": True, "score": hit.get("_score"), "explanation": hit.get("_explanation"), "note": None}


def head_of(hits: Sequence[HybridHit]) -> list[HybridHit]:
    """The hits the ranker scored, in the order it was given them (fused order)."""
    return sorted((h for h in hits if h.rerank is not None), key=lambda h: h.fused.rank)


def candidates_of(head: Sequence[HybridHit], similarities: Mapping[str, float]) -> list[Candidate]:
    """The ranker's candidates as the searcher builds them (`dsr.search.rerank.Reranking.candidates`)."""
    out = []
    for place, hit in enumerate(head):
        dsr = hit.vector.score if hit.vector is not None else similarities.get(hit.id)
        out.append(Candidate(item={**hit.source, "id": hit.id}, bm25=hit.term.score if hit.term is not None else None,
                             dsr=dsr, fused_rank=place))
    return out


def query_vector(encoder: Any, text: str, user: Mapping[str, Any] | None) -> np.ndarray:
    return np.asarray(encoder.encode_queries([text], [user]), dtype=np.float32)[0]
