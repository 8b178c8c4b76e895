"""The one device policy for every part that computes: the GPU when there is one, the CPU otherwise.

Asking for a GPU that is not there falls back to the CPU with a warning instead of failing (pyserini's
policy), so the same command, config file or service unit runs on a laptop and on a GPU machine; the
warning says what to install to get the GPU back. The encoders, the cross-encoder teacher and the
FAISS sidecar all resolve their device here, so a `--device cuda` behaves the same everywhere.

Neither torch nor faiss is imported at module level: this is a leaf module, and the probes below
import them only when asked, so a CPU-only install never needs CUDA libraries to import dsr.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import TYPE_CHECKING

from dsr.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

FAISS_DEVICES = ("auto", "cpu", "cuda")
DEFAULT_THREAD_CAP = 2
"""Training threads by default: more cores help an idle machine little and stall a shared one."""


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


def physical_cores() -> int:
    """Cores this process may run on, each physical core counted once (its hyper-threads share it)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    physical = core = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    physical = value.strip()
                elif key.strip() == "core id":
                    core = value.strip()
                    cores.add((physical, core))
    except OSError:  # pragma: no cover - no /proc
        pass
    return max(1, min(usable, len(cores) or usable))


def default_threads(cap: int = DEFAULT_THREAD_CAP) -> int:
    """CPU threads a training command uses unless told otherwise: the physical cores, at most `cap`.

    A trainer that takes every core makes each of its steps wait for the slowest of them, and on a
    machine shared with other work one busy core stalls it; two threads keep most of the speed-up.
    """
    return max(1, min(physical_cores(), cap))


def use_threads(threads: int) -> None:
    """Run torch (intra- and inter-op) and faiss (OpenMP) on `threads` CPU threads from now on.

    torch lets the inter-op pool be sized once, before any parallel work; later calls keep the size
    it has. Calling again with the same count changes nothing, so every stage of a run may call it.
    """
    import torch

    if threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        with contextlib.suppress(RuntimeError):  # already sized: torch allows it only once
            torch.set_num_interop_threads(threads)
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a hard dependency
        return
    faiss.omp_set_num_threads(threads)
