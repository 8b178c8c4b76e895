"""Returned sources never carry the item vector, whoever created the index.

Indexes dsr creates keep the vector out of the stored `_source`, so they are read without a
query-time source filter (the engine then returns stored sources as they are). An index a shop
created itself may store the vector; there the filter stays and strips it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from dsr.backends import IndexSpec, SearchBackend, connect
from dsr.settings import ConnectionSettings

DOCS = [
    {"id": "a1", "title": "Cordless drill", "brand": "Acme", "price": 99.0, "embedding": [0.6, 0.8, 0.0, 0.0]},
    {"id": "a2", "title": "Drill bit set", "brand": "Zed", "price": 19.5, "embedding": [0.0, 0.6, 0.8, 0.0]},
]


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest, index_name: str) -> Iterator[tuple[SearchBackend, str]]:
    """The engine's backend and URL; the test's index is deleted from it afterwards."""
    url = request.getfixturevalue({"elasticsearch": "es_url", "opensearch": "os_url"}[request.param])
    backend = request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])
    yield backend, url
    backend.delete_index(index_name)


def _fresh(url: str) -> SearchBackend:
    """Another process's view of the cluster: nothing cached about any index."""
    return connect(ConnectionSettings(engine_url=url))


def _assert_sources_complete_without_vector(backend: SearchBackend, index: str) -> None:
    hits = backend.term_search(index, "drill", size=10)
    assert {h.id for h in hits} == {"a1", "a2"}
    for h in hits:
        assert "embedding" not in h.source
        assert h.source["title"] and "price" in h.source
    got = backend.mget(index, ["a1", "a2"])
    assert got["a1"]["brand"] == "Acme" and got["a2"]["price"] == 19.5
    assert all("embedding" not in s for s in got.values())


def test_an_index_dsr_created_is_read_without_a_source_filter(cluster, index_name: str) -> None:
    backend, url = cluster
    assert backend.ensure_index(IndexSpec(index_name, dims=4))
    assert backend.bulk_upsert(index_name, DOCS).ok
    backend.refresh(index_name)
    reader = _fresh(url)
    try:
        _assert_sources_complete_without_vector(reader, index_name)
        assert reader._source_excludes(index_name) == []  # the mapping already keeps the vector out
        hit = reader.knn_search(index_name, np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32), k=1)[0]
        assert hit.id == "a1" and "embedding" not in hit.source
    finally:
        reader.close()


def test_a_shop_index_that_stores_the_vector_still_has_it_stripped(cluster, index_name: str) -> None:
    backend, url = cluster
    raw = backend.client  # the shop's own index: default mapping, the vector kept in _source
    for doc in DOCS:
        raw.index(index=index_name, id=doc["id"], body=doc)
    raw.indices.refresh(index=index_name)
    assert "embedding" in raw.get(index=index_name, id="a1")["_source"]
    reader = _fresh(url)
    try:
        _assert_sources_complete_without_vector(reader, index_name)
        assert reader._source_excludes(index_name) == ["embedding"]
    finally:
        reader.close()


def test_a_missing_index_is_not_remembered_as_filtered(cluster, index_name: str) -> None:
    backend, url = cluster
    reader = _fresh(url)
    try:
        assert reader._source_excludes(index_name) == ["embedding"]  # unknown yet: filter, to be safe
        assert backend.ensure_index(IndexSpec(index_name, dims=4))
        assert reader._source_excludes(index_name) == []  # read again once the index exists
    finally:
        reader.close()
