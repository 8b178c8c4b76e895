"""The `Reranker` protocol: scores a query's candidates, one score per candidate, higher first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dsr.catalog import Item


@dataclass(frozen=True)
class Candidate:
    """A first-stage result with the scores the ranker may use as features."""

    item: Item
    bm25: float | None = None  # term score, None when the term side did not return it
    dsr: float | None = None  # query-item dot product, None when not computed
    fused_rank: int = 0  # 0-based rank after fusion
    extra: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Reranker(Protocol):
    def score(
        self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """float32 scores, one per candidate, all candidates in one batch.

        A ranker that reads only some catalog fields may say which in an `item_fields` attribute;
        the searcher then feeds it sidecar neighbours from the item records instead of their sources.
        """
        ...
