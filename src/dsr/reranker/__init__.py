"""dsr.reranker: the Siamese pairwise re-ranker (DPR), its XGBoost baseline, and their training."""

from dsr.reranker.base import Candidate, Reranker
from dsr.reranker.features import NUMERIC_FEATURES, FeatureConfig, FeatureExtractor
from dsr.reranker.groups import RankGroup, click_histories, groups_from_judgments, groups_from_sessions
from dsr.reranker.load import load_reranker
from dsr.reranker.loss import PairwiseBCELoss
from dsr.reranker.pairs import PairReport, PositionBias, build_pairs
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, split_by_group, train_siamese
from dsr.reranker.xgb import XGBoostRanker, train_xgboost

__all__ = [
    "NUMERIC_FEATURES", "RANKER_SCHEDULE", "Candidate", "FeatureConfig", "FeatureExtractor", "PairReport",
    "PairwiseBCELoss", "PositionBias", "RankGroup", "Reranker", "SiameseRanker", "SiameseTrainConfig",
    "XGBoostRanker", "build_pairs", "click_histories", "groups_from_judgments", "groups_from_sessions",
    "load_reranker", "split_by_group", "train_siamese", "train_xgboost",
]
