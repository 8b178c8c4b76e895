"""The SearchBackend contract, run against real Elasticsearch, real OpenSearch and the embedded index.

Every backend must behave the same way for everything the rest of dsr relies on.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dsr.backends import IndexSpec, SearchBackend
from dsr.errors import IndexNotFound, UsageError

DIMS = 4


def unit(*xs: float) -> list[float]:
    v = np.asarray(xs, dtype=np.float32)
    return (v / np.linalg.norm(v)).tolist()


CATALOG = [
    {"id": "shoe-1", "title": "Trail running shoe", "brand": "Acme", "category": "Footwear > Running",
     "price": 89.0, "embedding": unit(1, 0, 0, 0)},
    {"id": "kettle-1", "title": "Electric kettle", "description": "Boils water fast; pairs with a running shoe rack",
     "brand": "Zed", "category": "Kitchen > Appliances", "price": 35.5, "embedding": unit(0, 1, 0, 0)},
    {"id": "shoe-2", "title": "Road running shoe", "brand": "Zed", "category": "Footwear > Running",
     "price": 120.0, "embedding": unit(0.9, 0.1, 0, 0)},
    {"id": "lamp-1", "title": "Désk lamp — 北京 edition 🚀", "brand": "Lumo", "category": "Home > Lighting",
     "price": 20.0, "embedding": unit(0, 0, 1, 0)},
]


@pytest.fixture
def loaded(any_backend: SearchBackend, index_name: str) -> SearchBackend:
    assert any_backend.ensure_index(IndexSpec(index_name, dims=DIMS)) is True
    result = any_backend.bulk_upsert(index_name, CATALOG)
    assert result.ok, result.failed
    any_backend.refresh(index_name)
    return any_backend


def test_ensure_index_is_idempotent(loaded: SearchBackend, index_name: str) -> None:
    assert loaded.ensure_index(IndexSpec(index_name, dims=DIMS)) is False
    assert loaded.count(index_name) == len(CATALOG)


def test_upserting_the_same_id_twice_keeps_one_document(loaded: SearchBackend, index_name: str) -> None:
    changed = {**CATALOG[0], "title": "Trail running shoe v2", "price": 79.0}
    assert loaded.bulk_upsert(index_name, [changed]).ok
    loaded.refresh(index_name)
    assert loaded.count(index_name) == len(CATALOG)
    assert loaded.mget(index_name, ["shoe-1"])["shoe-1"]["price"] == 79.0
    assert sorted(loaded.iter_ids(index_name)) == sorted(d["id"] for d in CATALOG)


def test_delete_removes_documents_and_ignores_missing_ids(loaded: SearchBackend, index_name: str) -> None:
    result = loaded.delete(index_name, ["kettle-1", "never-there"])
    assert result.ok
    loaded.refresh(index_name)
    assert loaded.count(index_name) == len(CATALOG) - 1
    assert loaded.mget(index_name, ["kettle-1", "shoe-1"]).keys() == {"shoe-1"}


def test_a_title_match_outranks_a_description_match(loaded: SearchBackend, index_name: str) -> None:
    hits = loaded.term_search(index_name, "running shoe", size=10)
    ids = [h.id for h in hits]
    assert set(ids) == {"shoe-1", "shoe-2", "kettle-1"}
    assert ids.index("kettle-1") > max(ids.index("shoe-1"), ids.index("shoe-2"))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert "embedding" not in hits[0].source


def test_knn_returns_the_nearest_stored_vector(loaded: SearchBackend, index_name: str) -> None:
    hits = loaded.knn_search(index_name, np.asarray(unit(0.1, 0, 1, 0), dtype=np.float32), k=2)
    assert next(h.id for h in hits) == "lamp-1"
    assert hits[0].score == pytest.approx(float(np.dot(unit(0.1, 0, 1, 0), unit(0, 0, 1, 0))), abs=1e-3)
    assert hits[0].source["title"].startswith("Désk")


def test_knn_with_candidates_to_spare_finds_the_exact_top_k(any_backend: SearchBackend, index_name: str) -> None:
    # 60 random unit vectors and num_candidates above the count: every engine must then return the
    # exact top 10 in exact order, as a brute-force dot product finds them
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert any_backend.ensure_index(IndexSpec(index_name, dims=16))
    docs = [{"id": f"v{i}", "title": f"item {i}", "embedding": v.tolist()} for i, v in enumerate(vectors)]
    assert any_backend.bulk_upsert(index_name, docs).ok
    any_backend.refresh(index_name)
    for query in rng.normal(size=(12, 16)).astype(np.float32):
        query /= np.linalg.norm(query)
        exact = [f"v{i}" for i in np.argsort(-(vectors @ query), kind="stable")[:10]]
        hits = any_backend.knn_search(index_name, query, k=10, num_candidates=100)
        assert [h.id for h in hits] == exact

@pytest.mark.parametrize("filters, expected", [
    ({"brand": "Zed"}, {"shoe-2", "kettle-1"}),
    ({"brand": ["Acme", "Lumo"]}, {"shoe-1", "lamp-1"}),
    ({"price": {"gte": 50, "lt": 100}}, {"shoe-1"}),
    ({"category": "Footwear > Running", "price": {"gt": 100}}, {"shoe-2"}),
])
def test_filters_apply_to_term_and_knn_search(loaded: SearchBackend, index_name: str, filters, expected) -> None:
    term_ids = {h.id for h in loaded.term_search(index_name, "running shoe", size=10, filters=filters)}
    assert term_ids == expected & {"shoe-1", "shoe-2", "kettle-1"}
    knn_ids = {h.id for h in loaded.knn_search(index_name, np.asarray(unit(1, 0, 0, 0)), k=4, filters=filters)}
    assert knn_ids == expected


def test_unicode_titles_round_trip_and_are_searchable(loaded: SearchBackend, index_name: str) -> None:
    assert loaded.mget(index_name, ["lamp-1"])["lamp-1"]["title"] == "Désk lamp — 北京 edition 🚀"
    assert [h.id for h in loaded.term_search(index_name, "désk", size=3)] == ["lamp-1"]


def test_unknown_fields_are_kept(any_backend: SearchBackend, index_name: str) -> None:
    any_backend.ensure_index(IndexSpec(index_name, dims=DIMS))
    doc = {"id": "x1", "title": "Widget", "rating": 4.5, "attributes": {"color": "red"}, "embedding": unit(1, 1, 1, 1)}
    assert any_backend.bulk_upsert(index_name, [doc]).ok
    any_backend.refresh(index_name)
    source = any_backend.mget(index_name, ["x1"])["x1"]
    assert source["rating"] == 4.5 and source["attributes"] == {"color": "red"}


def test_invalid_filters_are_rejected_with_a_reason(loaded: SearchBackend, index_name: str) -> None:
    with pytest.raises(UsageError, match="price"):
        loaded.term_search(index_name, "shoe", filters={"price": {"between": 3}})


def test_searching_a_missing_index_raises_index_not_found(any_backend: SearchBackend, index_name: str) -> None:
    with pytest.raises(IndexNotFound):
        any_backend.term_search(index_name, "shoe")
