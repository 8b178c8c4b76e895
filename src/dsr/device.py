"""Pick the torch device: the GPU when there is one, the CPU otherwise (with a warning when asked
for a GPU that is not there), so the same command runs on a laptop and on a GPU machine."""

from __future__ import annotations

import warnings

import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"device {device!r} requested but CUDA is not available; using the CPU", stacklevel=2)
        return torch.device("cpu")
    return dev
