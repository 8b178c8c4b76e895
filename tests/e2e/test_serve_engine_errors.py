"""A hybrid search the cluster refuses is answered as the cluster answers it; dsr's own bound answers 429.

On real Elasticsearch and OpenSearch nodes, the same bad search is sent straight to the cluster and
as an `ext.dsr` search through `dsr serve`: the cluster's 4xx (a bad query, too many clauses, a
filter on a field that cannot be searched) comes back with the cluster's status and `error` object,
its 429 (a tripped circuit breaker) as a 429; the cluster's own failure (5xx) is a 502 naming the
cluster and a cluster that does not answer in time a 504. A real breaker is tripped by lowering the
fielddata breaker's limit (a dynamic cluster setting, restored afterwards) and running a query that
loads fielddata, which nothing else in the suite does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from dsr.backends import connect
from dsr.backends.base import IndexSpec, SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.reranker.base import Candidate
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

from ..support.shoes import CheapestFirst, catalog

DIM = 32
TOO_MANY_CLAUSES = 9000  # above either engine's bool clause limit (8192 and 1024 on the suite's nodes)
LOADS_FIELDDATA = {"function_score": {"query": {"match": {"name": "red"}},
                                      "random_score": {"seed": 1, "field": "name"}}}


@dataclass
class Shop:
    url: str  # dsr serve
    backend: SearchBackend
    index: str

    def direct(self, body: Mapping[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.backend.url}/{self.index}/_search", json=body, timeout=60)

    def hybrid(self, body: Mapping[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}/{self.index}/_search", json=body, timeout=60)


def index_shop(backend: SearchBackend) -> tuple[str, FaissIndex]:
    """The shoe catalog with its vectors, and a `name` text field whose fielddata may be loaded."""
    index = f"dsr-e2e-errors-{uuid.uuid4().hex[:8]}"
    rows = [{**r, "name": r["title"]} for r in catalog(30)]
    vectors = HashingEncoder(DIM).encode_items(rows)
    backend.ensure_index(IndexSpec(index, dims=DIM))
    httpx.put(f"{backend.url}/{index}/_mapping",
              json={"properties": {"name": {"type": "text", "fielddata": True}}}).raise_for_status()
    result = backend.bulk_upsert(index, [{**r, "embedding": v.tolist()} for r, v in zip(rows, vectors, strict=True)])
    assert result.ok, result.failed[:3]
    backend.refresh(index)
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in rows], vectors)
    return index, sidecar


@pytest.fixture
def shop(request, serve_thread) -> Iterator[Shop]:
    backend = request.getfixturevalue(request.param)
    index, sidecar = index_shop(backend)
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), sidecar, CheapestFirst())
    app = create_app(ServeSettings(ConnectionSettings(backend.url), index=index), searcher=searcher)
    try:
        with serve_thread(app) as url:
            yield Shop(url, backend, index)
    finally:
        backend.delete_index(index)


BOTH = pytest.mark.parametrize("shop", ["es_backend", "os_backend"], indirect=True)


@contextlib.contextmanager
def fielddata_breaker_limit(url: str, limit: str) -> Iterator[None]:
    """The cluster's fielddata circuit breaker at `limit` for the block, then back to its default."""
    setting = "indices.breaker.fielddata.limit"
    httpx.put(f"{url}/_cluster/settings", json={"transient": {setting: limit}}).raise_for_status()
    try:
        yield
    finally:
        httpx.put(f"{url}/_cluster/settings", json={"transient": {setting: None}}, timeout=60).raise_for_status()


def dsr(query: Mapping[str, Any] | None = None, **ext: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query} if query is not None else {}
    return {**body, "ext": {"dsr": {"text": "red sneakers", "k": 10, "term_k": 10, **ext}}}


def too_many_clauses() -> dict[str, Any]:
    return {"bool": {"should": [{"term": {"title": f"t{i}"}} for i in range(TOO_MANY_CLAUSES)]}}


def filtered(clause: Mapping[str, Any]) -> dict[str, Any]:
    return {"bool": {"must": [{"match_all": {}}], "filter": [clause]}}


REFUSED = {
    # name: (the ext.dsr search, the same search sent to the cluster directly)
    "unknown query": (dsr({"no_such_query": {}}), {"query": {"no_such_query": {}}}),
    "too many clauses": (dsr(too_many_clauses()), {"query": too_many_clauses()}),
    "filter on _source": (dsr(filters={"_source": "x"}), {"query": filtered({"term": {"_source": "x"}})}),
    "filter on _seq_no": (dsr(filters={"_seq_no": "abc"}), {"query": filtered({"term": {"_seq_no": "abc"}})}),
}


@BOTH
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_search_the_cluster_refuses_gets_the_clusters_status_and_error(shop, case):
    hybrid_body, direct_body = REFUSED[case]
    want = shop.direct(direct_body)
    got = shop.hybrid(hybrid_body)
    assert want.status_code == 400, want.text
    assert got.status_code == want.status_code, got.text
    assert got.json() == want.json()  # the whole error object: type, reason, root_cause, failed shards
    assert got.headers["content-type"].startswith("application/json")
    assert got.headers.get("x-elastic-product") == want.headers.get("x-elastic-product")


@pytest.mark.parametrize("shop", ["es_backend"], indirect=True)
def test_a_tripped_circuit_breaker_is_a_429_with_the_clusters_error_also_for_concurrent_searches(shop):
    body = dsr(LOADS_FIELDDATA)
    with fielddata_breaker_limit(shop.backend.url, "1b"):
        want = shop.direct({"query": LOADS_FIELDDATA})
        got = shop.hybrid(body)
        with ThreadPoolExecutor(8) as pool:
            concurrent = list(pool.map(lambda _: shop.hybrid(body), range(8)))
    assert want.status_code == 429, want.text
    assert got.status_code == 429 and got.json() == want.json()
    assert got.json()["error"]["root_cause"][0]["type"] == "circuit_breaking_exception"
    # the breaker says the request alone is too large (PERMANENT): retrying later cannot help
    assert got.json()["error"]["root_cause"][0]["durability"] == "PERMANENT" and "retry-after" not in got.headers
    for r in concurrent:
        assert r.status_code == 429, r.text
        assert r.json()["error"]["type"] == want.json()["error"]["type"]
        assert r.json()["error"]["root_cause"][0]["type"] == "circuit_breaking_exception"
    assert shop.hybrid(body).status_code == 200  # the limit restored, the same search succeeds


@pytest.mark.parametrize("shop", ["os_backend"], indirect=True)
def test_the_clusters_own_failure_is_a_502_naming_the_cluster(shop):
    # OpenSearch reports the same tripped breaker inside a shard as a 500
    with fielddata_breaker_limit(shop.backend.url, "1b"):
        want = shop.direct({"query": LOADS_FIELDDATA})
        got = shop.hybrid(dsr(LOADS_FIELDDATA))
    assert want.status_code >= 500, want.text
    assert got.status_code == 502, got.text
    error = got.json()["error"]
    assert error["type"] == "dsr_upstream_exception"
    assert shop.backend.url in error["reason"] and str(want.status_code) in error["reason"]
    assert want.json()["error"]["type"] in error["reason"]


class BlackHole:
    """A TCP server that accepts connections and never answers: a cluster that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.sock.accept()[0])

    def close(self) -> None:
        for s in [*self.held, self.sock]:
            s.close()


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_a_cluster_that_does_not_answer_in_time_is_a_504(flavor, serve_thread, monkeypatch):
    module = f"dsr.backends.{flavor}"
    monkeypatch.setattr(f"{module}.REQUEST_TIMEOUT_S", 0.5)  # the client's per-request timeout
    monkeypatch.setattr(f"{module}.REQUEST_RETRIES", 0)
    hole = BlackHole()
    try:
        conn = ConnectionSettings(hole.url)
        searcher = HybridSearcher(connect(conn, flavor=flavor), "products", HashingEncoder(16))
        with serve_thread(create_app(ServeSettings(conn, index="products"), searcher=searcher)) as url:
            started = time.monotonic()
            r = httpx.post(f"{url}/products/_search", json=dsr(), timeout=60)
    finally:
        hole.close()
    assert r.status_code == 504, r.text
    assert r.json()["error"]["type"] == "dsr_upstream_timeout_exception"
    assert "in time" in r.json()["error"]["reason"]
    assert time.monotonic() - started < 20


class SlowRanker(CheapestFirst):
    """Cheapest first, after a pause: a search that holds its slot for a while."""

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        time.sleep(1.5)
        return super().score(query, candidates, user)


@pytest.mark.parametrize("queue, statuses", [(0, [200, 429]), (2, [200, 200, 200])])
def test_searches_beyond_the_bound_wait_and_beyond_the_queue_are_refused_with_429(
        embedded_backend, serve_thread, queue, statuses):
    index = f"dsr-e2e-bound-{uuid.uuid4().hex[:8]}"
    embedded_backend.ensure_index(IndexSpec(index))
    embedded_backend.bulk_upsert(index, catalog(10))
    embedded_backend.refresh(index)
    searcher = HybridSearcher(embedded_backend, index, reranker=SlowRanker())
    settings = ServeSettings(ConnectionSettings(None), index=index, max_cluster_requests=1, max_queued_searches=queue)
    with serve_thread(create_app(settings, searcher=searcher)) as url:
        def search(delay: float) -> httpx.Response:
            time.sleep(delay)  # the first search is running when the others arrive
            return httpx.post(f"{url}/{index}/_search", json=dsr(), timeout=60)

        with ThreadPoolExecutor(len(statuses)) as pool:
            answers = list(pool.map(search, [0.0] + [0.5] * (len(statuses) - 1)))
    assert sorted(r.status_code for r in answers) == statuses
    for r in answers:
        if r.status_code == 429:
            assert r.json()["error"]["type"] == "dsr_rejected_execution_exception"
            assert r.json()["status"] == 429 and r.headers["retry-after"] == "1"
        else:
            assert r.json()["hits"]["hits"], r.text



@pytest.mark.parametrize("backend_fixture", ["es_backend", "os_backend"])
def test_dsr_serve_built_from_its_settings_answers_refusals_and_searches_within_its_bound(
        request, backend_fixture, serve_thread, tmp_path):
    backend = request.getfixturevalue(backend_fixture)
    index, _ = index_shop(backend)
    settings = ServeSettings(ConnectionSettings(backend.url, data_dir=tmp_path), index=index, model=f"hashing:{DIM}",
                             max_cluster_requests=2, max_queued_searches=50)
    try:
        with serve_thread(create_app(settings)) as url:  # the engine's own kNN as the vector side
            shop = Shop(url, backend, index)
            refused, want = shop.hybrid(dsr({"no_such_query": {}})), shop.direct({"query": {"no_such_query": {}}})
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: shop.hybrid(dsr()), range(8)))
    finally:
        backend.delete_index(index)
    assert refused.status_code == 400 and refused.json() == want.json()
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.json()["hits"]["hits"] and r.json()["ext"]["dsr"]["vector_source"] == "engine"
