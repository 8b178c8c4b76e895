"""Ranking metrics through ranx: NDCG@10, recall@100, MRR@10, per query, and paired significance tests.

ranx is a well-kept library; we only translate our dicts into its `Qrels`/`Run` and name the metrics.
NDCG uses linear gains (ranx `ndcg`, Järvelin & Kekäläinen), so our integer-scaled gains give exactly
the NDCG of the original grades. An item counts as relevant for recall and MRR when its gain is > 0.
Queries a pipeline returned nothing for still count (as zeros): an empty result is a failure, not a skip.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

METRICS: dict[str, str] = {"ndcg10": "ndcg@10", "recall100": "recall@100", "mrr10": "mrr@10"}
"""Our report keys -> ranx metric names."""

RunDict = Mapping[str, Mapping[str, float]]
"""query -> {item id: score}, higher first."""


def _ranx():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ranx
    return ranx


def _qrels_run(qrels: Mapping[str, Mapping[str, int]], run: RunDict, name: str):
    ranx = _ranx()
    queries = sorted(q for q in qrels if any(g > 0 for g in qrels[q].values()))
    q = ranx.Qrels({qid: {d: int(g) for d, g in qrels[qid].items()} for qid in queries})
    # ranx drops empty result lists; a sentinel id that is never relevant keeps the query (scored 0).
    r = ranx.Run({qid: (dict(run.get(qid) or {}) or {"\x00none": 0.0}) for qid in queries}, name=name)
    return q, r, queries


@dataclass(frozen=True)
class Evaluation:
    """Mean and per-query values of each metric for one pipeline on one query set."""

    pipeline: str
    queries: tuple[str, ...]
    per_query: Mapping[str, np.ndarray]  # metric key -> values aligned with `queries`

    @property
    def means(self) -> dict[str, float]:
        return {k: float(v.mean()) if len(v) else 0.0 for k, v in self.per_query.items()}

    def query_scores(self, metric: str = "ndcg10") -> dict[str, float]:
        return dict(zip(self.queries, map(float, self.per_query[metric]), strict=True))


def evaluate_run(qrels: Mapping[str, Mapping[str, int]], run: RunDict, name: str = "run") -> Evaluation:
    """Per-query NDCG@10, recall@100 and MRR@10 over the queries with at least one relevant item."""
    ranx = _ranx()
    q, r, queries = _qrels_run(qrels, run, name)
    if not queries:
        return Evaluation(name, (), {k: np.zeros(0) for k in METRICS})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = ranx.evaluate(q, r, list(METRICS.values()), return_mean=False, save_results_in_run=False)
    # ranx orders per-query results by its own sorted query ids
    order = sorted(queries)
    per_query = {key: np.asarray(scores[metric], dtype=np.float64) for key, metric in METRICS.items()}
    return Evaluation(name, tuple(order), per_query)


@dataclass(frozen=True)
class Comparison:
    """Paired test of pipeline `a` against `b` on one metric over the same queries."""

    a: str
    b: str
    metric: str
    mean_a: float
    mean_b: float
    p_value: float
    wins: int  # queries where a > b
    ties: int
    losses: int


def compare_runs(
    qrels: Mapping[str, Mapping[str, int]],
    runs: Mapping[str, RunDict],
    *,
    baseline: str,
    metric: str = "ndcg10",
    stat_test: str = "student",
) -> list[Comparison]:
    """Each pipeline against `baseline`: ranx's paired test (Student's t by default) and win/tie/loss."""
    ranx = _ranx()
    if baseline not in runs:
        return []
    names = [baseline, *[n for n in runs if n != baseline]]
    if len(names) < 2:
        return []
    pairs = [_qrels_run(qrels, runs[n], n) for n in names]
    if not pairs[0][2]:
        return []
    qrels_obj = pairs[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ranx.compare(
            qrels_obj,
            [p[1] for p in pairs],
            [METRICS[metric]],
            stat_test=stat_test,
            max_p=0.05,
            rounding_digits=6,
        )
    data = report.to_dict()
    out: list[Comparison] = []
    base = data[baseline]
    for n in names[1:]:
        wtl = data[n]["win_tie_loss"][baseline][METRICS[metric]]
        out.append(
            Comparison(
                a=n,
                b=baseline,
                metric=metric,
                mean_a=float(data[n]["scores"][METRICS[metric]]),
                mean_b=float(base["scores"][METRICS[metric]]),
                p_value=float(data[n]["comparisons"][baseline][METRICS[metric]]),
                wins=int(wtl["W"]),
                ties=int(wtl["T"]),
                losses=int(wtl["L"]),
            )
        )
    return out


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, *, n: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean over queries."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n, arr.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
