"""The served single tower is the Siamese training tower; models survive save/load unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dsr.errors import ModelFormatError
from dsr.reranker.base import Candidate, Reranker
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.loss import PairwiseBCELoss
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.table import FeatureTable
from dsr.reranker.tower import RankerTower, TowerConfig
from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, score_table, train_siamese
from dsr.reranker.xgb import XGBoostRanker, train_xgboost

SMALL = FeatureConfig(buckets=1 << 12)


def small_ranker(catalog, use_text=True) -> SiameseRanker:
    torch.manual_seed(0)
    ext = FeatureExtractor(SMALL, catalog)
    tower = RankerTower(TowerConfig(n_numeric=len(SMALL.numeric), use_text=use_text, buckets=SMALL.buckets,
                                    dim=8, hidden=(16, 8, 4)))
    return SiameseRanker(ext, tower)


def test_the_tower_has_three_relu_layers_and_one_logit():
    tower = RankerTower(TowerConfig(n_numeric=3, use_text=False))
    layers = list(tower.mlp)
    assert sum(isinstance(m, torch.nn.ReLU) for m in layers) == 3
    assert layers[-1].out_features == 1


def test_pairwise_loss_is_bce_on_the_logit_difference_with_weights():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    expected = torch.log1p(torch.exp(-(a - b)))
    loss = PairwiseBCELoss()
    assert loss(a, b) == pytest.approx(expected.mean().item())
    w = torch.tensor([3.0, 1.0])
    assert loss(a, b, weights=w) == pytest.approx(((expected * w).sum() / w.sum()).item())


def test_serving_scores_equal_the_training_towers_logits(synthetic_groups):
    catalog, train, _ = synthetic_groups
    ranker = small_ranker(catalog)
    groups = train[:20]
    table = FeatureTable.build(groups, ranker.extractor)
    training_logits = table.group_scores(score_table(ranker.tower, table))
    for g, expected in zip(groups, training_logits, strict=True):
        served = ranker.score(g.query, g.candidates, g.user)
        assert served.dtype == np.float32 and served.shape == (len(g.candidates),)
        np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)
    # the Siamese step applies the same module to both sides: its difference is served(a) - served(b)
    g = groups[0]
    a, b, _ = g.pairs[0]
    served = ranker.score(g.query, g.candidates, g.user)
    rows = table.pair_rows[:1].reshape(-1)
    ranker.tower.eval()
    with torch.no_grad():
        pair_logits = ranker.tower(*table.rows(rows))
    assert float(pair_logits[0] - pair_logits[1]) == pytest.approx(float(served[a] - served[b]), abs=1e-5)


def test_siamese_save_load_round_trip_gives_identical_scores(synthetic_groups, tmp_path):
    catalog, train, _ = synthetic_groups
    ranker = small_ranker(catalog)
    ranker.save(tmp_path / "m")
    loaded = SiameseRanker.load(tmp_path / "m", catalog=catalog)
    assert isinstance(loaded, Reranker)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["kind"] == "dsr.siamese_ranker" and cfg["format_version"] == 1
    assert not list((tmp_path / "m").glob("*.pkl")) and not list((tmp_path / "m").glob("*.pt"))
    for g in train[:5]:
        np.testing.assert_array_equal(ranker.score(g.query, g.candidates, g.user),
                                      loaded.score(g.query, g.candidates, g.user))


def test_loading_the_wrong_kind_or_a_newer_version_is_a_clear_error(synthetic_groups, tmp_path):
    catalog, _, _ = synthetic_groups
    small_ranker(catalog).save(tmp_path / "m")
    with pytest.raises(ModelFormatError, match=r"expected 'dsr\.xgboost_ranker'"):
        XGBoostRanker.load(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(ModelFormatError, match="format version 99"):
        SiameseRanker.load(tmp_path / "m")


def test_xgboost_baseline_saves_in_its_own_json_format_and_round_trips(synthetic_groups, tmp_path):
    catalog, train, test = synthetic_groups
    ext = FeatureExtractor(SMALL, catalog)
    ranker, summary = train_xgboost(train[:300], train[300:400], ext, n_estimators=20)
    assert summary["rounds"] >= 1
    ranker.save(tmp_path / "x")
    booster = json.loads((tmp_path / "x" / "xgboost.json").read_text())
    assert "learner" in booster
    loaded = XGBoostRanker.load(tmp_path / "x", catalog=catalog)
    g = test[0]
    np.testing.assert_array_equal(ranker.score(g.query, g.candidates, g.user),
                                  loaded.score(g.query, g.candidates, g.user))
    assert isinstance(loaded, Reranker)
    # numeric features only: a title that changes no numeric feature does not change the score
    renamed = [Candidate(item={**c.item, "title": "zzz " + str(c.item["title"])}, bm25=c.bm25,
                         fused_rank=c.fused_rank) for c in g.candidates]
    np.testing.assert_array_equal(loaded.score("", renamed, g.user), loaded.score("", g.candidates, g.user))


def test_train_summary_records_early_stopping(synthetic_groups):
    catalog, train, _ = synthetic_groups
    ext = FeatureExtractor(SMALL, catalog)
    _, summary = train_siamese(train[:200], train[200:300], ext, SiameseTrainConfig(
        schedule=RANKER_SCHEDULE.replace(epochs=3, patience=1, progress=False), use_text=False, dim=8,
        hidden=(16, 8, 4)))
    assert 1 <= summary.best_epoch <= summary.epochs_run <= 3
    assert "session_auc" in summary.best_val
