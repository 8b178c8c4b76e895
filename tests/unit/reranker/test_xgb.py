"""The XGBoost baseline: pairwise boosting on the declared numeric features, and going on from a trained one."""

from __future__ import annotations

import numpy as np
import pytest

from dsr.errors import InputError
from dsr.reranker.features import NUMERIC_NAMES, FeatureConfig, FeatureExtractor
from dsr.reranker.xgb import XGBoostRanker, train_xgboost


def test_a_booster_goes_on_from_a_trained_one_keeping_its_trees(synthetic_groups, tmp_path):
    catalog, train, test = synthetic_groups
    extractor = FeatureExtractor(FeatureConfig(), catalog)
    first, _ = train_xgboost(train[:300], [], extractor, n_estimators=5, threads=1)
    first.save(tmp_path / "first")
    start = XGBoostRanker.load(tmp_path / "first", catalog=catalog)
    more, _ = train_xgboost(train[300:600], [], extractor, n_estimators=5, threads=1, init=start)
    assert first.booster.num_boosted_rounds() == 5 and more.booster.num_boosted_rounds() == 10
    group = test[0]
    assert not np.allclose(more.score(group.query, group.candidates, group.user),
                           first.score(group.query, group.candidates, group.user))
    assert start.booster.num_boosted_rounds() == 5  # the starting model itself is left as it was


def test_going_on_from_a_booster_of_other_features_is_refused(synthetic_groups):
    catalog, train, _ = synthetic_groups
    fewer = FeatureExtractor(FeatureConfig(numeric=NUMERIC_NAMES[:10]), catalog)
    start, _ = train_xgboost(train[:100], [], fewer, n_estimators=2, threads=1)
    with pytest.raises(InputError, match="other features"):
        train_xgboost(train[:100], [], FeatureExtractor(FeatureConfig(), catalog), n_estimators=2, init=start)
