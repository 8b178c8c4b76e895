"""Feature extraction for the two towers.

Text becomes hashed unigram + bigram ids (a fixed-size model that maps unseen words to stable
buckets); brand and category levels become hashed categorical ids; price and popularity fields become
log-scaled numbers standardised with statistics fitted on the catalog (stored in the model config so
serving normalises exactly like training). For personalisation (DPSR) the query side also gets the
user's segment and recently clicked items, hashed.

Featurisers return plain numpy/python structures; `Bag` packs variable-length id lists into the
(flat ids, offsets) pair that `nn.EmbeddingBag` wants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from dsr.catalog import Item, category_levels, item_text, numeric_field
from dsr.encoders.base import UserContext
from dsr.text import hashed_ngram_ids, stable_hash

CATEGORY_SLOTS = ("brand", "level1", "level2", "level3")


@dataclass(frozen=True)
class FeatureConfig:
    text_buckets: int = 1 << 16
    text_dim: int = 64
    pooling: str = "mean"  # "mean" or "sum" pooled n-gram embeddings
    bigrams: bool = True
    cat_buckets: int = 1 << 12
    cat_dim: int = 16
    numeric_fields: tuple[str, ...] = ("price", "popularity", "ctr")
    numeric_mean: tuple[float, ...] = ()
    numeric_std: tuple[float, ...] = ()
    use_user: bool = False
    segment_buckets: int = 64
    segment_dim: int = 8
    click_buckets: int = 1 << 14
    click_dim: int = 32
    backbone: str | None = None  # "minilm": a frozen sentence embedding is one more tower input
    backbone_dim: int = 0
    backbone_tuned: bool = False  # the backbone's own weights were fine-tuned: they live in the model dir

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "sum"):
            raise ValueError("pooling must be 'mean' or 'sum'")

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> FeatureConfig:
        known = {f for f in cls.__dataclass_fields__}
        args: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in known}
        return cls(**args)


def fit_numeric(items: Sequence[Item], fields: Sequence[str]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of log1p(max(x, 0)) per numeric field over the catalog."""
    if not items or not fields:
        return tuple(0.0 for _ in fields), tuple(1.0 for _ in fields)
    raw = np.log1p(np.maximum(np.array([[numeric_field(it, f) for f in fields] for it in items]), 0.0))
    std = raw.std(axis=0)
    std[std < 1e-6] = 1.0
    return tuple(map(float, raw.mean(axis=0))), tuple(map(float, std))


def item_feature_text(item: Item) -> str:
    desc = item.get("description")
    return item_text(item) + (f" {desc}" if isinstance(desc, str) and desc else "")


@dataclass
class ItemFeatures:
    text_ids: list[list[int]]
    cat_ids: np.ndarray  # (n, len(CATEGORY_SLOTS)) int64
    numeric: np.ndarray  # (n, len(numeric_fields)) float32
    backbone: np.ndarray | None = None  # (n, backbone_dim) float32


@dataclass
class QueryFeatures:
    text_ids: list[list[int]]
    segment_ids: np.ndarray | None = None  # (n,) int64
    click_ids: list[list[int]] | None = None
    backbone: np.ndarray | None = None


@dataclass
class Featurizer:
    config: FeatureConfig
    _cache: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def text_ids(self, text: str, salt: str = "") -> list[int]:
        return hashed_ngram_ids(text, self.config.text_buckets, bigrams=self.config.bigrams, salt=salt)

    def items(self, items: Sequence[Item], backbone: np.ndarray | None = None) -> ItemFeatures:
        cfg = self.config
        text = [self.text_ids(item_feature_text(it)) for it in items]
        cats = np.zeros((len(items), len(CATEGORY_SLOTS)), np.int64)
        for r, it in enumerate(items):
            levels = category_levels(it)
            brand = str(it.get("brand") or "")
            paths = (" > ".join(levels[: k + 1]).lower() if len(levels) > k else "" for k in range(3))
            values = [brand.lower(), *paths]
            for c, (slot, v) in enumerate(zip(CATEGORY_SLOTS, values, strict=True)):
                cats[r, c] = stable_hash(f"{slot}:{v}", cfg.cat_buckets) if v else 0
        if cfg.numeric_fields:
            raw = np.array([[numeric_field(it, f) for f in cfg.numeric_fields] for it in items], np.float64)
            raw = np.log1p(np.maximum(raw.reshape(len(items), -1), 0.0))
            mean = np.array(cfg.numeric_mean or [0.0] * len(cfg.numeric_fields))
            std = np.array(cfg.numeric_std or [1.0] * len(cfg.numeric_fields))
            numeric = ((raw - mean) / std).astype(np.float32)
        else:
            numeric = np.zeros((len(items), 0), np.float32)
        return ItemFeatures(text, cats, numeric, backbone)

    def queries(self, texts: Sequence[str], users: Sequence[UserContext | None] | None = None,
                backbone: np.ndarray | None = None) -> QueryFeatures:
        cfg = self.config
        text = [self.text_ids(t) for t in texts]
        seg = clicks = None
        if cfg.use_user:
            users = users or [None] * len(texts)
            seg = np.zeros(len(texts), np.int64)
            clicks = []
            for r, u in enumerate(users):
                s = (u or {}).get("segment")
                seg[r] = stable_hash(f"segment:{s}", cfg.segment_buckets) if s else 0
                recent = (u or {}).get("recent_clicks") or ()
                clicks.append([stable_hash(f"item:{i}", cfg.click_buckets) for i in recent])
        return QueryFeatures(text, seg, clicks, backbone)


def bag(id_lists: Sequence[Sequence[int]], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(flat ids, offsets) for nn.EmbeddingBag; an empty list becomes the padding id 0."""
    lists = [ids if len(ids) else [0] for ids in id_lists]
    lengths = np.fromiter((len(x) for x in lists), np.int64, len(lists))
    offsets = np.zeros(len(lists), np.int64)
    if len(lists) > 1:
        offsets[1:] = np.cumsum(lengths[:-1])
    flat = np.fromiter((i for ids in lists for i in ids), np.int64, int(lengths.sum()))
    return torch.from_numpy(flat).to(device), torch.from_numpy(offsets).to(device)
