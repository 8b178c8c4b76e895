"""The training schedule every dsr trainer shares, and the optimisation step of the transformer fine-tunings.

A `TrainSchedule` says how long and how fast a model trains and when it stops: epochs, batch size,
learning rate, weight decay, warm-up, early-stopping patience, a deadline, seed, CPU threads and
progress bars.
Each trainer's config holds one plus only what is its own (a loss, a tower shape), so one schedule
object can drive the two towers, the backbone tuning, the Siamese ranker, the cross-encoder teacher
and the distilled student, and a command maps its options onto it in one place.

A deadline (a `time.monotonic()` reading) lets a run with a time budget stop a trainer part-way:
the trainer ends at its next step after the deadline and keeps what it has learnt (the best
validated state, where it validates), so a budget costs quality, never the run.

The transformer fine-tunings (the DSR backbone, the cross-encoder teacher) warm the learning rate up
linearly and then decay it linearly to zero, with gradients clipped to norm 1: the usual recipe that
keeps a pretrained transformer from being knocked off its weights by the first noisy batches. The
curve is transformers' own `get_linear_schedule_with_warmup`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from dsr.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class TrainSchedule:
    """How long and how fast a model trains, and when it stops; the knobs every trainer shares.

    A trainer that cannot honour a setting (a warm-up for a constant learning rate, patience without
    early stopping, a fraction of an epoch) refuses it in its own config rather than ignoring it.
    """

    epochs: float  # passes over the training data; fractions only where a trainer counts steps
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    warmup_share: float = 0.0  # share of the steps with a linear warm-up, before a linear decay to 0
    patience: int | None = None  # early stopping: epochs without a better validation figure (None: off)
    seed: int = 0
    threads: int | None = None  # torch CPU threads (None: leave torch's own setting)
    progress: bool = True
    deadline: float | None = None  # time.monotonic() at which training stops early (None: no limit)

    def __post_init__(self) -> None:
        problems = [
            why for bad, why in (
                (not self.epochs > 0, "epochs > 0"),
                (self.batch_size < 1, "batch size >= 1"),
                (not self.lr > 0, "lr > 0"),
                (self.weight_decay < 0, "weight decay >= 0"),
                (not 0.0 <= self.warmup_share < 1.0, "warm-up share in [0, 1)"),
                (self.patience is not None and self.patience < 1, "patience >= 1"),
                (self.threads is not None and self.threads < 1, "threads >= 1"),
            ) if bad
        ]
        if problems:
            raise InputError(f"a training schedule needs {', '.join(problems)}")

    def replace(self, **changes: Any) -> TrainSchedule:
        """This schedule with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def updated(self, config: Mapping[str, Any]) -> TrainSchedule:
        """This schedule with the fields that `config` (a serialised trainer config) names."""
        return self.replace(**{k: config[k] for k in SCHEDULE_FIELDS if k in config})

    def within(self, seconds: float | None) -> TrainSchedule:
        """This schedule stopping `seconds` from now (unchanged for None); an earlier deadline stays."""
        if seconds is None:
            return self
        deadline = time.monotonic() + max(0.0, seconds)
        return self.replace(deadline=deadline if self.deadline is None else min(deadline, self.deadline))

    def out_of_time(self) -> bool:
        """Whether the deadline has passed: a trainer checks it after each step."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def whole_epochs(self, trainer: str) -> int:
        """`epochs` as a count, for a trainer that runs whole passes over its data."""
        if not float(self.epochs).is_integer():
            raise InputError(f"{trainer} runs whole epochs, not {self.epochs}")
        return int(self.epochs)

    def warmup_steps(self, total_steps: int) -> int:
        return int(total_steps * self.warmup_share)


SCHEDULE_FIELDS = tuple(f.name for f in fields(TrainSchedule))


def warmup_decay(optimizer: torch.optim.Optimizer, schedule: TrainSchedule, total_steps: int
                 ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the schedule's share of `total_steps`, then linear decay to 0 at `total_steps`.

    transformers' curve: step s of a warm-up over w steps runs at lr * s / w (the first at 0), then
    step s runs at lr * (total - s) / (total - w). Every parameter group keeps its own base lr.
    """
    from transformers import get_linear_schedule_with_warmup

    total = max(1, total_steps)
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=schedule.warmup_steps(total),
                                           num_training_steps=total)


def clipped_step(loss: torch.Tensor, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 lr_schedule: torch.optim.lr_scheduler.LRScheduler, max_norm: float = 1.0) -> float:
    """Back-propagate `loss`, clip `module`'s gradients, step optimiser and lr schedule; the loss value."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)
    optimizer.step()
    lr_schedule.step()
    return float(loss.detach())
