"""Fine-tuning the cross-encoder teacher on graded (query, item, grade) judgments.

On a shared CPU the budget is the point: a subsample of pairs, short sequences (titles fit in ~48
tokens with the query), one epoch by default. Every knob is in `TeacherTrainConfig` and its schedule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dsr.device import resolve_device
from dsr.errors import UsageError
from dsr.reranker.distill.grades import GradeScale
from dsr.reranker.distill.soft_ce import SoftTargetCrossEntropy
from dsr.reranker.distill.teacher import CrossEncoderTeacher
from dsr.schedule import TrainSchedule, clipped_step, warmup_decay


@dataclass(frozen=True)
class GradedText:
    """One judged pair as the teacher reads it."""

    query: str
    text: str
    grade: float


TEACHER_SCHEDULE = TrainSchedule(epochs=1, batch_size=32, lr=4e-5, weight_decay=0.01, warmup_share=0.1,
                                 progress=False)
"""The teacher's defaults; `lr` is the transformer layers' (the head has its own, see `TeacherTrainConfig`)."""


@dataclass(frozen=True)
class TeacherTrainConfig:
    schedule: TrainSchedule = TEACHER_SCHEDULE
    max_length: int = 48
    max_pairs: int | None = 4000  # subsample of the judged pairs (None: all)
    head_lr: float = 1e-3  # the fresh classification head learns faster
    freeze_layers: int = 0  # freeze the embeddings and this many bottom layers (cheaper on a CPU)
    pooling: str = "mean"
    device: str | None = None

    def __post_init__(self) -> None:
        self.schedule.whole_epochs("the teacher trainer")
        if self.schedule.patience is not None:
            raise UsageError("the teacher trains without validation: its schedule takes no patience")


@dataclass(frozen=True)
class TeacherTrainReport:
    pairs: int
    steps: int
    first_loss: float
    last_loss: float  # mean of the last 10% of steps


def train_teacher(
    examples: Sequence[GradedText],
    scale: GradeScale,
    config: TeacherTrainConfig | None = None,
    *,
    teacher: CrossEncoderTeacher | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[CrossEncoderTeacher, TeacherTrainReport]:
    """Fine-tune (a fresh MiniLM teacher unless given one) with soft-target cross-entropy."""
    cfg = config or TeacherTrainConfig()
    schedule = cfg.schedule
    epochs = schedule.whole_epochs("the teacher trainer")
    if not examples:
        raise UsageError("no judged pairs to train the teacher on")
    if schedule.threads:
        torch.set_num_threads(schedule.threads)
    rng = random.Random(schedule.seed)
    torch.manual_seed(schedule.seed)
    data = list(examples)
    if cfg.max_pairs is not None and len(data) > cfg.max_pairs:
        data = rng.sample(data, cfg.max_pairs)
    model = teacher or CrossEncoderTeacher.from_backbone(scale, max_length=cfg.max_length,
                                                         pooling=cfg.pooling)
    model.max_length = cfg.max_length
    model.to(resolve_device(cfg.device))
    _freeze_bottom(model, cfg.freeze_layers)

    head_params = list(model.head.parameters())
    head_ids = {id(p) for p in head_params}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    opt = torch.optim.AdamW([{"params": body, "lr": schedule.lr}, {"params": head_params, "lr": cfg.head_lr}],
                            weight_decay=schedule.weight_decay)
    steps_per_epoch = math.ceil(len(data) / schedule.batch_size)
    total = max(1, steps_per_epoch * epochs)
    lr_schedule = warmup_decay(opt, schedule, total)
    loss_fn = SoftTargetCrossEntropy()
    targets_all = scale.soft_targets(np.array([e.grade for e in data]))

    bar = None
    if schedule.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="teacher", unit="step")
    losses: list[float] = []
    model.train()
    step = 0
    for _ in range(epochs):
        order = list(range(len(data)))
        rng.shuffle(order)
        for start in range(0, len(order), schedule.batch_size):
            idx = order[start:start + schedule.batch_size]
            batch = model.tokenize([data[i].query for i in idx], [data[i].text for i in idx])
            target = torch.from_numpy(targets_all[idx]).to(model.device)
            losses.append(clipped_step(loss_fn(model(batch), target), model, opt, lr_schedule))
            step += 1
            if on_step is not None:
                on_step(step, losses[-1])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    tail = losses[-max(1, len(losses) // 10):]
    return model, TeacherTrainReport(len(data), step, losses[0], float(np.mean(tail)))


def _freeze_bottom(model: CrossEncoderTeacher, n_layers: int) -> None:
    """Stop gradients below the top layers: embeddings plus the first `n_layers` transformer layers."""
    if n_layers <= 0:
        return
    enc = model.encoder
    for p in enc.embeddings.parameters():
        p.requires_grad_(False)
    layers = enc.encoder.layer
    if n_layers > len(layers):
        raise UsageError(f"freeze_layers={n_layers} but the encoder has only {len(layers)} layers")
    for layer in layers[:n_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
