"""The served Siamese ranker: the extractor plus the single tower, loaded once, one batch per query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsr.catalog import Item
from dsr.modelio import load_state_into, load_weights, read_config, save_model_dir
from dsr.reranker.base import Candidate
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.tower import RankerTower, TowerConfig

KIND = "dsr.siamese_ranker"
FORMAT_VERSION = 1


class SiameseRanker:
    """Implements `Reranker`: scores every candidate once with the shared tower, in one batch.

    `catalog` resolves the item ids of a user's `recent_clicks` to items (their text is the click
    stream); a user mapping may also carry the items themselves, or `price_level`.
    """

    def __init__(self, extractor: FeatureExtractor, tower: RankerTower):
        self.extractor = extractor
        self.tower = tower.eval()

    @property
    def item_fields(self) -> tuple[str, ...]:
        """The catalog fields this ranker reads from a candidate (a record holding them can stand in)."""
        return self.extractor.config.item_fields

    @torch.inference_mode()
    def score(self, query: str, candidates: Sequence[Candidate],
              user: Mapping[str, Any] | None = None) -> np.ndarray:
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        f = self.extractor.extract(query, candidates, user)
        n = len(candidates)
        logits = self.tower(
            torch.from_numpy(f.numeric),
            torch.from_numpy(f.query_ids).expand(n, -1),
            torch.from_numpy(f.item_ids),
            torch.from_numpy(f.click_ids).expand(n, -1),
            torch.from_numpy(f.click_cross),
        )
        return logits.numpy().astype(np.float32)

    def save(self, directory: Path | str, *, extra: Mapping[str, Any] | None = None) -> Path:
        config = {"features": self.extractor.config.to_config(), "tower": self.tower.config.to_config(),
                  **(extra or {})}
        return save_model_dir(directory, kind=KIND, format_version=FORMAT_VERSION, config=config,
                              state_dict=self.tower.state_dict())

    @classmethod
    def load(cls, directory: Path | str, *, catalog: Mapping[str, Item] | None = None) -> SiameseRanker:
        cfg = read_config(directory, kind=KIND, supported_versions=(FORMAT_VERSION,))
        tower = RankerTower(TowerConfig.from_config(cfg["tower"]))
        load_state_into(tower, load_weights(directory), where=str(directory))
        return cls(FeatureExtractor(FeatureConfig.from_config(cfg["features"]), catalog), tower)
