"""The ingest checkpoint and the rejects file: what makes a killed ingest resumable without a trace lost.

The checkpoint says "the first `rows_done` rows of this exact catalog are in both stores or in the
rejects file, which was `rejects_bytes` long at that moment". It is written (atomically) only after a
batch was acknowledged by the cluster and journaled by the sidecar. A re-run truncates the rejects
file back to `rejects_bytes`, skips `rows_done` rows and carries on; the batch that was in flight when
the process died is simply written again, which is harmless because both stores upsert by id.
A resumed run also checks, while it skips the done rows, that the sidecar still holds what the
checkpoint counts as done (a journal record lost to damage would otherwise go unnoticed), and
re-encodes and re-writes whatever it lacks.

A run that reaches the end deletes its checkpoint and leaves a completion record beside it
(`completion_path`): which catalog (path, size, mtime, and a sha256 of the whole file), index, model,
options and sidecar it ingested, what it counted, and the state of the sidecar and the cluster index
it left behind. Running the same ingest again is then a no-op that says so, as long as none of that
has changed; `--force` ingests anyway. The record is removed as soon as a run starts writing, so it
never describes a half-done state.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsr.sidecar.storage import JOURNAL, atomic_write_bytes, current_version, sha256_file

CHECKPOINT_VERSION = 1


def fingerprint(path: Path) -> dict[str, Any]:
    """Size, mtime and a hash of the head and tail: enough to tell that a catalog file changed."""
    stat = path.stat()
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(1 << 16))
        if stat.st_size > 1 << 17:
            f.seek(-(1 << 16), os.SEEK_END)
            h.update(f.read())
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256_head_tail": h.hexdigest()}


@dataclass
class Checkpoint:
    catalog: str
    index: str
    fingerprint: dict[str, Any]
    rows_done: int = 0
    rejects_bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    version: int = CHECKPOINT_VERSION

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, json.dumps(asdict(self), indent=1).encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint at `path`, or None when there is none or it cannot be trusted."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != CHECKPOINT_VERSION:
                return None
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def matches(self, catalog: Path, index: str) -> bool:
        return (self.catalog == str(catalog.resolve()) and self.index == index
                and self.fingerprint == fingerprint(catalog))


class RejectsFile:
    """Appends one JSON line per rejected row: line, id (or null), reason, and the raw row."""

    def __init__(self, path: Path, *, keep_bytes: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("ab")
        self._f.truncate(keep_bytes)  # drop lines written after the checkpoint we resume from
        self._f.seek(keep_bytes)
        self.count = 0

    def write(self, line: int | None, item_id: str | None, reason: str, raw: str) -> None:
        record = {"line": line, "id": item_id, "reason": reason, "raw": raw}
        self._f.write(json.dumps(record, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n")
        self.count += 1

    def sync(self) -> int:
        """Make every line so far durable; returns the file length to record in the checkpoint."""
        self._f.flush()
        os.fsync(self._f.fileno())
        return self._f.tell()

    def close(self) -> None:
        self._f.close()


# ------------------------------------------------------------------------------------ completion record


COMPLETION_VERSION = 1


def completion_path(checkpoint_path: Path) -> Path:
    """Where the completion record of the ingest checkpointed at `checkpoint_path` lives."""
    name = checkpoint_path.name
    stem = name[: -len(".checkpoint.json")] if name.endswith(".checkpoint.json") else checkpoint_path.stem
    return checkpoint_path.with_name(f"{stem}.done.json")



def model_identity(spec: str | None) -> dict[str, Any]:
    """What tells one item encoder from another: its name, or a model directory and its files' sizes/mtimes."""
    text = "minilm" if spec is None else str(spec)
    path = Path(text)
    if text == "minilm" or text.startswith("hashing") or not path.is_dir():
        return {"model": text}
    files = sorted((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in path.rglob("*") if f.is_file())
    return {"model": str(path.resolve()),
            "files_sha256": hashlib.sha256(json.dumps(files).encode("utf-8")).hexdigest()}


def sidecar_state(directory: Path) -> dict[str, Any] | None:
    """The sidecar's snapshot and journal length: any write through a `SidecarStore` changes one of them."""
    directory = Path(directory)
    version = current_version(directory) if directory.is_dir() else None
    if version is None:
        return None
    journal = directory / JOURNAL
    return {"version": version, "journal_bytes": journal.stat().st_size if journal.exists() else 0}


@dataclass(frozen=True)
class Completion:
    """What a finished ingest did and left behind; see the module docstring."""

    catalog: str
    index: str
    fingerprint: dict[str, Any]
    sha256: str
    model: dict[str, Any]
    options: dict[str, Any]
    sidecar: str
    sidecar_state: dict[str, Any] | None
    cluster_count: int
    counts: dict[str, int]
    rejects_file: str
    finished_at: str
    version: int = COMPLETION_VERSION

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, json.dumps(asdict(self), indent=1).encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> Completion | None:
        """The record at `path`, or None when there is none or it cannot be trusted (then the ingest runs)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != COMPLETION_VERSION:
                return None
            return cls(**data)
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def change_since(self, *, catalog: Path, index: str, model: dict[str, Any], options: dict[str, Any],
                     sidecar: Path, cluster_count: int | None) -> str | None:
        """Why a run with these inputs is not a no-op, or None when nothing it would write has changed.

        `cluster_count` is the index's document count now (None: no such index). The catalog's content
        is hashed last, only once everything cheaper matched.
        """
        if self.catalog != str(catalog.resolve()) or self.index != index:
            return "the last ingest recorded was of another catalog or index"
        if self.model != model:
            return f"the model changed ({self.model.get('model')} -> {model.get('model')})"
        if self.options != options:
            return "the ingest options changed"
        if self.sidecar != str(Path(sidecar).resolve()) or self.sidecar_state != sidecar_state(sidecar):
            return "the sidecar changed since"
        if cluster_count != self.cluster_count:
            return (f"the index holds {cluster_count} documents, {self.cluster_count} when it was ingested"
                    if cluster_count is not None else "the index is gone")
        if catalog.stat().st_size != self.fingerprint.get("bytes") or sha256_file(catalog) != self.sha256:
            return "the catalog changed"
        return None
