"""The ingest checkpoint and the rejects file: what makes a killed ingest resumable without a trace lost.

The checkpoint says "the first `rows_done` rows of this exact catalog are in both stores or in the
rejects file, which was `rejects_bytes` long at that moment". It is written (atomically) only after a
batch was acknowledged by the cluster and journaled by the sidecar. A re-run truncates the rejects
file back to `rejects_bytes`, skips `rows_done` rows and carries on; the batch that was in flight when
the process died is simply written again, which is harmless because both stores upsert by id.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsr.sidecar.storage import atomic_write_bytes

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
