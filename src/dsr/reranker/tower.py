"""The ranking tower: features -> 3 ReLU layers -> one logit.

The same module is the serving scorer (one tower, each candidate scored once) and both arms of
the Siamese training step (shared weights, applied to a and b). Text and click-stream ids go through
one shared hashed embedding table, sum-pooled. The query enters through its element-wise product
with the item (query*item), so a shallow MLP can express "matches the query" without learning
multiplication. The click stream enters only as two scalars, its dot product and cosine with the
item ("like what this user clicked"), beside two hand-made click-stream cross features: the
pooled stream nearly identifies one session, and fed in as a vector it lets the tower memorise
each training session's clicks instead of learning tastes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

MIN_STD = 1e-3


@dataclass(frozen=True)
class TowerConfig:
    n_numeric: int
    use_text: bool = True  # False: numeric features only ("siamese_numeric")
    buckets: int = 1 << 16
    dim: int = 32
    hidden: tuple[int, int, int] = (256, 128, 64)
    dropout: float = 0.1

    def to_config(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TowerConfig:
        return cls(**{**cfg, "hidden": tuple(cfg["hidden"])})


class RankerTower(nn.Module):
    numeric_mean: torch.Tensor  # buffers: saved with the weights, moved with the module
    numeric_std: torch.Tensor

    def __init__(self, config: TowerConfig):
        super().__init__()
        self.config = config
        self.register_buffer("numeric_mean", torch.zeros(config.n_numeric))
        self.register_buffer("numeric_std", torch.ones(config.n_numeric))
        width = config.n_numeric
        if config.use_text:
            self.embedding = nn.Embedding(config.buckets, config.dim, padding_idx=0)
            nn.init.normal_(self.embedding.weight, std=0.05)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
            width += 2 * config.dim + 4
        self.dropout = nn.Dropout(config.dropout)
        h1, h2, h3 = config.hidden
        self.mlp = nn.Sequential(
            nn.Linear(width, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, h3), nn.ReLU(),
            nn.Linear(h3, 1),
        )

    def set_normalisation(self, numeric: torch.Tensor) -> None:
        """Standardise numeric inputs with the training set's mean/std (stored with the weights)."""
        self.numeric_mean.copy_(numeric.mean(0))
        self.numeric_std.copy_(numeric.std(0).clamp_min(MIN_STD))

    def forward(self, numeric: torch.Tensor, query_ids: torch.Tensor | None = None,
                item_ids: torch.Tensor | None = None, click_ids: torch.Tensor | None = None,
                click_cross: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B] for rows: numeric [B, F], ids [B, L] (0 = padding)."""
        # A feature that never varied in training (std at its floor, e.g. first-stage scores absent from
        # the logs) carries no learned signal: hold it at its training value rather than let an unseen
        # value, blown up by the floor std, swamp the score. Others are bounded to +-6 std for the same reason.
        seen = (self.numeric_std > MIN_STD).to(numeric.dtype)
        x = ((numeric - self.numeric_mean) / self.numeric_std).clamp(-6.0, 6.0) * seen
        if self.config.use_text:
            if query_ids is None or item_ids is None or click_ids is None:
                raise ValueError("a text tower needs query, item and click ids")
            q = self._pooled(query_ids)
            i = self._pooled(item_ids)
            c = self._pooled(click_ids)
            dot = (c * i).sum(1, keepdim=True)
            cos = dot / (c.norm(dim=1, keepdim=True) * i.norm(dim=1, keepdim=True)).clamp_min(1e-6)
            if click_cross is None:
                click_cross = torch.zeros(x.shape[0], 2, dtype=x.dtype)
            x = self.dropout(torch.cat([x, i, q * i, dot, cos, click_cross], dim=1))
        return self.mlp(x).squeeze(1)

    def _pooled(self, ids: torch.Tensor) -> torch.Tensor:
        """Sum of the ids' embeddings per row; a row broadcast to the batch (the query and the click
        stream when serving, `expand`ed with stride 0) is pooled once rather than once per candidate."""
        if ids.dim() == 2 and ids.shape[0] > 1 and ids.stride(0) == 0:
            return self.embedding(ids[:1]).sum(1).expand(ids.shape[0], -1)
        return self.embedding(ids).sum(1)
