"""The declared feature set: defaults for missing values, never NaN, price rank, user price level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsr.reranker.base import Candidate
from dsr.reranker.features import NUMERIC_DEFAULTS, NUMERIC_NAMES, FeatureConfig, FeatureExtractor


def col(name: str) -> int:
    return NUMERIC_NAMES.index(name)


def test_feature_names_are_declared_once_each():
    assert len(set(NUMERIC_NAMES)) == len(NUMERIC_NAMES)


def test_missing_and_garbage_catalog_values_take_the_declared_defaults_never_nan():
    rows = [
        {"id": "bare"},  # nothing but an id
        {"id": "nan", "title": None, "price": float("nan"), "popularity": "lots", "ctr": float("inf"),
         "rating": True},
        {"id": "neg", "title": "x", "price": -5, "review_count": None, "cvr": "0.1x"},
    ]
    cands = [Candidate(item=r, bm25=b, dsr=d) for r, b, d in
             zip(rows, [None, float("nan"), float("inf")], [float("-inf"), None, float("nan")], strict=True)]
    user = {"price_level": float("nan"), "recent_clicks": ["unknown-id", {"id": "x", "price": "?"}]}
    f = FeatureExtractor().extract("", cands, user)
    assert np.isfinite(f.numeric).all()
    assert f.numeric.dtype == np.float32
    for name in ("log_price", "has_price", "price_rank", "log_popularity", "ctr", "cvr", "rating",
                 "user_price_level", "has_user_price_level", "price_gap", "bm25", "has_bm25", "dsr", "has_dsr"):
        assert (f.numeric[:, col(name)] == NUMERIC_DEFAULTS[name]).all(), name


def test_price_rank_orders_the_candidates_by_price_and_user_price_level_comes_from_recent_clicks():
    catalog = {"c1": {"id": "c1", "price": math.e - 1}, "c2": {"id": "c2", "price": math.e**3 - 1}}
    cands = [Candidate(item={"id": i, "title": "t", "price": p}) for i, p in
             [("a", 30.0), ("b", 10.0), ("c", 20.0), ("d", None)]]
    f = FeatureExtractor(catalog=catalog).extract("q", cands, {"recent_clicks": ["c1", "c2"]})
    assert f.numeric[:, col("price_rank")].tolist() == [1.0, 0.0, 0.5, NUMERIC_DEFAULTS["price_rank"]]
    assert f.numeric[:, col("user_price_level")] == pytest.approx([2.0] * 4)  # mean of log1p prices 1 and 3
    assert f.numeric[0, col("price_gap")] == pytest.approx(abs(math.log1p(30.0) - 2.0))


def test_a_given_price_level_wins_over_the_click_history():
    f = FeatureExtractor().extract("q", [Candidate(item={"id": "a", "price": 5})],
                                   {"price_level": 1.5, "recent_clicks": [{"id": "x", "price": 1000}]})
    assert f.numeric[0, col("user_price_level")] == pytest.approx(1.5)


def test_first_stage_scores_and_cross_features():
    cands = [Candidate(item={"id": "a", "title": "cordless drill"}, bm25=4.0, dsr=0.5, fused_rank=0),
             Candidate(item={"id": "b", "title": "hammer", "brand": "drill co"}, bm25=2.0, fused_rank=3)]
    f = FeatureExtractor().extract("cordless drill", cands)
    assert f.numeric[:, col("bm25_rel")].tolist() == [1.0, 0.5]
    assert f.numeric[:, col("has_dsr")].tolist() == [1.0, 0.0]
    assert f.numeric[:, col("fused_rr")].tolist() == [1.0, 0.25]
    assert f.numeric[:, col("title_overlap")].tolist() == [1.0, 0.0]
    assert f.numeric[:, col("text_overlap")].tolist() == [1.0, 0.5]


def test_text_and_click_ids_are_padded_to_fixed_widths():
    cfg = FeatureConfig(buckets=1000, query_len=4, item_len=3, click_depth=2)
    ext = FeatureExtractor(cfg)
    user = {"recent_clicks": [{"id": "x", "title": "a b c d e"}, {"id": "y", "title": "f"}, {"id": "z"}]}
    f = ext.extract("one two three four five", [Candidate(item={"id": "a", "title": "red drill"})], user)
    assert f.query_ids.shape == (4,) and (f.query_ids > 0).all()
    assert f.item_ids.shape == (1, 4)
    assert (f.item_ids[0, :3] > 0).all() and f.item_ids[0, 3] == 0  # red, drill, "red drill", padding
    with_id = FeatureExtractor(FeatureConfig(buckets=1000, item_len=3, item_id_hash=True))
    assert (with_id.extract("q", [Candidate(item={"id": "a", "title": "red drill"})]).item_ids > 0).all()
    assert f.click_ids.shape == (6,)
    assert (f.click_ids[:4] > 0).all() and (f.click_ids[4:] == 0).all()  # 3 ids of x, 1 of y, padding


def test_a_numeric_subset_is_declared_by_name():
    ext = FeatureExtractor(FeatureConfig(numeric=("bm25", "log_price")))
    f = ext.extract("q", [Candidate(item={"id": "a", "price": 9}, bm25=2.0)])
    assert f.numeric.tolist() == [[2.0, pytest.approx(math.log(10))]]
    with pytest.raises(ValueError, match="unknown numeric features"):
        FeatureExtractor(FeatureConfig(numeric=("bogus",)))


def test_feature_config_round_trips_through_its_config_dict():
    cfg = FeatureConfig(buckets=512, numeric=("bm25",))
    assert FeatureConfig.from_config(cfg.to_config()) == cfg


def test_click_stream_cross_features_measure_overlap_with_the_recent_clicks():
    recent = [{"id": "x", "title": "red drill", "brand": "Acme"}, {"id": "y", "title": "saw", "brand": "Bosch"}]
    cands = [Candidate(item={"id": "a", "title": "red drill", "brand": "Acme"}),
             Candidate(item={"id": "b", "title": "blue hammer", "brand": "Other"})]
    f = FeatureExtractor().extract("drill", cands, {"recent_clicks": recent})
    # a: tokens red, drill, acme all seen; half the clicks are Acme. b: nothing in common.
    assert f.click_cross.tolist() == [[1.0, 0.5], [0.0, 0.0]]
    assert FeatureExtractor().extract("drill", cands).click_cross.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_numbers_written_as_strings_count_and_the_first_usable_popularity_field_wins():
    cands = [Candidate(item={"id": "a", "price": "12.5", "popularity": "n/a", "sales": "40", "review_count": 7}),
             Candidate(item={"id": "b", "price": 3, "popularity": -2, "sales": 99})]
    f = FeatureExtractor().extract("q", cands)
    assert f.numeric[:, col("log_price")] == pytest.approx([math.log1p(12.5), math.log1p(3)])
    assert f.numeric[:, col("price_rank")].tolist() == [1.0, 0.0]
    # a: "n/a" is skipped, sales is the first number; b: -2 is a number but not a usable popularity
    assert f.numeric[:, col("log_popularity")] == pytest.approx([math.log1p(40), 0.0])
    assert f.numeric[:, col("has_popularity")].tolist() == [1.0, 0.0]


def test_item_fields_name_everything_the_extractor_reads_so_a_record_can_stand_in_for_the_source():
    config = FeatureConfig(item_id_hash=True)
    full = [{"id": f"p{i}", "title": f"red sneakers {i}", "brand": "acme", "category": "Shoes > Sneakers",
             "price": 10.0 + i, "sales": 5 * i, "review_average": 4.5, "ctr": 0.1, "cvr": 0.01,
             "description": "long text the ranker never reads", "color": "red", "stock": 3} for i in range(6)]
    recorded = [{"id": it["id"], **{f: it[f] for f in config.item_fields if f in it}} for it in full]
    assert all("description" not in r and "stock" not in r for r in recorded)
    extractor = FeatureExtractor(config)
    user = {"recent_clicks": [full[0], full[3]]}

    def extract(items):
        cands = [Candidate(item=it, bm25=float(i), dsr=0.5, fused_rank=i) for i, it in enumerate(items)]
        return extractor.extract("red sneakers", cands, user)

    a, b = extract(full), extract(recorded)
    for name in ("numeric", "query_ids", "item_ids", "click_ids", "click_cross"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_each_side_ranks_the_candidates_by_its_own_score_and_the_unscored_come_last():
    cands = [Candidate(item={"id": "a"}, bm25=2.0, dsr=0.1), Candidate(item={"id": "b"}, bm25=None, dsr=0.9),
             Candidate(item={"id": "c"}, bm25=8.0, dsr=None), Candidate(item={"id": "d"}, bm25=2.0, dsr=0.5)]
    x = FeatureExtractor().extract("q", cands).numeric
    assert np.expm1(x[:, col("log_bm25_rank")]).round().tolist() == [1, 3, 0, 1]  # ties share a rank
    assert np.expm1(x[:, col("log_dsr_rank")]).round().tolist() == [2, 0, 3, 1]
    assert x[:, col("dsr_gap")].tolist() == pytest.approx([0.8, 0.0, 0.8, 0.4])  # the unknown: the widest gap
    assert x[1, col("bm25_z")] == 0.0 and x[2, col("dsr_z")] == 0.0
    assert x[2, col("bm25_z")] > 0 > x[0, col("bm25_z")]
    assert x[:, col("dsr_z")][[0, 1, 3]].mean() == pytest.approx(0.0, abs=1e-6)


def test_sales_rank_is_read_and_orders_popularity_among_the_candidates():
    rows = [{"id": "a", "sales_rank_long_term": "40"}, {"id": "b", "sales_rank": 3}, {"id": "c"},
            {"id": "d", "sales_rank": 1000, "popularity": 5}]
    x = FeatureExtractor().extract("q", [Candidate(item=r) for r in rows]).numeric
    assert x[:, col("has_sales_rank")].tolist() == [1, 1, 0, 1]
    assert x[0, col("log_sales_rank")] == pytest.approx(math.log1p(40))
    assert x[:, col("popularity_rank")].tolist() == pytest.approx([0.5, 0.0, NUMERIC_DEFAULTS["popularity_rank"], 1.0])
    by_popularity = [{"id": "a", "popularity": 10}, {"id": "b", "popularity": 99}, {"id": "c", "popularity": 1}]
    y = FeatureExtractor().extract("q", [Candidate(item=r) for r in by_popularity]).numeric
    assert y[:, col("popularity_rank")].tolist() == pytest.approx([0.5, 0.0, 1.0])


def test_a_candidate_the_user_clicked_before_is_flagged_and_the_history_length_is_a_feature():
    catalog = {"a": {"id": "a", "title": "halo"}, "b": {"id": "b", "title": "forza"}}
    cands = [Candidate(item=catalog["a"]), Candidate(item=catalog["b"])]
    ex = FeatureExtractor(catalog=catalog)
    x = ex.extract("q", cands, {"recent_clicks": ["b", "z"]}).numeric
    assert x[:, col("clicked_before")].tolist() == [0.0, 1.0]
    assert x[:, col("log_history")].tolist() == pytest.approx([math.log1p(2)] * 2)
    none = ex.extract("q", cands, None).numeric
    assert none[:, col("clicked_before")].tolist() == [0.0, 0.0] and none[0, col("log_history")] == 0.0


def test_a_model_saved_with_the_earlier_feature_list_extracts_exactly_those_columns():
    earlier = NUMERIC_NAMES[:20]
    cfg = FeatureConfig.from_config({**FeatureConfig().to_config(), "numeric": list(earlier)})
    x = FeatureExtractor(cfg).extract("q", [Candidate(item={"id": "a", "price": 3}, bm25=1.0)]).numeric
    full = FeatureExtractor().extract("q", [Candidate(item={"id": "a", "price": 3}, bm25=1.0)]).numeric
    assert x.shape == (1, 20) and np.array_equal(x[0], full[0, :20])
