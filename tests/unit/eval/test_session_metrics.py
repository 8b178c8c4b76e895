"""Session AUC and NDCG@k on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from dsr.eval.session_metrics import mean_over_groups, ndcg_at_k, session_auc


def test_session_auc_counts_correctly_ordered_preferred_pairs():
    # preferred: x (label 1); others y, z (0). Scores put x above y but below z.
    assert session_auc([0.5, 0.1, 0.9], [1, 0, 0]) == 0.5
    assert session_auc([3, 2, 1], [2, 1, 0]) == 1.0
    assert session_auc([1, 2, 3], [2, 1, 0]) == 0.0


def test_session_auc_ties_count_half_and_no_pair_is_undefined():
    assert session_auc([1.0, 1.0], [1, 0]) == 0.5
    assert session_auc([1.0, 2.0], [0, 0]) is None


def test_ndcg_at_k_with_linear_gains():
    # order by score: b (gain 0), a (gain 1); ideal: a first
    expected = (1 / math.log2(3)) / 1.0
    assert ndcg_at_k([0.1, 0.9], [1, 0], k=5) == pytest.approx(expected)
    assert ndcg_at_k([0.9, 0.1], [1, 0], k=5) == 1.0
    assert ndcg_at_k([0.9, 0.1], [0, 0], k=5) is None
    assert ndcg_at_k([0.3, 0.2, 0.1], [0, 0, 3], k=2) == 0.0


def test_mean_over_groups_skips_groups_where_a_metric_is_undefined():
    out = mean_over_groups([[2, 1], [1, 2], [1, 1]], [[1, 0], [1, 0], [0, 0]], k=(5,))
    assert out["session_auc"] == 0.5 and out["groups"] == 2
    assert out["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
