"""What a hybrid search returns: hits that keep every stage's score and rank, and what the pipeline did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dsr.search.fusion import FusionConfig

TERM = "term"
VECTOR = "vector"
"""The names of the two first-stage lists, as fusion weights and explanations name them."""

VECTOR_NONE = "none"  # `HybridResult.vector_source` when there is no vector side


@dataclass(frozen=True)
class StageScore:
    """A hit's score and 1-based rank in one stage of the pipeline."""

    score: float
    rank: int


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
    # the whole final order, best first, without sources (only when the request asks for it: `whole_order`)
    order: tuple[HybridHit, ...] = ()
