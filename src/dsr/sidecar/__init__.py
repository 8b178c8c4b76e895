"""dsr.sidecar: the vector index (FAISS Flat / HNSW / IVF-PQ), persisted atomically, local or over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsr.sidecar.base import Neighbours, VectorIndex, VectorReader


def open_vector_index(location: str | Path, *, device: str = "auto", **options: Any) -> VectorIndex:
    """The sidecar at `location`: a directory (loaded in-process) or the URL of `dsr sidecar serve`.

    An `http(s)://` location gives a read-only `RemoteVectorIndex`; anything else is a directory.
    """
    text = str(location)
    if text.startswith(("http://", "https://")):
        from dsr.sidecar.remote import RemoteVectorIndex

        return RemoteVectorIndex(text, **options)
    from dsr.sidecar.faiss_index import FaissIndex

    return FaissIndex.load(Path(text), device=device, **options)


def default_sidecar_dir(data_dir: Path, index_name: str) -> Path:
    """Where `dsr ingest` keeps the sidecar of an index unless `--sidecar` says otherwise."""
    return Path(data_dir) / "sidecar" / index_name


__all__ = ["Neighbours", "VectorIndex", "VectorReader", "default_sidecar_dir", "open_vector_index"]
