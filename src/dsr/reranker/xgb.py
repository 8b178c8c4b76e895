"""The DPR baseline: XGBoost with a pairwise ranking objective on the numeric features only.

Saved as a dsr model directory whose weights live in XGBoost's own JSON format (`xgboost.json`,
no pickle); `config.json` records the feature config so serving extracts the same columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from dsr.catalog import Item
from dsr.errors import InputError, ModelFormatError
from dsr.modelio import read_config, save_model_dir
from dsr.reranker.base import Candidate
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.groups import RankGroup

KIND = "dsr.xgboost_ranker"
FORMAT_VERSION = 1
BOOSTER_FILE = "xgboost.json"


class XGBoostRanker:
    """Implements `Reranker` with a boosted-tree model over the declared numeric features."""

    def __init__(self, extractor: FeatureExtractor, booster: xgb.Booster):
        self.extractor = extractor
        self.booster = booster

    @property
    def item_fields(self) -> tuple[str, ...]:
        """The catalog fields this ranker reads from a candidate (a record holding them can stand in)."""
        return self.extractor.config.item_fields

    def score(self, query: str, candidates: Sequence[Candidate],
              user: Mapping[str, Any] | None = None) -> np.ndarray:
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        recent = self.extractor.recent_items(user)
        x = self.extractor.numeric(query, candidates, user, recent)
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float32)

    def save(self, directory: Path | str, *, extra: Mapping[str, Any] | None = None) -> Path:
        raw = self.booster.save_raw(raw_format="json")
        return save_model_dir(directory, kind=KIND, format_version=FORMAT_VERSION,
                              config={"features": self.extractor.config.to_config(), **(extra or {})},
                              state_dict={}, extra_files={BOOSTER_FILE: bytes(raw)})

    @classmethod
    def load(cls, directory: Path | str, *, catalog: Mapping[str, Item] | None = None) -> XGBoostRanker:
        cfg = read_config(directory, kind=KIND, supported_versions=(FORMAT_VERSION,))
        path = Path(directory) / BOOSTER_FILE
        if not path.is_file():
            raise ModelFormatError(f"{directory}: missing {BOOSTER_FILE}")
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as e:
            raise ModelFormatError(f"{path}: unreadable XGBoost model ({str(e).splitlines()[0]})") from None
        return cls(FeatureExtractor(FeatureConfig.from_config(cfg["features"]), catalog), booster)


def _matrix(groups: Sequence[RankGroup], extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, qid = [], [], []
    for g, group in enumerate(groups):
        recent = extractor.recent_items(group.user)
        xs.append(extractor.numeric(group.query, group.candidates, group.user, recent))
        ys.append(np.asarray(group.labels, dtype=np.float64))
        qid.append(np.full(len(group.candidates), g))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(qid)


def _ordinal(labels: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Labels as integer levels (XGBoost's ranking metrics want ints); the order is all that matters."""
    return np.searchsorted(levels, labels).astype(np.int32)


def train_xgboost(
    train_groups: Sequence[RankGroup],
    val_groups: Sequence[RankGroup],
    extractor: FeatureExtractor,
    *,
    n_estimators: int = 500,
    learning_rate: float = 0.1,
    max_depth: int = 6,
    early_stopping_rounds: int = 30,
    seed: int = 0,
    threads: int = 2,
    init: XGBoostRanker | None = None,
) -> tuple[XGBoostRanker, dict[str, Any]]:
    """A pairwise booster on the groups; with `init`, its trees are kept and more are boosted on these groups."""
    if init is not None and tuple(init.extractor.config.numeric) != tuple(extractor.config.numeric):
        raise InputError("the XGBoost ranker to go on from reads other features than this training extracts")
    x, y, q = _matrix(train_groups, extractor)
    levels = np.unique(np.concatenate([y] + [np.asarray(g.labels) for g in val_groups]))
    dtrain = xgb.DMatrix(x, label=_ordinal(y, levels), qid=q, feature_names=list(extractor.config.numeric))
    evals = [(dtrain, "train")]
    if val_groups:
        xv, yv, qv = _matrix(val_groups, extractor)
        evals.append((xgb.DMatrix(xv, label=_ordinal(yv, levels), qid=qv,
                                  feature_names=list(extractor.config.numeric)), "val"))
    params = {"objective": "rank:pairwise", "eta": learning_rate, "max_depth": max_depth,
              "eval_metric": "ndcg@5", "tree_method": "hist", "seed": seed, "nthread": threads}
    result: dict[str, Any] = {}
    booster = xgb.train(params, dtrain, num_boost_round=n_estimators, evals=evals, evals_result=result,
                        early_stopping_rounds=early_stopping_rounds if val_groups else None,
                        verbose_eval=False, xgb_model=init.booster.copy() if init is not None else None)
    if val_groups:
        booster = booster[: booster.best_iteration + 1]
    summary = {"rounds": booster.num_boosted_rounds(),
               "best_val_ndcg@5": float(max(result["val"]["ndcg@5"])) if val_groups else None}
    return XGBoostRanker(extractor, booster), summary
