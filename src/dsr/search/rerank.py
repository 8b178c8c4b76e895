"""Re-ranking: the head of the fused pool as the ranker's candidates, re-ordered by its scores.

Every candidate carries what the ranker may use as features: its item fields (the source, or the item
record standing in for it), its BM25 score (None when the term side did not find it), its DSR
similarity (from the vector side, or looked up for term-only hits) and its fused rank. A failing
ranker does not fail the search: the head keeps its fused order and the outcome says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from dsr.errors import DsrError
from dsr.reranker.base import Candidate, Reranker
from dsr.search.fusion import Fused
from dsr.search.result import TERM, VECTOR, StageScore

log = logging.getLogger(__name__)


class Ranked(NamedTuple):
    """A place in the final order: a fused candidate, its rerank stage (if it was re-ranked), its final score.

    A tuple: a search builds one per candidate in the pool.
    """

    fused: Fused
    rerank: StageScore | None
    score: float

    @property
    def id(self) -> str:
        return self.fused.id


def fused_order(fused: Sequence[Fused]) -> list[Ranked]:
    return [Ranked(f, None, f.score) for f in fused]


@dataclass(frozen=True)
class Reranked:
    """The head in its new order, how many candidates the ranker scored, and why not, if it failed."""

    order: list[Ranked]
    count: int
    warning: str | None = None


class Reranking:
    """Candidate building and the ranker call.

    Args:
        ranker: the `Reranker`.
        embedding_field: the vector field, left out of the items the ranker reads.
    """

    def __init__(self, ranker: Reranker, *, embedding_field: str) -> None:
        self.ranker = ranker
        self.embedding_field = embedding_field

    def rank(self, text: str, user: Mapping[str, Any] | None, head: Sequence[Fused],
             items: Mapping[str, Mapping[str, Any]], similarities: Mapping[str, float]) -> Reranked:
        """The head re-ordered by the ranker's scores (ties keep the fused order)."""
        candidates = self.candidates(head, items, similarities)
        try:
            scores = np.asarray(self.ranker.score(text, candidates, user), dtype=np.float32)
            if scores.shape != (len(candidates),):
                raise ValueError(f"ranker returned {scores.shape} scores for {len(candidates)} candidates")
        except (DsrError, RuntimeError, ValueError) as e:
            log.warning("re-ranking failed, answering in fused order: %s", e)
            return Reranked(fused_order(head), 0, f"re-ranking unavailable ({type(e).__name__}: {e}); fused order")
        by_score = sorted(range(len(head)), key=lambda i: (-scores[i], i))
        order = [Ranked(head[i], StageScore(float(scores[i]), r), float(scores[i]))
                 for r, i in enumerate(by_score, start=1)]
        return Reranked(order, len(head))

    def candidates(self, head: Sequence[Fused], items: Mapping[str, Mapping[str, Any]],
                   similarities: Mapping[str, float]) -> list[Candidate]:
        """The ranker's view of the head: `items` by id, the stage scores, and `similarities` for term-only hits."""
        out = []
        for rank, f in enumerate(head):
            dsr = f.stage_scores.get(VECTOR)
            item = items.get(f.id, {})
            if self.embedding_field in item:
                item = {k: v for k, v in item.items() if k != self.embedding_field}
            out.append(Candidate(item={**item, "id": f.id}, bm25=f.stage_scores.get(TERM),
                                 dsr=similarities.get(f.id) if dsr is None else dsr, fused_rank=rank))
        return out


def ranker_item_fields(reranker: Reranker | None) -> tuple[str, ...] | None:
    """The item fields `reranker` reads, when it declares them (an `item_fields` attribute), else None."""
    fields = getattr(reranker, "item_fields", None)
    return tuple(fields) if fields is not None else None
