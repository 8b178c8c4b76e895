"""The one device policy for every part that computes: the GPU when there is one, the CPU otherwise.

Asking for a GPU that is not there falls back to the CPU with a warning instead of failing (pyserini's
policy), so the same command, config file or service unit runs on a laptop and on a GPU machine; the
warning says what to install to get the GPU back. The encoders, the cross-encoder teacher and the
FAISS sidecar all resolve their device here, so a `--device cuda` behaves the same everywhere.

Neither torch nor faiss is imported at module level: this is a leaf module, and the probes below
import them only when asked, so a CPU-only install never needs CUDA libraries to import dsr.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from dsr.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

FAISS_DEVICES = ("auto", "cpu", "cuda")


def faiss_gpu_count() -> int:
    """GPUs the installed faiss build can search on (0 for faiss-cpu)."""
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a hard dependency
        return 0
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # pragma: no cover - broken driver
        return 0


def torch_cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - broken driver
        return False


def gpu_available(*, faiss: bool = False) -> bool:
    """Whether a GPU is usable: by torch, or with `faiss` also by FAISS's GPU index (either will do
    for the sidecar, which falls back to a torch matrix product when faiss has no GPU support)."""
    return torch_cuda_available() or (faiss and faiss_gpu_count() > 0)


def resolve_device(device: str | torch.device | None = None, *, faiss: bool = False) -> str:
    """The device to run on, as a torch device string ("cpu", "cuda", "cuda:1", ...).

    `None` or "auto" picks the GPU when present. A CUDA device asked for without a GPU warns and gives
    "cpu". With `faiss` (the sidecar), only "auto", "cpu" and "cuda" are meaningful — the GPU search
    runs on the first GPU — and anything else is a usage error; otherwise the name is checked by torch.
    """
    name = "auto" if device is None else str(device)
    if faiss and name not in FAISS_DEVICES:
        raise UsageError(f"unknown device {name!r}: use {', '.join(FAISS_DEVICES)}")
    if name == "auto":
        return "cuda" if gpu_available(faiss=faiss) else "cpu"
    if not faiss:
        import torch

        name = str(torch.device(name))  # a malformed name fails here, with torch's message
    if name.split(":", 1)[0] == "cuda" and not gpu_available(faiss=faiss):
        hint = "pip install 'dsr[gpu]' for FAISS GPU, or a CUDA build of torch" if faiss else "a CUDA build of torch"
        warnings.warn(f"device {name!r} requested but CUDA is not available ({hint}); using the CPU", stacklevel=2)
        return "cpu"
    return name
