"""A caller's search reaches the cluster with the caller's credentials on every request, never dsr's.

The real Elasticsearch and OpenSearch nodes (without security) sit behind a proxy that records the
headers of every request it relays. dsr's backend is connected with its own API key; a search made
for a caller (`SearchRequest(caller=...)`) must send the caller's `Authorization` and `Cookie` with
the term search, the engine's kNN and similarity lookups and every `mget`, and dsr's key with none.
The one request of a caller's search that carries no caller's credentials is the backend's question,
once per process, whether the cluster asks for credentials at all: it carries none, dsr's included.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from dsr.backends import Caller, SearchBackend, connect
from dsr.catalog import numeric_field
from dsr.encoders.hashing import HashingEncoder
from dsr.reranker.base import Candidate
from dsr.search import EngineVectors, HybridSearcher, SearchRequest
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

from ...support.relay_proxy import RelayProxy
from ...support.shoes import flat_sidecar, index_with_vectors

DIM = 32
DSR_KEY = "dsr-own-api-key"
DSR_AUTH = f"ApiKey {DSR_KEY}"
CALLER = Caller({"authorization": "Basic Y2FsbGVyOnNlY3JldA==", "cookie": "session=abc"})


class RecordingProxy(RelayProxy):
    """Relays every request to the cluster and records its path and headers."""

    def __init__(self, upstream: str) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        super().__init__(upstream)

    def take(self) -> list[tuple[str, dict[str, str]]]:
        """The requests recorded since the last call."""
        with self._lock:
            seen, self.seen = self.seen, []
        return seen

    def step_in(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.seen.append((path, {k.lower(): v for k, v in headers.items()}))
        return None


class CheapestFirst:
    """A transparent ranker (cheaper first) that reads the price of every candidate."""

    item_fields = ("price",)

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        return np.array([-numeric_field(c.item, "price") for c in candidates], dtype=np.float32)


def catalog() -> list[dict[str, Any]]:
    colors, kinds = ["red", "blue", "green"], ["boots", "sneakers", "sandals", "slippers"]
    return [{"id": f"p{i:02d}", "title": f"{colors[i % 3]} {kinds[i % 4]} {i}", "brand": "acme",
             "price": float(10 + i % 7)} for i in range(40)]


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


@pytest.fixture
def indexed(cluster: SearchBackend) -> Iterator[tuple[str, FaissIndex]]:
    index = f"dsr-test-caller-{uuid.uuid4().hex[:8]}"
    rows = catalog()
    sidecar = flat_sidecar(rows, index_with_vectors(cluster, index, rows, DIM), DIM)
    try:
        yield index, sidecar
    finally:
        cluster.delete_index(index)


@pytest.fixture
def proxied(cluster: SearchBackend) -> Iterator[tuple[RecordingProxy, SearchBackend]]:
    proxy = RecordingProxy(cluster.url)
    backend = connect(ConnectionSettings(engine_url=proxy.url, api_key=DSR_KEY), flavor=cluster.flavor)
    yield proxy, backend
    backend.close()
    proxy.close()


def searcher_kinds(backend: SearchBackend, index: str, sidecar: FaissIndex) -> dict[str, HybridSearcher]:
    encoder = HashingEncoder(DIM)
    return {"sidecar": HybridSearcher(backend, index, encoder, sidecar, CheapestFirst()),
            "engine": HybridSearcher(backend, index, encoder, EngineVectors(backend, index), CheapestFirst())}


def test_every_request_of_a_callers_search_carries_the_callers_headers_and_none_of_dsrs(proxied, indexed):
    proxy, backend = proxied
    index, sidecar = indexed
    paths: set[str] = set()
    for name, searcher in searcher_kinds(backend, index, sidecar).items():
        proxy.take()
        result = searcher.run(SearchRequest("red boots", size=5, term_k=10, knn_k=10, caller=CALLER))
        assert len(result.hits) == 5 and result.vector_hits > 0 and result.term_hits > 0, name
        seen = proxy.take()
        probes = [headers for path, headers in seen if path == "/"]
        assert all("authorization" not in h and "cookie" not in h for h in probes), name
        seen = [(path, headers) for path, headers in seen if path != "/"]
        assert seen, name
        for path, headers in seen:
            assert headers.get("authorization") == CALLER.headers["authorization"], (name, path)
            assert headers.get("cookie") == CALLER.headers["cookie"], (name, path)
            assert DSR_KEY not in " ".join(headers.values()), (name, path)
        paths |= {path.split("?")[0].rsplit("/", 1)[-1] for path, _ in seen}
        searcher.close()
    assert {"_search", "_mget"} <= paths  # term, kNN and similarity searches; sidecar neighbours' sources


def test_a_caller_without_credentials_reaches_the_cluster_without_any(proxied, indexed):
    proxy, backend = proxied
    index, sidecar = indexed
    searcher = searcher_kinds(backend, index, sidecar)["engine"]
    proxy.take()
    result = searcher.run(SearchRequest("green sandals", size=3, term_k=10, knn_k=10, caller=Caller()))
    assert len(result.hits) == 3  # the node has no security: the search is as it always was
    seen = proxy.take()
    assert seen and all("authorization" not in h and "cookie" not in h for _, h in seen)
    searcher.close()


def test_dsrs_own_searches_keep_dsrs_credentials(proxied, indexed):
    proxy, backend = proxied
    index, sidecar = indexed
    searcher = searcher_kinds(backend, index, sidecar)["sidecar"]
    proxy.take()
    assert searcher.run(SearchRequest("blue sneakers", size=3, term_k=10, knn_k=10)).hits
    seen = proxy.take()
    assert seen and all(h.get("authorization") == DSR_AUTH for _, h in seen)
    searcher.close()


def test_a_callers_view_shares_the_backends_connections(proxied):
    _, backend = proxied
    view = backend.for_caller(CALLER)
    assert view is not backend and view.url == backend.url
    view.close()  # closes nothing of the backend's
    assert backend.index_exists(f"dsr-test-missing-{uuid.uuid4().hex[:6]}") is False
    assert "secret" not in repr(CALLER) and "Basic" not in repr(CALLER)


def test_on_a_cluster_without_security_a_callers_search_is_the_same_as_dsrs_own(proxied, indexed):
    _, backend = proxied
    index, sidecar = indexed
    sidecar.upsert(["ghost-1"], HashingEncoder(DIM).encode_queries(["red boots"]))  # never in the index
    assert backend.hides_from_callers() is False
    searcher = searcher_kinds(backend, index, sidecar)["sidecar"]
    request = SearchRequest("red boots", size=5, term_k=10, knn_k=10)
    own, callers = searcher.run(request), searcher.run(dataclasses.replace(request, caller=CALLER))
    assert [h.id for h in callers.hits] == [h.id for h in own.hits]
    assert callers.warnings == own.warnings and "not found in index" in callers.warnings[0]
    searcher.close()
