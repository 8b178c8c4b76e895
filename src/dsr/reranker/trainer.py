"""Siamese training: the shared tower on a and b, BCE on the logit difference, early stopping.

Validation is a held-out set of whole sessions (never pairs of a training session), scored with the
single serving tower; the best epoch's weights by validation session AUC are kept.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from dsr.eval.session_metrics import mean_over_groups
from dsr.reranker.features import FeatureExtractor
from dsr.reranker.groups import RankGroup
from dsr.reranker.loss import PairwiseBCELoss
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.table import FeatureTable
from dsr.reranker.tower import RankerTower, TowerConfig


@dataclass(frozen=True)
class SiameseTrainConfig:
    use_text: bool = True
    dim: int = 32
    hidden: tuple[int, int, int] = (256, 128, 64)
    epochs: int = 20
    batch_size: int = 512
    lr: float = 2e-3
    embedding_lr: float = 2e-4  # slower than the MLP: hashed text embeddings memorise sessions fast
    weight_decay: float = 0.0
    patience: int = 3  # epochs without a better validation session AUC
    evals_per_epoch: int = 4
    seed: int = 0
    threads: int = 2
    progress: bool = True


@dataclass(frozen=True)
class TrainSummary:
    epochs_run: int
    best_epoch: int
    best_val: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def split_by_group(groups: Sequence[RankGroup], val_fraction: float, *, seed: int = 0
                   ) -> tuple[list[RankGroup], list[RankGroup]]:
    """A stable split by group (session) id: the same session always lands on the same side."""
    train, val = [], []
    for g in groups:
        h = int(hashlib.sha1(f"{seed}:{g.group_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(g)
    return train, val


@torch.inference_mode()
def score_table(tower: RankerTower, table: FeatureTable, *, chunk: int = 8192) -> np.ndarray:
    tower.eval()
    n = table.numeric.shape[0]
    out = [tower(*table.rows(torch.arange(s, min(n, s + chunk)))) for s in range(0, n, chunk)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def evaluate(tower: RankerTower, table: FeatureTable, k: Sequence[int] = (5,)) -> dict[str, float]:
    return mean_over_groups(table.group_scores(score_table(tower, table)), table.labels, k=k)


def train_siamese(
    train_groups: Sequence[RankGroup],
    val_groups: Sequence[RankGroup],
    extractor: FeatureExtractor,
    config: SiameseTrainConfig | None = None,
) -> tuple[SiameseRanker, TrainSummary]:
    cfg = config or SiameseTrainConfig()
    torch.manual_seed(cfg.seed)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        train = FeatureTable.build(train_groups, extractor)
        val = FeatureTable.build(val_groups, extractor) if val_groups else None
        if train.pair_rows.shape[0] == 0:
            raise ValueError("no training pairs: every session lacked a preference (see the pair report)")
        tower = RankerTower(TowerConfig(n_numeric=train.numeric.shape[1], use_text=cfg.use_text,
                                        buckets=extractor.config.buckets, dim=cfg.dim, hidden=cfg.hidden))
        tower.set_normalisation(train.numeric)
        emb = [p for n, p in tower.named_parameters() if n.startswith("embedding.")]
        rest = [p for n, p in tower.named_parameters() if not n.startswith("embedding.")]
        groups = [{"params": rest, "lr": cfg.lr}] + ([{"params": emb, "lr": cfg.embedding_lr}] if emb else [])
        opt = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
        loss_fn = PairwiseBCELoss()
        gen = torch.Generator().manual_seed(cfg.seed)
        n_pairs = train.pair_rows.shape[0]
        best, best_epoch, best_state, history, bad = -math.inf, 0, None, [], 0
        best_record: dict[str, float] = {}
        n_steps = math.ceil(n_pairs / cfg.batch_size)
        # validate a few times per epoch: the text embeddings can start to memorise within one epoch
        checks = {min(n_steps, math.ceil(n_steps * (j + 1) / max(1, cfg.evals_per_epoch)))
                  for j in range(max(1, cfg.evals_per_epoch))}
        stop = False
        for epoch in range(1, cfg.epochs + 1):
            tower.train()
            perm = torch.randperm(n_pairs, generator=gen)
            total, seen = 0.0, 0
            for step in tqdm(range(1, n_steps + 1), desc=f"epoch {epoch}", disable=not cfg.progress, leave=False):
                idx = perm[(step - 1) * cfg.batch_size: step * cfg.batch_size]
                rows = train.pair_rows[idx]
                logits = tower(*train.rows(rows.reshape(-1))).reshape(-1, 2)
                loss = loss_fn(logits[:, 0], logits[:, 1], weights=train.pair_weights[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
                if step not in checks:
                    continue
                record = {"epoch": round(epoch - 1 + step / n_steps, 3), "train_loss": total / seen}
                if val is not None and val.n_groups:
                    record.update({f"val_{k}": v for k, v in evaluate(tower, val).items()})
                    metric = record["val_session_auc"]
                    tower.train()
                else:
                    metric = -record["train_loss"]
                history.append(record)
                if cfg.progress:
                    tqdm.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in record.items()))
                if metric > best:
                    best, best_epoch, bad, best_record = metric, epoch, 0, record
                    best_state = copy.deepcopy(tower.state_dict())
                else:
                    bad += 1
                    if bad >= cfg.patience * max(1, cfg.evals_per_epoch):
                        stop = True
                        break
            if stop:
                break
        assert best_state is not None
        tower.load_state_dict(best_state)
        tower.eval()
        best_val = {k[4:]: v for k, v in best_record.items() if k.startswith("val_")}
        summary = TrainSummary(epochs_run=epoch, best_epoch=best_epoch, best_val=best_val, history=history)
        return SiameseRanker(extractor, tower), summary
    finally:
        torch.set_num_threads(prev_threads)
