"""A column's metrics are dsr eval's metrics of its ranking, plus the share of its top ten nobody graded."""

from __future__ import annotations

import math

import pytest

from dsr.eval.judgments import to_gain
from dsr.eval.metrics import evaluate_run
from dsr.server.workbench.metrics import column_metrics, mean_metrics, run_of


def test_ndcg_is_the_linear_gain_ndcg_of_the_grades():
    m = column_metrics(["a", "b", "c"], {"a": 0, "b": 3, "c": 1})
    dcg = 3 / math.log2(3) + 1 / math.log2(4)
    ideal = 3 + 1 / math.log2(3)
    assert m.ndcg10 == pytest.approx(dcg / ideal)
    assert m.mrr10 == pytest.approx(1 / 2)
    assert m.recall100 == pytest.approx(1.0)
    assert (m.judged, m.relevant, m.judged_in_top, m.unjudged10) == (3, 2, 3, 0.0)


def test_the_figures_are_those_dsr_eval_computes_for_the_same_ranking():
    ranking = [f"i{n}" for n in range(30)]
    grades = {"i3": 2, "i0": 0, "i12": 3, "i40": 1, "i7": 1.5}
    m = column_metrics(ranking, grades)
    reference = evaluate_run({"q": {i: to_gain(g) for i, g in grades.items()}}, {"q": run_of(ranking)})
    assert m.ndcg10 == reference.per_query["ndcg10"][0]
    assert m.recall100 == reference.per_query["recall100"][0]
    assert m.mrr10 == reference.per_query["mrr10"][0]
    assert m.recall100 == pytest.approx(3 / 4)  # i40 is relevant and was not retrieved


def test_unjudged_share_counts_the_top_ten_only():
    ranking = [f"i{n}" for n in range(20)]
    m = column_metrics(ranking, {"i0": 1, "i1": 0, "i15": 3})
    assert m.unjudged10 == pytest.approx(0.8)
    assert m.judged_in_top == 2
    assert column_metrics(["a", "b"], {"a": 1}).unjudged10 == pytest.approx(0.5)


def test_a_query_without_a_relevant_judgment_is_unscored_not_zero():
    m = column_metrics(["a", "b"], {"a": 0})
    assert (m.ndcg10, m.recall100, m.mrr10) == (None, None, None)
    assert m.unjudged10 == pytest.approx(0.5)
    empty = column_metrics([], {"a": 2})
    assert empty.ndcg10 == 0.0 and empty.unjudged10 is None  # nothing found: a failure, scored 0


def test_the_run_keeps_the_order_of_the_ranking_whatever_the_scores_were():
    run = run_of(["z", "a", "m", "a"])
    assert sorted(run, key=lambda d: -run[d]) == ["z", "a", "m"]
    moved = column_metrics(["x", "y"], {"y": 3})
    assert moved.ndcg10 == pytest.approx(1 / math.log2(3))


def test_means_are_over_the_queries_that_have_the_metric():
    rows = [column_metrics(["a"], {"a": 3}), column_metrics(["a", "b"], {"b": 3}), column_metrics(["a"], {"a": 0})]
    means = mean_metrics(rows)
    assert means["ndcg10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert means["scored"] == 2 and means["queries"] == 3
    assert means["unjudged10"] == pytest.approx((0 + 0.5 + 0) / 3)
