"""The DSR towers, as in the paper: an input layer concatenating the features, a multi-layer ReLU
encoder, and an L2-normalisation layer, so relevance is a dot product. The query and item towers are
separate modules with separate weights.

With a backbone (a frozen sentence embedding fed in as one more input) the towers become trainable
heads; `residual=True` then adds the backbone vector to the encoder output before the normalisation,
with the last layer initialised to zero, so training starts from the backbone's own ranking and
learns a correction (it can only move away from it where the training data says so).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dsr.encoders.features import CATEGORY_SLOTS, FeatureConfig, ItemFeatures, QueryFeatures, bag


class ReluEncoder(nn.Module):
    """concat features -> (Linear, ReLU) x len(hidden) -> Linear(out_dim)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, *, zero_last: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_dim
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        last = nn.Linear(prev, out_dim)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _text_bag(cfg: FeatureConfig) -> nn.EmbeddingBag:
    emb = nn.EmbeddingBag(cfg.text_buckets, cfg.text_dim, mode=cfg.pooling, padding_idx=0)
    nn.init.normal_(emb.weight, std=0.1)
    with torch.no_grad():
        emb.weight[0].zero_()
    return emb


class QueryTower(nn.Module):
    def __init__(self, cfg: FeatureConfig, hidden: Sequence[int], out_dim: int, *, residual: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.residual = residual
        self.text = _text_bag(cfg)
        in_dim = cfg.text_dim + cfg.backbone_dim
        if cfg.use_user:
            self.segment = nn.Embedding(cfg.segment_buckets, cfg.segment_dim, padding_idx=0)
            self.clicks = nn.EmbeddingBag(cfg.click_buckets, cfg.click_dim, mode="mean", padding_idx=0)
            in_dim += cfg.segment_dim + cfg.click_dim
        self.encoder = ReluEncoder(in_dim, hidden, out_dim, zero_last=residual)

    def forward(self, f: QueryFeatures) -> torch.Tensor:
        dev = self.text.weight.device
        parts = [self.text(*bag(f.text_ids, dev))]
        if self.cfg.backbone_dim:
            parts.append(torch.as_tensor(f.backbone, dtype=torch.float32, device=dev))
        if self.cfg.use_user:
            seg = f.segment_ids if f.segment_ids is not None else [0] * len(f.text_ids)
            parts.append(self.segment(torch.as_tensor(seg, dtype=torch.long, device=dev)))
            parts.append(self.clicks(*bag(f.click_ids or [[] for _ in f.text_ids], dev)))
        out = self.encoder(torch.cat(parts, dim=1))
        if self.residual:
            out = out + parts[1]
        return F.normalize(out, dim=1)


class ItemTower(nn.Module):
    def __init__(self, cfg: FeatureConfig, hidden: Sequence[int], out_dim: int, *, residual: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.residual = residual
        self.text = _text_bag(cfg)
        self.cats = nn.Embedding(cfg.cat_buckets, cfg.cat_dim, padding_idx=0)
        in_dim = cfg.text_dim + cfg.cat_dim * len(CATEGORY_SLOTS) + len(cfg.numeric_fields) + cfg.backbone_dim
        self.encoder = ReluEncoder(in_dim, hidden, out_dim, zero_last=residual)

    def forward(self, f: ItemFeatures) -> torch.Tensor:
        dev = self.text.weight.device
        n = len(f.text_ids)
        parts = [
            self.text(*bag(f.text_ids, dev)),
            self.cats(torch.as_tensor(f.cat_ids, dtype=torch.long, device=dev)).reshape(n, -1),
            torch.as_tensor(f.numeric, dtype=torch.float32, device=dev).reshape(n, -1),
        ]
        if self.cfg.backbone_dim:
            parts.append(torch.as_tensor(f.backbone, dtype=torch.float32, device=dev))
        out = self.encoder(torch.cat(parts, dim=1))
        if self.residual:
            out = out + parts[-1]
        return F.normalize(out, dim=1)
