"""ranx-backed metrics against a hand-computed example."""

from __future__ import annotations

import math

import pytest

from dsr.eval.metrics import bootstrap_ci, compare_runs, evaluate_run

QRELS = {
    "q1": {"a": 2, "b": 1, "c": 0},  # c judged, not relevant
    "q2": {"d": 1},
    "q3": {"e": 0},  # no relevant item: not evaluated
}
RUN = {
    "q1": {"x": 3.0, "a": 2.0, "b": 1.0},  # relevant at ranks 2 and 3
    "q2": {},  # nothing returned: scores zero, still counted
}


def test_ndcg_recall_mrr_match_the_hand_computation() -> None:
    ev = evaluate_run(QRELS, RUN, "r")
    assert ev.queries == ("q1", "q2")
    # q1: DCG = 2/log2(3) + 1/log2(4); ideal = 2/log2(2) + 1/log2(3) (linear gains)
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    q1 = ev.query_scores("ndcg10")["q1"]
    assert q1 == pytest.approx(dcg / idcg, abs=1e-9)
    assert ev.query_scores("mrr10") == pytest.approx({"q1": 0.5, "q2": 0.0})
    assert ev.query_scores("recall100") == pytest.approx({"q1": 1.0, "q2": 0.0})
    assert ev.means["ndcg10"] == pytest.approx((dcg / idcg) / 2)


def test_scaling_gains_leaves_ndcg_unchanged() -> None:
    scaled = {q: {d: 12 * g for d, g in judged.items()} for q, judged in QRELS.items()}
    assert evaluate_run(scaled, RUN).means == pytest.approx(evaluate_run(QRELS, RUN).means)


def test_paired_comparison_counts_wins_and_losses() -> None:
    better = {"q1": {"a": 2.0, "b": 1.0}, "q2": {"d": 1.0}}
    [cmp] = compare_runs(QRELS, {"bm25": RUN, "better": better}, baseline="bm25")
    assert (cmp.a, cmp.b, cmp.wins, cmp.ties, cmp.losses) == ("better", "bm25", 2, 0, 0)
    assert cmp.mean_a == pytest.approx(1.0) and 0.0 <= cmp.p_value <= 1.0


def test_bootstrap_interval_contains_the_mean_and_is_deterministic() -> None:
    values = [0.1, 0.5, 0.9, 0.3, 0.7]
    lo, hi = bootstrap_ci(values)
    assert lo <= sum(values) / len(values) <= hi
    assert bootstrap_ci(values) == (lo, hi)
    assert bootstrap_ci([]) == (0.0, 0.0)
