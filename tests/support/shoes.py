"""A synthetic shoe catalog and transparent parts to search it with: rankers whose order is known in
advance (cheapest first) and a backend that notes the `mget`s the searcher makes.

Colours, kinds and brands cycle with different periods, so every query over them has term matches
of several brands and prices, and a price filter or a brand filter keeps some of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.catalog import numeric_field
from dsr.encoders.hashing import HashingEncoder
from dsr.reranker.base import Candidate
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords

COLORS = ["red", "blue", "green", "black", "white"]
KINDS = ["sneakers", "boots", "sandals", "running shoes", "hiking boots", "slippers"]
BRANDS = ["acme", "zenit", "orbit"]


def index_with_vectors(backend: SearchBackend, index: str, rows: Sequence[Mapping[str, Any]], dim: int
                       ) -> np.ndarray:
    """`rows` into a new `index` with their hashing vectors in its `embedding` field, refreshed; the vectors."""
    vectors = HashingEncoder(dim).encode_items(rows)
    backend.ensure_index(IndexSpec(index, dims=dim))
    result = backend.bulk_upsert(index, [{**r, "embedding": v.tolist()} for r, v in zip(rows, vectors, strict=True)])
    assert result.ok, result.failed[:3]
    backend.refresh(index)
    return vectors


def flat_sidecar(rows: Sequence[Mapping[str, Any]], vectors: np.ndarray, dim: int) -> FaissIndex:
    """An exact in-memory sidecar holding `vectors` under the rows' ids."""
    sidecar = FaissIndex(dim, kind="flat", device="cpu")
    sidecar.upsert([str(r["id"]) for r in rows], vectors)
    return sidecar


def catalog(n: int = 90) -> list[dict[str, Any]]:
    """`n` shoes `p000`, `p001`, ...; a smaller catalog is the start of a larger one."""
    rows = []
    for i in range(n):
        color, kind, brand = COLORS[i % 5], KINDS[(i // 5) % 6], BRANDS[i % 3]
        rows.append({"id": f"p{i:03d}", "title": f"{color} {kind} {i}", "brand": brand,
                     "category": f"Shoes > {kind.title()}", "price": float(100 - i % 37),
                     "description": f"{brand} {kind} in {color}"})
    return rows


class CheapestFirst:
    """A transparent `Reranker`: cheaper items first, so the re-ranked order is predictable. It keeps
    the candidates of its last call, to check what a ranker is given."""

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
    """A ranker that fails after it was given the candidates, as one whose weights did not load."""

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        super().score(query, candidates, user)
        raise RuntimeError("ranker weights not loaded")


def records(directory: Path, rows: Sequence[Mapping[str, Any]] | None = None) -> ItemRecords:
    """Item records of the title and price (what `TitlePriceRanker` reads) of `rows`, by default the catalog."""
    recs = ItemRecords.open(directory / "records", TitlePriceRanker.item_fields)
    recs.upsert(rows if rows is not None else catalog())
    return recs


class MgetCounting:
    """The real backend, noting the ids of each `mget` the searcher makes."""

    def __init__(self, backend: SearchBackend) -> None:
        self._backend = backend
        self.mget_ids: list[list[str]] = []

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.mget_ids.append(list(ids))
        return self._backend.mget(index, ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)
