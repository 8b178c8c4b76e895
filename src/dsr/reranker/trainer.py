"""Siamese training: the shared tower on a and b, BCE on the logit difference, early stopping.

Validation is a held-out set of whole sessions (never pairs of a training session), scored with the
single serving tower; the best epoch's weights by validation session AUC are kept.
"""

from __future__ import annotations

import copy
import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from dsr.errors import InputError
from dsr.eval.session_metrics import mean_over_groups
from dsr.reranker.features import FeatureExtractor
from dsr.reranker.groups import RankGroup
from dsr.reranker.loss import PairwiseBCELoss
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.table import FeatureTable
from dsr.reranker.tower import RankerTower, TowerConfig
from dsr.schedule import TrainSchedule

RANKER_SCHEDULE = TrainSchedule(epochs=20, batch_size=512, lr=2e-3, patience=3, threads=2)
"""The Siamese ranker's defaults; patience counts epochs without a better validation session AUC."""


@dataclass(frozen=True)
class SiameseTrainConfig:
    schedule: TrainSchedule = RANKER_SCHEDULE
    use_text: bool = True
    dim: int = 32
    hidden: tuple[int, int, int] = (256, 128, 64)
    embedding_lr: float = 2e-4  # slower than the MLP: hashed text embeddings memorise sessions fast
    evals_per_epoch: int = 4
    init: str | None = None  # a Siamese ranker directory to go on training (transfer from another shop or set)

    def __post_init__(self) -> None:
        check_pair_schedule(self.schedule, "the Siamese trainer")


def check_pair_schedule(schedule: TrainSchedule, trainer: str) -> None:
    """`fit_pairs` runs whole epochs at a constant learning rate."""
    schedule.whole_epochs(trainer)
    if schedule.warmup_share:
        raise InputError(f"{trainer} keeps a constant learning rate: its schedule takes no warm-up")


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
    train: list[RankGroup] = []
    val: list[RankGroup] = []
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


@dataclass(frozen=True)
class FitResult:
    epochs_run: int
    best_epoch: int
    best_record: dict[str, float]
    history: list[dict[str, float]]

    @property
    def best_val(self) -> dict[str, float]:
        """The validation figures of the kept checkpoint, without their `val_` prefix."""
        return {k[4:]: v for k, v in self.best_record.items() if k.startswith("val_")}


PairLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (logit a, logit b, pair idx)


def fit_pairs(tower: RankerTower, train: FeatureTable, val: FeatureTable | None, pair_loss: PairLoss,
              schedule: TrainSchedule, *, embedding_lr: float, evals_per_epoch: int, metric: str,
              val_k: Sequence[int] = (5,)) -> FitResult:
    """Train `tower` on `train`'s pairs, validating `evals_per_epoch` times an epoch; the best weights are kept.

    The tower scores both items of a pair (shared weights) and `pair_loss` turns the two logits into
    the objective. The hashed text embeddings learn at `embedding_lr`, slower than the MLP: they
    memorise queries and sessions fast. The kept checkpoint is the best `val_{metric}` (the lowest
    running training loss without validation groups); training stops after the schedule's `patience`
    epochs without improvement (never, without patience).
    """
    epochs = schedule.whole_epochs("the pairwise trainer")
    emb = [p for n, p in tower.named_parameters() if n.startswith("embedding.")]
    rest = [p for n, p in tower.named_parameters() if not n.startswith("embedding.")]
    params = [{"params": rest, "lr": schedule.lr}] + ([{"params": emb, "lr": embedding_lr}] if emb else [])
    opt = torch.optim.Adam(params, weight_decay=schedule.weight_decay)
    gen = torch.Generator().manual_seed(schedule.seed)
    n_pairs = train.pair_rows.shape[0]
    best, best_epoch, best_state, history, bad = -math.inf, 0, None, [], 0
    best_record: dict[str, float] = {}
    n_steps = math.ceil(n_pairs / schedule.batch_size)
    evals = max(1, evals_per_epoch)
    # validate a few times per epoch: the text embeddings can start to memorise within one epoch
    checks = {min(n_steps, math.ceil(n_steps * (j + 1) / evals)) for j in range(evals)}
    stop = False
    epoch = 0
    for epoch in range(1, epochs + 1):
        tower.train()
        perm = torch.randperm(n_pairs, generator=gen)
        total, seen = 0.0, 0
        for step in tqdm(range(1, n_steps + 1), desc=f"epoch {epoch}", disable=not schedule.progress, leave=False):
            idx = perm[(step - 1) * schedule.batch_size: step * schedule.batch_size]
            rows = train.pair_rows[idx]
            logits = tower(*train.rows(rows.reshape(-1))).reshape(-1, 2)
            loss = pair_loss(logits[:, 0], logits[:, 1], idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
            out_of_time = schedule.out_of_time()  # validate once more, then stop
            if step not in checks and not out_of_time:
                continue
            record = {"epoch": round(epoch - 1 + step / n_steps, 3), "train_loss": total / seen}
            if val is not None and val.n_groups:
                record.update({f"val_{k}": v for k, v in evaluate(tower, val, k=val_k).items()})
                score = record[f"val_{metric}"]
                tower.train()
            else:
                score = -record["train_loss"]
            history.append(record)
            if schedule.progress:
                tqdm.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in record.items()), file=sys.stderr)  # progress, beside the bars
            if score > best:
                best, best_epoch, bad, best_record = score, epoch, 0, record
                best_state = copy.deepcopy(tower.state_dict())
            else:
                bad += 1
                if schedule.patience is not None and bad >= schedule.patience * evals:
                    stop = True
                    break
            if out_of_time:
                stop = True
                break
        if stop:
            break
    assert best_state is not None
    tower.load_state_dict(best_state)
    tower.eval()
    return FitResult(epochs_run=epoch, best_epoch=best_epoch, best_record=best_record, history=history)


def train_siamese(
    train_groups: Sequence[RankGroup],
    val_groups: Sequence[RankGroup],
    extractor: FeatureExtractor,
    config: SiameseTrainConfig | None = None,
) -> tuple[SiameseRanker, TrainSummary]:
    cfg = config or SiameseTrainConfig()
    torch.manual_seed(cfg.schedule.seed)
    prev_threads = torch.get_num_threads()
    if cfg.schedule.threads:
        torch.set_num_threads(cfg.schedule.threads)
    try:
        train = FeatureTable.build(train_groups, extractor)
        val = FeatureTable.build(val_groups, extractor) if val_groups else None
        if train.pair_rows.shape[0] == 0:
            raise ValueError("no training pairs: every session lacked a preference (see the pair report)")
        if cfg.init is not None:
            tower = _starting_tower(cfg.init, extractor)
        else:
            tower = RankerTower(TowerConfig(n_numeric=train.numeric.shape[1], use_text=cfg.use_text,
                                            buckets=extractor.config.buckets, dim=cfg.dim, hidden=cfg.hidden))
            tower.set_normalisation(train.numeric)
        loss_fn = PairwiseBCELoss()
        fit = fit_pairs(tower, train, val, lambda a, b, idx: loss_fn(a, b, weights=train.pair_weights[idx]),
                        cfg.schedule, embedding_lr=cfg.embedding_lr, evals_per_epoch=cfg.evals_per_epoch,
                        metric="session_auc")
        summary = TrainSummary(epochs_run=fit.epochs_run, best_epoch=fit.best_epoch, best_val=fit.best_val,
                               history=fit.history)
        return SiameseRanker(extractor, tower), summary
    finally:
        torch.set_num_threads(prev_threads)



def _starting_tower(directory: str, extractor: FeatureExtractor) -> RankerTower:
    """The tower of the ranker in `directory`, to go on training; its features must be these.

    Its input normalisation stays as it was learnt: the weights were trained on inputs scaled so.
    """
    start = SiameseRanker.load(directory)
    if start.extractor.config != extractor.config:
        raise InputError(f"{directory}: that ranker reads other features than this training extracts; "
                         "train from scratch or with the same feature settings")
    return start.tower.train()
