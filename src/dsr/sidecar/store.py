"""`SidecarStore`: a `FaissIndex` bound to its directory, every change durable when the call returns.

Ingest writes through it: each batch is appended to the journal and fsynced (cheap), and
`checkpoint()` folds the journal into a new snapshot (expensive, done at the end of a run). Anyone
calling `FaissIndex.load(directory)` meanwhile sees the snapshot plus the journal, i.e. every batch
acknowledged so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsr.errors import VectorIndexError
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.storage import JournalWriter, current_version, is_sidecar_dir, reset_journal


class SidecarStore:
    def __init__(self, directory: Path, index: FaissIndex, version: str) -> None:
        self.directory = Path(directory)
        self.index = index
        self._version = version
        self._journal: JournalWriter | None = JournalWriter(self.directory, version)

    @classmethod
    def open(cls, directory: Path, *, dim: int, kind: str = "auto", device: str = "cpu",
             **options: Any) -> SidecarStore:
        """Open the sidecar at `directory`, creating an empty one of `kind` when there is none."""
        directory = Path(directory)
        if is_sidecar_dir(directory):
            index = FaissIndex.load(directory, device=device)
            if index.dim != dim:
                raise VectorIndexError(
                    f"sidecar {directory} holds {index.dim}-dimensional vectors but the encoder makes {dim}; "
                    "use another --sidecar directory or delete this one"
                )
            version = current_version(directory)
            assert version is not None
        else:
            index = FaissIndex(dim, kind=kind, device=device, **options)
            version = index.save_snapshot(directory)
            reset_journal(directory, version)
        return cls(directory, index, version)

    def __len__(self) -> int:
        return len(self.index)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        self._writer().append("upsert", list(ids), np.asarray(vectors, np.float32))
        self.index.upsert(ids, vectors)

    def delete(self, ids: Sequence[str]) -> int:
        present = [i for i in ids if i in self.index]
        if present:
            self._writer().append("delete", present)
        return self.index.delete(present)

    def checkpoint(self) -> None:
        """Write a new snapshot holding everything so far and start an empty journal on top of it."""
        self._writer()
        version = self.index.save_snapshot(self.directory)
        assert self._journal is not None
        self._journal.close()
        reset_journal(self.directory, version)
        self._version = version
        self._journal = JournalWriter(self.directory, version)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _writer(self) -> JournalWriter:
        if self._journal is None:
            raise VectorIndexError(f"sidecar store {self.directory} is closed")
        return self._journal

    def __enter__(self) -> SidecarStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
