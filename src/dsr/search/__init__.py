"""dsr.search: the query pipeline — term side, vector side, fusion, re-ranking — over the parts.

It is handed a backend, an encoder, a vector source and a ranker, and owns nothing that starts a
server or trains a model.
"""

from dsr.search.engine_vectors import EngineVectors
from dsr.search.fusion import FusionConfig, FusionMode, Normalization, fuse
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchDefaults, SearchRequest
from dsr.search.result import HybridHit, HybridResult, StageScore

__all__ = [
    "EngineVectors",
    "FusionConfig",
    "FusionMode",
    "HybridHit",
    "HybridResult",
    "HybridSearcher",
    "Normalization",
    "SearchDefaults",
    "SearchRequest",
    "StageScore",
    "fuse",
]
