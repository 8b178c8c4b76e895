"""The steps `dsr ingest` and `dsr attach` take alike for each batch and at the end of a run.

Both encode a batch with the item tower, keep of it what the cluster acknowledged, send what it
refused to the rejects file, move their checkpoint only once the sidecar and the rejects file are
durable, and drop the checkpoint only when the run is complete. Keeping these steps in one place
keeps the two commands' consistency rules (see `dsr.ingest.pipeline`) from drifting apart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from dsr.encoders.base import Encoder
from dsr.errors import UsageError
from dsr.ingest.checkpoint import RejectsFile
from dsr.ingest.writer import WriteOutcome
from dsr.sidecar.store import SidecarStore

EXIT_OK = 0
EXIT_REJECTED = 4
EXIT_TOO_MANY_REJECTS = 5

_TIMERS = ("seconds", "encode_seconds", "cluster_seconds", "sidecar_seconds")


class RunReport(Protocol):
    """The counters and timers of a run that the shared steps keep."""

    rejected: int
    stopped: bool
    encode_seconds: float
    seconds: float

    @property
    def items_per_second(self) -> float: ...


class RunOptions(Protocol):
    @property
    def max_rejects(self) -> int | None: ...


class RunCheckpoint(Protocol):
    rejects_bytes: int
    counts: dict[str, int]

    def save(self, path: Path) -> None: ...


R = TypeVar("R", bound=RunReport)
Opts = TypeVar("Opts", bound=RunOptions)


def check_batch_options(batch_size: int, max_rejects: int | None) -> None:
    """Refuse, before anything is read, the batch options no run can follow."""
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if max_rejects is not None and max_rejects < 0:
        raise UsageError("--max-rejects must not be negative")


def exit_code(report: RunReport) -> int:
    return EXIT_TOO_MANY_REJECTS if report.stopped else EXIT_REJECTED if report.rejected else EXIT_OK


def report_dict(report: RunReport) -> dict[str, Any]:
    """A report's fields for JSON output, its timers rounded to the millisecond."""
    out = asdict(report)  # type: ignore[call-overload]  # reports are dataclasses
    out["items_per_second"] = round(report.items_per_second, 1)
    for key in _TIMERS:
        out[key] = round(out[key], 3)
    return out


def model_identity(encoder: Encoder, model: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a checkpoint (or completion record) says of the encoder, to tell it from another one."""
    return {"encoder": type(encoder).__name__, "dim": encoder.dim, **(model or {})}


def open_sidecar(sidecar_dir: Path, encoder: Encoder, kind: str) -> SidecarStore:
    """The sidecar with item records, so serving re-ranks its neighbours without reading the cluster."""
    return SidecarStore.open(sidecar_dir, dim=encoder.dim, kind=kind, device="cpu", keep_records=True)


def acknowledged(ids: Sequence[str], outcome: WriteOutcome) -> list[int]:
    """Positions in `ids` of the documents the cluster acknowledged: only those reach the sidecar."""
    acked = set(outcome.acknowledged)
    return [n for n, item_id in enumerate(ids) if item_id in acked]


class BatchRun(Generic[R, Opts]):
    """State both commands keep through a run: the encoder, the sidecar, the rejects file, counters."""

    def __init__(self, encoder: Encoder, store: SidecarStore, rejects: RejectsFile, options: Opts, report: R) -> None:
        self.encoder = encoder
        self.store = store
        self.rejects = rejects
        self.options = options
        self.report = report

    def reject(self, line: int | None, item_id: str | None, reason: str, raw: str) -> None:
        self.rejects.write(line, item_id, reason, raw)
        self.report.rejected += 1

    @property
    def over_limit(self) -> bool:
        limit = self.options.max_rejects
        return limit is not None and self.report.rejected > limit

    def encode(self, items: list[dict[str, Any]]) -> np.ndarray:
        """The items' vectors; the time it took counts as encoding."""
        t0 = time.perf_counter()
        vectors = np.asarray(self.encoder.encode_items(items), dtype=np.float32)
        self.report.encode_seconds += time.perf_counter() - t0
        return vectors

    def save_progress(self, checkpoint: RunCheckpoint, path: Path, counts: dict[str, int]) -> None:
        """Move the checkpoint past what is written, once the rejects file holds the batch's rejects."""
        checkpoint.rejects_bytes = self.rejects.sync()
        checkpoint.counts = counts
        checkpoint.save(path)

    def finish(self, checkpoint_path: Path, *, complete: bool) -> None:
        """Make the sidecar and the rejects file durable; drop the checkpoint if nothing is left to do."""
        self.store.checkpoint()  # fold the journal into a snapshot
        self.rejects.sync()
        if complete:
            checkpoint_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.store.close()
        self.rejects.close()
