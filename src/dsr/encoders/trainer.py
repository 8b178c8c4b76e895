"""Training the two towers on triples (from click logs and/or human judgments).

Item and query features are extracted once up front (and backbone vectors, when the model has a
backbone, are passed in precomputed), so an epoch is only embedding look-ups and small MLPs: fast on
a CPU. Each batch scores every query against the batch's candidate items (positives and explicit
negatives); the loss sees each row's own explicit negative and, with `in_batch`, the other rows'
items (never an item that is a positive for the same query text).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dsr.catalog import Item
from dsr.encoders.base import UserContext
from dsr.encoders.features import ItemFeatures, QueryFeatures
from dsr.encoders.losses import LOSSES
from dsr.encoders.model import TwoTowerModel
from dsr.errors import InputError
from dsr.logs.triples import Triple
from dsr.schedule import TrainSchedule

TWO_TOWER_SCHEDULE = TrainSchedule(epochs=5, batch_size=256, lr=2e-3, threads=1)  # threads: see --threads
_OWN_FIELDS = ("loss", "margin", "temperature", "in_batch", "eval_k")


@dataclass(frozen=True)
class TrainConfig:
    schedule: TrainSchedule = TWO_TOWER_SCHEDULE
    loss: str = "hinge"  # "hinge" (the paper's) or "softmax" (in-batch sampled softmax)
    margin: float = 0.3
    temperature: float = 0.05
    in_batch: bool = True
    eval_k: int = 100

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        self.schedule.whole_epochs("the two-tower trainer")
        if self.schedule.batch_size < 2:
            raise InputError("the two-tower trainer needs a batch size >= 2")
        if self.schedule.warmup_share or self.schedule.patience is not None:
            raise InputError("the two-tower trainer keeps a constant learning rate and runs every epoch: "
                             "its schedule takes no warm-up and no patience")

    def to_config(self) -> dict[str, Any]:
        """The flat record stored in a model's `info.train`."""
        s = self.schedule
        return {"epochs": s.epochs, "batch_size": s.batch_size, "lr": s.lr, "weight_decay": s.weight_decay,
                "loss": self.loss, "margin": self.margin, "temperature": self.temperature,
                "in_batch": self.in_batch, "seed": s.seed, "eval_k": self.eval_k, "threads": s.threads,
                "progress": s.progress}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainConfig:
        """Read `to_config()`'s record back; fields it lacks keep their defaults."""
        return cls(schedule=TWO_TOWER_SCHEDULE.updated(config), **{k: config[k] for k in _OWN_FIELDS if k in config})


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    loss: float
    val_recall: float | None
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    epochs: tuple[EpochResult, ...]
    best_epoch: int  # 0: no epoch beat the untrained towers on validation (they are kept)
    n_triples: int
    skipped_triples: int
    triples_per_s: float
    info: dict[str, Any] = field(default_factory=dict)


def _take_items(f: ItemFeatures, rows: np.ndarray) -> ItemFeatures:
    return ItemFeatures([f.text_ids[i] for i in rows], f.cat_ids[rows], f.numeric[rows],
                        f.backbone[rows] if f.backbone is not None else None)


def _take_queries(f: QueryFeatures, rows: np.ndarray) -> QueryFeatures:
    return QueryFeatures([f.text_ids[i] for i in rows],
                         f.segment_ids[rows] if f.segment_ids is not None else None,
                         [f.click_ids[i] for i in rows] if f.click_ids is not None else None,
                         f.backbone[rows] if f.backbone is not None else None)


def recall_at_k(model: TwoTowerModel, item_feats: ItemFeatures, item_ids: Sequence[str],
                queries: Sequence[str], relevant: Mapping[str, Mapping[str, int]], *, k: int = 100,
                query_backbone: np.ndarray | None = None) -> float:
    """Mean recall@k (relevant = gain > 0) of exact dot-product retrieval over the whole catalog."""
    model.eval()
    with torch.no_grad():
        chunks = []
        for s in range(0, len(item_ids), 8192):
            rows = np.arange(s, min(s + 8192, len(item_ids)))
            chunks.append(model.item_tower(_take_items(item_feats, rows)))
        items = torch.cat(chunks)
        qf = model.featurizer.queries(list(queries), None, query_backbone)
        qv = model.query_tower(qf)
        top = torch.topk(qv @ items.T, min(k, len(item_ids)), dim=1).indices.cpu().numpy()
    scores = []
    for q, row in zip(queries, top, strict=True):
        rel = {i for i, g in relevant[q].items() if g > 0}
        if rel:
            scores.append(len(rel & {item_ids[j] for j in row}) / len(rel))
    return float(np.mean(scores)) if scores else 0.0


def train_two_tower(
    model: TwoTowerModel,
    triples: Sequence[Triple],
    catalog: Sequence[Item],
    config: TrainConfig | None = None,
    *,
    item_backbone: np.ndarray | None = None,
    query_backbone: Callable[[Sequence[str]], np.ndarray] | None = None,
    segments: Mapping[str, str] | None = None,
    validation: Mapping[str, Mapping[str, int]] | None = None,
    checkpoint_dir: Path | str | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train in place; with `validation` (query -> item -> gain) the best epoch's weights are kept."""
    config = config or TrainConfig()
    schedule = config.schedule
    epochs = schedule.whole_epochs("the two-tower trainer")
    if schedule.threads:
        torch.set_num_threads(schedule.threads)
    torch.manual_seed(schedule.seed)
    rng = np.random.default_rng(schedule.seed)
    say = log or (lambda _msg: None)

    item_ids = [str(it["id"]) for it in catalog]
    row_of = {iid: r for r, iid in enumerate(item_ids)}
    usable = [t for t in triples if t.positive in row_of and (t.negative is None or t.negative in row_of)]
    skipped = len(triples) - len(usable)
    if not usable:
        raise InputError("no training triple refers to catalog items (are the logs for this catalog?)")
    if model.config.features.backbone and (item_backbone is None or query_backbone is None):
        enc = model.backbone_encoder()
        item_backbone = enc.encode_items(catalog) if item_backbone is None else item_backbone
        query_backbone = query_backbone or enc.encode_queries
    backbone_of = query_backbone

    t0 = time.perf_counter()
    item_feats = model.featurizer.items(catalog, item_backbone)
    query_texts = sorted({t.query for t in usable} | set(validation or {}))
    q_index = {q: i for i, q in enumerate(query_texts)}
    q_backbone = backbone_of(query_texts) if backbone_of is not None and model.config.features.backbone else None
    users: list[UserContext | None] = [
        {"segment": (segments or {}).get(t.user_id or ""), "recent_clicks": t.recent_clicks}
        if model.config.features.use_user else None for t in usable
    ]
    triple_q = np.array([q_index[t.query] for t in usable])
    base_qf = model.featurizer.queries(query_texts, None, q_backbone)
    user_qf = model.featurizer.queries(["" for _ in usable], users) if model.config.features.use_user else None
    pos_rows = np.array([row_of[t.positive] for t in usable])
    neg_rows = np.array([row_of[t.negative] if t.negative is not None else -1 for t in usable])
    weights = np.array([t.weight for t in usable], np.float32)
    say(f"features ready for {len(usable)} triples, {len(item_ids)} items, {len(query_texts)} queries "
        f"in {time.perf_counter() - t0:.1f}s")

    loss_fn = LOSSES[config.loss](config.margin) if config.loss == "hinge" else LOSSES[config.loss](config.temperature)
    opt = torch.optim.Adam(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    dev = model.device
    history: list[EpochResult] = []
    best_state, best_metric, best_epoch = None, -1.0, 0
    judged = validation or {}
    val_queries = [q for q in judged if any(g > 0 for g in judged[q].values())]
    val_backbone = q_backbone[[q_index[q] for q in val_queries]] if q_backbone is not None else None

    def validate() -> float | None:
        if not val_queries:
            return None
        return recall_at_k(model, item_feats, item_ids, val_queries, validation or {}, k=config.eval_k,
                           query_backbone=val_backbone)

    if val_queries:  # epoch 0: the untrained towers (with a residual backbone: the backbone itself)
        best_metric = validate() or 0.0
        best_state = copy.deepcopy(model.state_dict())
        say(f"epoch 0: validation recall@{config.eval_k} {best_metric:.4f}")
    train_seconds = 0.0
    seen = 0
    stopped = False
    for epoch in range(1, epochs + 1):
        if stopped:
            break
        model.train()
        order = rng.permutation(len(usable))
        total, batches = 0.0, 0
        start = time.perf_counter()
        bar = tqdm(range(0, len(order), schedule.batch_size), desc=f"epoch {epoch}/{epochs}",
                   unit="batch", disable=not schedule.progress, leave=False)
        for s in bar:
            idx = order[s : s + schedule.batch_size]
            if len(idx) < 2:
                continue
            cand, inverse = np.unique(np.concatenate([pos_rows[idx], neg_rows[idx][neg_rows[idx] >= 0]]),
                                      return_inverse=True)
            pos_col = torch.as_tensor(inverse[: len(idx)], device=dev)
            qf = _take_queries(base_qf, triple_q[idx])
            if user_qf is not None:
                assert user_qf.segment_ids is not None and user_qf.click_ids is not None  # use_user builds both
                qf.segment_ids, qf.click_ids = user_qf.segment_ids[idx], [user_qf.click_ids[i] for i in idx]
            qv = model.query_tower(qf)
            iv = model.item_tower(_take_items(item_feats, cand))
            scores = qv @ iv.T
            n_rows, n_cols = scores.shape
            negatives = torch.zeros((n_rows, n_cols), dtype=torch.bool, device=dev)
            has_neg = neg_rows[idx] >= 0
            neg_col = np.full(len(idx), -1)
            neg_col[has_neg] = inverse[len(idx):]
            rows_with = torch.as_tensor(np.flatnonzero(has_neg), device=dev)
            negatives[rows_with, torch.as_tensor(neg_col[has_neg], device=dev)] = True
            if config.in_batch:
                qi = torch.as_tensor(triple_q[idx], device=dev)
                same_q = (qi[:, None] == qi[None, :]).float()
                onehot = torch.zeros((n_rows, n_cols), device=dev)
                onehot[torch.arange(n_rows, device=dev), pos_col] = 1.0
                blocked = (same_q @ onehot) > 0  # positives of any row with the same query text
                negatives |= ~blocked
            negatives[torch.arange(n_rows, device=dev), pos_col] = False
            loss = loss_fn(scores, pos_col, negatives, torch.as_tensor(weights[idx], device=dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
            seen += len(idx)
            bar.set_postfix(loss=f"{total / batches:.4f}")
            if schedule.out_of_time() and (epoch < epochs or s + schedule.batch_size < len(order)):
                stopped = True
                say(f"stopped at the time budget in epoch {epoch} of {epochs}, after {seen} triples")
                break
        bar.close()
        epoch_seconds = time.perf_counter() - start
        train_seconds += epoch_seconds
        val = validate()
        history.append(EpochResult(epoch, total / max(batches, 1), val, epoch_seconds))
        say(f"epoch {epoch}: loss {total / max(batches, 1):.4f}"
            + (f", validation recall@{config.eval_k} {val:.4f}" if val is not None else ""))
        metric = val if val is not None else float(epoch)
        if metric > best_metric:
            best_metric, best_epoch = metric, epoch
            best_state = copy.deepcopy(model.state_dict()) if val_queries else None
        if checkpoint_dir is not None:
            model.save(Path(checkpoint_dir) / "last", info={"epoch": epoch, "loss": total / max(batches, 1),
                                                              "val_recall": val})
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(tuple(history), best_epoch, len(usable), skipped,
                       seen / train_seconds if train_seconds > 0 else 0.0)
