"""Ingest runs as the resume tests make them: one command's options, an encoder that dies mid-run as a
killed process would, and a backend that counts the calls that write to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsr.backends import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.ingest.pipeline import IngestOptions, IngestReport, ingest


class Stop(Exception):
    """Stands for the process dying mid-run."""


class DyingEncoder(HashingEncoder):
    """Encodes `batches` batches, then dies as a killed process would, before the next one is written."""

    def __init__(self, batches: int) -> None:
        super().__init__(16)
        self.left = batches

    def encode_items(self, items):
        if self.left == 0:
            raise Stop
        self.left -= 1
        return super().encode_items(items)


class CountingBackend:
    """The backend itself, with a count of the calls that write to it."""

    def __init__(self, backend: SearchBackend) -> None:
        self._backend = backend
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if name in ("bulk_upsert", "delete", "ensure_index", "delete_index"):
            def counted(*args, **kwargs):
                self.writes += 1
                return attr(*args, **kwargs)
            return counted
        return attr


def run(backend: SearchBackend, index: str, work: Path, *, encoder: HashingEncoder | None = None,
        force: bool = False) -> IngestReport:
    """Ingest `work`/catalog.jsonl in batches of 10, its sidecar, rejects and checkpoint beside it."""
    return ingest(work / "catalog.jsonl", backend=backend, index=index, encoder=encoder or HashingEncoder(16),
                  sidecar_dir=work / "sidecar", rejects_path=work / "rejects.jsonl",
                  checkpoint_path=work / "checkpoint.json",
                  options=IngestOptions(batch_size=10, progress=False, force=force), model={"model": "hashing:16"})
