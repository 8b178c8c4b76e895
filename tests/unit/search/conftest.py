"""Real parts for the searcher, with no servers: an embedded (tantivy) index, a FAISS sidecar, the hashing
query tower, item records, and transparent rankers whose order can be checked exactly."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dsr.backends.base import IndexSpec
from dsr.backends.embedded import EmbeddedBackend
from dsr.catalog import numeric_field
from dsr.encoders.hashing import HashingEncoder
from dsr.reranker.base import Candidate
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords

DIM = 64
INDEX = "products"
COLORS = ["red", "blue", "green", "black", "white"]
KINDS = ["sneakers", "boots", "sandals", "running shoes", "hiking boots", "slippers"]
BRANDS = ["acme", "zenit", "orbit"]


def catalog() -> list[dict[str, Any]]:
    rows = []
    for i in range(90):
        color, kind, brand = COLORS[i % 5], KINDS[(i // 5) % 6], BRANDS[i % 3]
        rows.append({"id": f"p{i:03d}", "title": f"{color} {kind} {i}", "brand": brand,
                     "category": f"Shoes > {kind.title()}", "price": float(100 - i % 37),
                     "description": f"{brand} {kind} in {color}"})
    return rows


class CheapestFirst:
    """A transparent `Reranker` that keeps what it was given: cheaper items first."""

    def __init__(self) -> None:
        self.seen: list[Candidate] = []
        self.calls = 0

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        self.calls += 1
        self.seen = list(candidates)
        return np.array([-numeric_field(c.item, "price") for c in candidates], dtype=np.float32)


class TitlePriceRanker(CheapestFirst):
    """Cheapest first, declaring the only item fields it reads (so item records can stand in for sources)."""

    item_fields = ("title", "price")


class BrokenRanker(CheapestFirst):
    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        super().score(query, candidates, user)
        raise RuntimeError("ranker weights not loaded")


class MgetCounting:
    """The real backend, noting the ids of each `mget` the searcher makes."""

    def __init__(self, backend: EmbeddedBackend) -> None:
        self._backend = backend
        self.mget_ids: list[list[str]] = []

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.mget_ids.append(list(ids))
        return self._backend.mget(index, ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBackend]:
    """The catalog in an embedded index, with its item vectors in the embedding field."""
    be = EmbeddedBackend(tmp_path_factory.mktemp("embedded"))
    rows = catalog()
    vectors = HashingEncoder(DIM).encode_items(rows)
    be.ensure_index(IndexSpec(INDEX, dims=DIM))
    result = be.bulk_upsert(INDEX, [{**r, "embedding": v.tolist()} for r, v in zip(rows, vectors, strict=True)])
    assert result.ok, result.failed[:3]
    be.refresh(INDEX)
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


def records(directory: Path, rows: Sequence[Mapping[str, Any]] | None = None) -> ItemRecords:
    recs = ItemRecords.open(directory / "records", ("title", "price"))
    recs.upsert(rows if rows is not None else catalog())
    return recs
