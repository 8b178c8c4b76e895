"""dsr.search: the query pipeline — term side, vector side, fusion, re-ranking — over the parts.

It is handed a backend, an encoder, a vector index and a ranker, and owns nothing that starts a
server or trains a model.
"""

from dsr.search.fusion import FusionConfig, FusionMode, Normalization, fuse
from dsr.search.hybrid import HybridHit, HybridResult, HybridSearcher, StageScore

__all__ = [
    "FusionConfig",
    "FusionMode",
    "HybridHit",
    "HybridResult",
    "HybridSearcher",
    "Normalization",
    "StageScore",
    "fuse",
]
