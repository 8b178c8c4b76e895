"""The optimisation step both transformer fine-tunings share (the DSR backbone, the cross-encoder
teacher): a learning rate that warms up linearly and then decays linearly to zero, and gradients
clipped to norm 1, the usual recipe that keeps a pretrained transformer from being knocked off its
weights by the first noisy batches."""

from __future__ import annotations

import torch


def warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
                 ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_steps`, then linear decay to 0 at `total_steps`."""
    total, warm = max(1, total_steps), max(1, warmup_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))


def clipped_step(loss: torch.Tensor, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 schedule: torch.optim.lr_scheduler.LRScheduler, max_norm: float = 1.0) -> float:
    """Back-propagate `loss`, clip `module`'s gradients, step optimiser and schedule; the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)
    optimizer.step()
    schedule.step()
    return float(loss.detach())
