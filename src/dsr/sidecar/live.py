"""`LiveVectors`: a sidecar loaded in-process that takes up what other processes add to its journal.

Several `dsr serve` replicas (and `dsr sync`) share one sidecar directory. Whoever applies a write
appends it to the directory's journal (`dsr.ingest.follow`); every replica's `LiveVectors` is asked
to `refresh()` now and then (`dsr.server.writes` does it every `--reload-interval` seconds) and
replays only the journal records it has not applied yet, so a write through one replica reaches the
vectors every replica searches within that interval. A new snapshot (a checkpoint folded the
journal) is loaded whole. Replaying records already applied is harmless: an upsert of an unchanged
vector and the delete of an absent id change nothing, and records are replayed in their order.

Searches and replays take one lock: FAISS structures must not be read while they grow.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsr.sidecar.base import Neighbours
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.storage import JOURNAL, current_version, read_journal


class LiveVectors:
    """A `FaissIndex` read from `directory`, kept up with the journal on `refresh()`; else as the index."""

    def __init__(self, directory: Path, *, device: str = "auto", **options: Any) -> None:
        self.directory = Path(directory)
        self._device = device
        self._options = options
        self._lock = threading.RLock()
        self._load()

    def _load(self) -> None:
        version = current_version(self.directory)
        # counted before the load: records the load applies on top of these are replayed again, harmlessly
        applied = len(read_journal(self.directory, version)) if version is not None else 0
        state = self._state()
        index = FaissIndex.load(self.directory, device=self._device, **self._options)
        with self._lock:
            self.index = index
            self._version = version
            self._applied = applied
            self._seen = state

    def _state(self) -> tuple[str | None, int]:
        try:
            size = (self.directory / JOURNAL).stat().st_size
        except OSError:
            size = -1
        return current_version(self.directory), size

    def refresh(self) -> bool:
        """Take up what the directory holds beyond what was applied; whether anything was read."""
        state = self._state()
        if state == self._seen:
            return False
        if state[0] != self._version:
            self._load()
            return True
        records = read_journal(self.directory, self._version) if self._version is not None else []
        with self._lock:
            for record in records[self._applied:]:
                if record.op == "upsert" and record.vectors is not None:
                    self.index.upsert(record.ids, record.vectors)
                else:
                    self.index.delete(record.ids)
            self._applied = len(records)
            self._seen = state
        return True

    # -- the reads a searcher makes, under the lock ---------------------------------------------
    @property
    def origin(self) -> str:
        return self.index.origin

    @property
    def applies_filters(self) -> bool:
        return self.index.applies_filters

    @property
    def dim(self) -> int:
        return self.index.dim

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.index

    def neighbours(self, query: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> Neighbours:
        with self._lock:
            return self.index.neighbours(query, k, filters)

    def similarities(self, query: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        with self._lock:
            return self.index.similarities(query, ids)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        with self._lock:
            return self.index.search(vectors, k)

    def ids(self) -> list[str]:
        with self._lock:
            return self.index.ids()

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self.index.vectors(ids)

    def __getattr__(self, name: str) -> Any:  # stats(), config, kind, ...: as the index has them
        if name in ("index", "_lock"):
            raise AttributeError(name)
        return getattr(self.index, name)
