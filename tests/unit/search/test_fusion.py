"""Fusion: RRF and normalised linear combination over ranked lists, with de-duplication."""

from __future__ import annotations

import math

import pytest

from dsr.search.fusion import (
    FUSERS,
    FusionConfig,
    FusionMode,
    Normalization,
    dedupe,
    fuse,
    linear_combination,
    normalize,
    reciprocal_rank_fusion,
)

TERM = [("a", 12.0), ("b", 9.0), ("c", 3.0)]
VECTOR = [("c", 0.9), ("d", 0.8), ("a", 0.1)]


def test_every_mode_has_a_fuser():
    assert set(FUSERS) == set(FusionMode)


def test_rrf_sums_reciprocal_ranks_with_k():
    fused = reciprocal_rank_fusion({"term": TERM, "vector": VECTOR}, FusionConfig(rrf_k=60))
    scores = {f.id: f.score for f in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["d"] == pytest.approx(1 / 62)
    # a and c tie; the tie keeps first appearance (a came first in the term list)
    assert [f.id for f in fused] == ["a", "c", "b", "d"]


def test_rrf_k_changes_how_much_the_head_counts():
    lists = {"term": [("x", 1.0), ("y", 0.5)], "vector": [("y", 1.0), ("z", 0.5), ("w", 0.1), ("x", 0.0)]}
    small_k = [f.id for f in reciprocal_rank_fusion(lists, FusionConfig(rrf_k=1))]
    assert small_k[0] == "y"  # 1/3 + 1/2 beats 1/2 + 1/5
    big = reciprocal_rank_fusion(lists, FusionConfig(rrf_k=1000))
    assert big[0].id == "y"
    assert big[0].score - big[1].score < 1e-5  # a big k flattens the differences


def test_rrf_weights_scale_each_stage():
    fused = reciprocal_rank_fusion({"term": TERM, "vector": VECTOR},
                                   FusionConfig(rrf_k=60, weights={"term": 0.0, "vector": 1.0}))
    assert [f.id for f in fused][:2] == ["c", "d"]


def test_stage_scores_and_ranks_are_kept_per_id():
    fused = {f.id: f for f in fuse({"term": TERM, "vector": VECTOR})}
    assert fused["a"].stage_scores == {"term": 12.0, "vector": 0.1}
    assert fused["a"].stage_ranks == {"term": 1, "vector": 3}
    assert fused["d"].stage_scores == {"vector": 0.8}
    assert fused["d"].stage_ranks == {"vector": 2}


def test_duplicates_within_a_list_keep_the_best_occurrence():
    assert dedupe([("a", 3.0), ("b", 2.0), ("a", 1.0)]) == [("a", 3.0), ("b", 2.0)]
    fused = fuse({"term": [("a", 3.0), ("a", 2.0), ("b", 1.0)], "vector": []})
    assert [f.id for f in fused] == ["a", "b"]
    assert fused[1].stage_ranks == {"term": 2}  # ranks count after de-duplication


def test_min_max_maps_to_unit_interval_and_constant_lists_to_one():
    assert normalize([10.0, 5.0, 0.0], Normalization.MIN_MAX) == [1.0, 0.5, 0.0]
    assert normalize([4.0, 4.0], "min_max") == [1.0, 1.0]
    assert normalize([], "min_max") == []


def test_z_score_centres_and_scales():
    z = normalize([1.0, 2.0, 3.0], Normalization.Z_SCORE)
    assert sum(z) == pytest.approx(0.0)
    assert z[2] == pytest.approx(math.sqrt(1.5))
    assert normalize([7.0, 7.0], "z_score") == [0.0, 0.0]


def test_linear_min_max_is_the_weighted_mean_of_normalised_scores():
    cfg = FusionConfig(FusionMode.LINEAR, normalization=Normalization.MIN_MAX,
                       weights={"term": 0.3, "vector": 0.7})
    fused = {f.id: f.score for f in linear_combination({"term": TERM, "vector": VECTOR}, cfg)}
    # term: a=1, b=6/9, c=0 ; vector: c=1, d=0.875, a=0 ; missing -> the list's floor (0)
    assert fused["a"] == pytest.approx(0.3 * 1.0 + 0.7 * 0.0)
    assert fused["b"] == pytest.approx(0.3 * (6 / 9) + 0.7 * 0.0)
    assert fused["c"] == pytest.approx(0.3 * 0.0 + 0.7 * 1.0)
    assert fused["d"] == pytest.approx(0.3 * 0.0 + 0.7 * 0.875)


def test_linear_z_score_gives_missing_documents_the_lists_lowest_score():
    cfg = FusionConfig(FusionMode.LINEAR, normalization=Normalization.Z_SCORE)
    fused = {f.id: f.score for f in fuse({"term": TERM, "vector": VECTOR}, cfg)}
    zt = dict(zip("abc", normalize([12.0, 9.0, 3.0], "z_score"), strict=True))
    zv = dict(zip("cda", normalize([0.9, 0.8, 0.1], "z_score"), strict=True))
    assert fused["b"] == pytest.approx((zt["b"] + min(zv.values())) / 2)
    assert fused["d"] == pytest.approx((min(zt.values()) + zv["d"]) / 2)


def test_linear_scale_invariance_bm25_magnitudes_do_not_swamp_the_vector_side():
    huge_term = [(i, s * 1000) for i, s in TERM]
    a = [f.id for f in fuse({"term": TERM, "vector": VECTOR}, FusionConfig(FusionMode.LINEAR))]
    b = [f.id for f in fuse({"term": huge_term, "vector": VECTOR}, FusionConfig(FusionMode.LINEAR))]
    assert a == b


def test_empty_inputs_fuse_to_nothing_and_one_sided_input_keeps_its_order():
    assert fuse({"term": [], "vector": []}) == []
    for mode in FusionMode:
        assert [f.id for f in fuse({"term": TERM, "vector": []}, FusionConfig(mode))] == ["a", "b", "c"]


@pytest.mark.parametrize("bad", [{"rrf_k": 0}, {"weights": {"term": -1.0}},
                                 {"weights": {"term": 0.0, "vector": 0.0}}, {"mode": "borda"},
                                 {"normalization": "l2"}, {"weights": {"term": float("nan")}}])
def test_invalid_configs_are_rejected(bad):
    with pytest.raises(ValueError):
        FusionConfig(**bad)


def test_config_round_trips():
    cfg = FusionConfig(FusionMode.LINEAR, 10, Normalization.Z_SCORE, {"term": 2.0})
    assert FusionConfig.from_config(cfg.to_config()) == cfg
