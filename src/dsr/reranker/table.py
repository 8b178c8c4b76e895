"""Features of many ranking groups, extracted once and held as tensors for training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dsr.reranker.features import FeatureExtractor
from dsr.reranker.groups import RankGroup


@dataclass
class FeatureTable:
    numeric: torch.Tensor  # float32 [N, F]
    item_ids: torch.Tensor  # int64 [N, Li]
    row_group: torch.Tensor  # int64 [N]
    query_ids: torch.Tensor  # int64 [G, Lq]
    click_ids: torch.Tensor  # int64 [G, Lc]
    click_cross: torch.Tensor  # float32 [N, 2]
    offsets: np.ndarray  # [G + 1], rows of group g are offsets[g]:offsets[g+1]
    labels: list[tuple[float, ...]]
    pair_rows: torch.Tensor  # int64 [P, 2] (preferred row, other row)
    pair_weights: torch.Tensor  # float32 [P]
    pair_group: np.ndarray  # [P]

    @classmethod
    def build(cls, groups: Sequence[RankGroup], extractor: FeatureExtractor) -> FeatureTable:
        numeric, items, row_group, queries, clicks, cross, offsets = [], [], [], [], [], [], [0]
        pairs, weights, pair_group = [], [], []
        for g, group in enumerate(groups):
            f = extractor.extract(group.query, group.candidates, group.user)
            base = offsets[-1]
            numeric.append(f.numeric)
            items.append(f.item_ids)
            row_group.append(np.full(len(group.candidates), g))
            queries.append(f.query_ids)
            clicks.append(f.click_ids)
            cross.append(f.click_cross)
            offsets.append(base + len(group.candidates))
            for a, b, w in group.pairs:
                pairs.append((base + a, base + b))
                weights.append(w)
                pair_group.append(g)
        n_num = len(extractor.config.numeric)
        cfg = extractor.config
        return cls(
            numeric=torch.from_numpy(np.concatenate(numeric) if numeric else np.zeros((0, n_num), np.float32)),
            item_ids=torch.from_numpy(np.concatenate(items) if items else np.zeros((0, cfg.item_len + 1), np.int64)),
            row_group=torch.from_numpy(np.concatenate(row_group) if row_group else np.zeros(0, np.int64)),
            query_ids=torch.from_numpy(np.stack(queries) if queries else np.zeros((0, cfg.query_len), np.int64)),
            click_ids=torch.from_numpy(np.stack(clicks) if clicks else np.zeros((0, cfg.click_len), np.int64)),
            click_cross=torch.from_numpy(np.concatenate(cross) if cross else np.zeros((0, 2), np.float32)),
            offsets=np.asarray(offsets),
            labels=[g.labels for g in groups],
            pair_rows=torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2),
            pair_weights=torch.tensor(weights, dtype=torch.float32),
            pair_group=np.asarray(pair_group, dtype=np.int64),
        )

    @property
    def n_groups(self) -> int:
        return len(self.offsets) - 1

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Tower inputs (numeric, query ids, item ids, click ids, click cross) for the given rows."""
        g = self.row_group[idx]
        return self.numeric[idx], self.query_ids[g], self.item_ids[idx], self.click_ids[g], self.click_cross[idx]

    def group_scores(self, flat: np.ndarray) -> list[np.ndarray]:
        return [flat[self.offsets[g]: self.offsets[g + 1]] for g in range(self.n_groups)]
