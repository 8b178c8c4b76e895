"""Fusion of ranked result lists: reciprocal rank fusion and normalised linear combination.

Each first-stage retriever (term match, DSR neighbours) hands over a ranked list of `(id, score)`.
Fusion is a pure function of those lists, chosen once by `FusionMode` from the `FUSERS` table, so
the hybrid searcher and its tests share the exact same arithmetic:

* RRF (Cormack et al.): `sum_i w_i / (k + rank_i)`; ranks only, so the very different BM25 and
  dot-product scales never matter. `k` (default 60) damps the head.
* Linear: every list's scores are normalised (min-max or z-score, as OpenSearch's normalization
  processor does), then combined as a weighted arithmetic mean. A document missing from a list gets
  that list's lowest normalised score, i.e. "no evidence" rather than a bonus or a penalty below
  the worst retrieved hit.

Ids are de-duplicated: within one list the first (best) occurrence wins; across lists the entries
merge into one `Fused` per id that keeps each stage's score and 1-based rank for explanations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

RankedList = Sequence[tuple[str, float]]
"""One retriever's result: `(id, score)` pairs, best first."""


class FusionMode(StrEnum):
    RRF = "rrf"
    LINEAR = "linear"


class Normalization(StrEnum):
    MIN_MAX = "min_max"
    Z_SCORE = "z_score"


@dataclass(frozen=True)
class FusionConfig:
    """How to fuse: the mode, RRF's `k`, linear's normalisation, and one weight per stage name.

    Stages without a weight get weight 1.
    """

    mode: FusionMode = FusionMode.RRF
    rrf_k: int = 60
    normalization: Normalization = Normalization.MIN_MAX
    weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", FusionMode(self.mode))
        object.__setattr__(self, "normalization", Normalization(self.normalization))
        if self.rrf_k < 1:
            raise ValueError(f"rrf_k must be >= 1, got {self.rrf_k}")
        for name, w in self.weights.items():
            if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0):
                raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {w!r}")
        if self.weights and not any(self.weights.values()):
            raise ValueError("at least one fusion weight must be > 0")

    def weight(self, stage: str) -> float:
        return float(self.weights.get(stage, 1.0))

    def to_config(self) -> dict[str, object]:
        return {"mode": self.mode.value, "rrf_k": self.rrf_k,
                "normalization": self.normalization.value, "weights": dict(self.weights)}

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> FusionConfig:
        return cls(**config)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Fused:
    """One fused document: its fused score and, per stage that returned it, the stage's score and rank."""

    id: str
    score: float
    stage_scores: Mapping[str, float]
    stage_ranks: Mapping[str, int]  # 1-based


def dedupe(ranked: RankedList) -> list[tuple[str, float]]:
    """The list with later repeats of an id dropped (the best-ranked occurrence stays)."""
    seen: set[str] = set()
    out = []
    for doc_id, score in ranked:
        if doc_id not in seen:
            seen.add(doc_id)
            out.append((doc_id, float(score)))
    return out


def normalize(scores: Sequence[float], method: Normalization | str) -> list[float]:
    """Scores of one list rescaled so lists from different retrievers are comparable.

    min-max maps to [0, 1] (a list whose scores are all equal maps to 1: each hit is the best of
    its list); z-score centres on the mean in units of the standard deviation (all equal -> 0).
    """
    method = Normalization(method)
    if not scores:
        return []
    if method is Normalization.MIN_MAX:
        lo, hi = min(scores), max(scores)
        if hi == lo:
            return [1.0] * len(scores)
        return [(s - lo) / (hi - lo) for s in scores]
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if std == 0:
        return [0.0] * len(scores)
    return [(s - mean) / std for s in scores]


def _merge(lists: Mapping[str, RankedList]) -> tuple[dict[str, list[tuple[str, float]]], list[str]]:
    clean = {stage: dedupe(ranked) for stage, ranked in lists.items()}
    order: list[str] = []  # first appearance across stages, for a stable tie-break
    seen: set[str] = set()
    for ranked in clean.values():
        for doc_id, _ in ranked:
            if doc_id not in seen:
                seen.add(doc_id)
                order.append(doc_id)
    return clean, order


def _finish(order: list[str], fused: dict[str, float], clean: Mapping[str, list[tuple[str, float]]]
            ) -> list[Fused]:
    scores: dict[str, dict[str, float]] = {d: {} for d in order}
    ranks: dict[str, dict[str, int]] = {d: {} for d in order}
    for stage, ranked in clean.items():
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            scores[doc_id][stage] = score
            ranks[doc_id][stage] = rank
    position = {d: i for i, d in enumerate(order)}
    ordered = sorted(order, key=lambda d: (-fused[d], position[d]))
    return [Fused(d, fused[d], scores[d], ranks[d]) for d in ordered]


def reciprocal_rank_fusion(lists: Mapping[str, RankedList], config: FusionConfig = FusionConfig()
                           ) -> list[Fused]:
    """RRF over the stages' lists: `sum(weight / (rrf_k + rank))`, best first."""
    clean, order = _merge(lists)
    fused = dict.fromkeys(order, 0.0)
    for stage, ranked in clean.items():
        w = config.weight(stage)
        for rank, (doc_id, _) in enumerate(ranked, start=1):
            fused[doc_id] += w / (config.rrf_k + rank)
    return _finish(order, fused, clean)


def linear_combination(lists: Mapping[str, RankedList], config: FusionConfig = FusionConfig()
                       ) -> list[Fused]:
    """Normalise each list, then the weighted arithmetic mean over all stages, best first.

    A document absent from a stage takes that stage's lowest normalised score.
    """
    clean, order = _merge(lists)
    total_weight = sum(config.weight(stage) for stage in clean) or 1.0
    fused = dict.fromkeys(order, 0.0)
    for stage, ranked in clean.items():
        if not ranked:
            continue
        w = config.weight(stage)
        normed = normalize([s for _, s in ranked], config.normalization)
        floor = min(normed)
        present = {doc_id: n for (doc_id, _), n in zip(ranked, normed, strict=True)}
        for doc_id in order:
            fused[doc_id] += w * present.get(doc_id, floor)
    fused = {d: s / total_weight for d, s in fused.items()}
    return _finish(order, fused, clean)


Fuser = Callable[[Mapping[str, RankedList], FusionConfig], list[Fused]]

FUSERS: dict[FusionMode, Fuser] = {
    FusionMode.RRF: reciprocal_rank_fusion,
    FusionMode.LINEAR: linear_combination,
}


def fuse(lists: Mapping[str, RankedList], config: FusionConfig = FusionConfig()) -> list[Fused]:
    """Fuse the stages' ranked lists with the method `config.mode` names."""
    return FUSERS[config.mode](lists, config)
