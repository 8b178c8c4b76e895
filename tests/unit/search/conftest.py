"""Real parts for the searcher, with no servers: the shoe catalog (tests/support/shoes.py) in an embedded
(tantivy) index and in a FAISS sidecar, with the hashing query tower's item vectors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pytest

from dsr.backends.embedded import EmbeddedBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.sidecar.faiss_index import FaissIndex

from ...support.shoes import catalog, index_with_vectors

DIM = 64
INDEX = "products"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBackend]:
    """The catalog in an embedded index, with its item vectors in the embedding field."""
    be = EmbeddedBackend(tmp_path_factory.mktemp("embedded"))
    rows = catalog()
    index_with_vectors(be, INDEX, rows, DIM)
    yield be
    be.close()


def exact_sidecar(extra: Mapping[str, np.ndarray] | None = None) -> FaissIndex:
    """The catalog's item vectors (plus `extra` ids never written to the index) in an exact sidecar."""
    rows = catalog()
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in rows], HashingEncoder(DIM).encode_items(rows))
    if extra:
        sidecar.upsert(list(extra), np.stack(list(extra.values())))
    return sidecar


@pytest.fixture
def sidecar() -> FaissIndex:
    return exact_sidecar()

