"""`SidecarStore`: a `FaissIndex` bound to its directory, every change durable when the call returns.

Ingest writes through it: each batch is appended to the journal and fsynced (cheap), and
`checkpoint()` folds the journal into a new snapshot (expensive, done at the end of a run). Anyone
calling `FaissIndex.load(directory)` meanwhile sees the snapshot plus the journal, i.e. every batch
acknowledged so far. With `keep_records`, the fields a ranker can read of each item are written
beside its vector (`dsr.sidecar.items`), in the same call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsr.errors import VectorIndexError
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords
from dsr.sidecar.storage import JournalWriter, current_version, is_sidecar_dir, reset_journal


class SidecarStore:
    def __init__(self, directory: Path, index: FaissIndex, version: str,
                 records: ItemRecords | None = None) -> None:
        self.directory = Path(directory)
        self.index = index
        self.records = records
        self._version = version
        self._journal: JournalWriter | None = JournalWriter(self.directory, version)

    @classmethod
    def open(cls, directory: Path, *, dim: int, kind: str = "auto", device: str = "cpu",
             keep_records: bool = False, **options: Any) -> SidecarStore:
        """Open the sidecar at `directory`, creating an empty one of `kind` when there is none.

        `keep_records`: also keep a record of every upserted item, with every field a ranker can read
        (`ItemRecords.open_for_every_scalar`); without it, records already in the directory are
        still kept in step with the vectors.
        """
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
        records = (ItemRecords.open_for_every_scalar(directory) if keep_records
                   else ItemRecords.open_existing(directory))
        return cls(directory, index, version, records)

    def __len__(self) -> int:
        return len(self.index)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray,
               items: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Upsert the vectors (and, when records are kept, the `items` they were encoded from)."""
        self._writer().append("upsert", list(ids), np.asarray(vectors, np.float32))
        self.index.upsert(ids, vectors)
        if self.records is not None and items is not None:
            self.records.upsert({**item, "id": doc_id} for doc_id, item in zip(ids, items, strict=True))

    def delete(self, ids: Sequence[str]) -> int:
        present = [i for i in ids if i in self.index]
        if present:
            self._writer().append("delete", present)
        if self.records is not None:
            self.records.delete(ids)
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
        if self.records is not None:
            self.records.close()

    def _writer(self) -> JournalWriter:
        if self._journal is None:
            raise VectorIndexError(f"sidecar store {self.directory} is closed")
        return self._journal

    def __enter__(self) -> SidecarStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
