"""Resumable stages of `dsr train`: what a finished stage leaves behind, and when a re-run may skip it.

A stage writes its outputs first and its record last (atomically), and removes the record before it
starts, so a record always vouches for complete outputs. The record keeps the stage's config: what it
read (content hashes of its inputs and of the models it builds on) and how it trained. The same
command run again skips a stage whose record matches its config and whose outputs are there; a
changed input, model or setting runs it again, and so does every stage after it, whose configs hold
the hashes of what it wrote.

A stage that was cut short by its time budget is complete but not the stage a larger budget would
give: it is kept only while the run's budget is the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsr.sidecar.storage import atomic_write_bytes


def config_key(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a stage config (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StageRecord:
    """A finished stage: its config, how long it took and whether its budget cut it short."""

    name: str
    key: str
    config: dict[str, Any]
    seconds: float
    stopped_at_budget: bool = False
    budget_s: float | None = None  # the run's whole budget, kept when it cut the stage short
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageRecord:
        return cls(name=str(data["name"]), key=str(data["key"]), config=dict(data.get("config") or {}),
                   seconds=float(data.get("seconds") or 0.0), stopped_at_budget=bool(data.get("stopped_at_budget")),
                   budget_s=data.get("budget_s"), summary=dict(data.get("summary") or {}))


def is_current(record: StageRecord | None, key: str, budget_s: float | None) -> bool:
    """Whether a stage with config `key`, in a run with budget `budget_s`, may keep `record`'s outputs."""
    if record is None or record.key != key:
        return False
    return not record.stopped_at_budget or record.budget_s == budget_s


class StageStore:
    """The records of one output directory's stages, one JSON file each."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def read(self, name: str) -> StageRecord | None:
        """The stage's record, or None when there is none or it cannot be read (the stage then runs)."""
        try:
            return StageRecord.from_dict(json.loads(self.path(name).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def clear(self, name: str) -> None:
        """Forget the stage before it runs, so a run that dies part-way leaves no record behind."""
        self.path(name).unlink(missing_ok=True)

    def write(self, record: StageRecord) -> None:
        data = json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
        atomic_write_bytes(self.path(record.name), data.encode("utf-8"))
