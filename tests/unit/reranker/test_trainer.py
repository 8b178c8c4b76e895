"""A short Siamese training run on synthetic sessions beats the first stage's order."""

from __future__ import annotations

import numpy as np

from dsr.eval.session_metrics import mean_over_groups
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, split_by_group, train_siamese


def test_short_training_beats_the_first_stage_order_on_later_sessions(synthetic_groups):
    catalog, groups, test = synthetic_groups
    train, val = split_by_group(groups, 0.1, seed=0)
    assert {g.group_id for g in train}.isdisjoint({g.group_id for g in val})
    ext = FeatureExtractor(FeatureConfig(buckets=1 << 14), catalog)
    ranker, summary = train_siamese(train, val, ext, SiameseTrainConfig(
        schedule=RANKER_SCHEDULE.replace(epochs=2, patience=1, progress=False, seed=0), dim=16, hidden=(64, 32, 16)))
    labels = [g.labels for g in test]
    first = mean_over_groups([-np.array([c.fused_rank for c in g.candidates], float) for g in test], labels)
    learned = mean_over_groups([ranker.score(g.query, g.candidates, g.user) for g in test], labels)
    assert learned["session_auc"] > first["session_auc"], (learned, first, summary.history)
