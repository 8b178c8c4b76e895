"""`dsr serve` when things go wrong: the cluster down, and the embedded backend's limited surface."""

from __future__ import annotations

import uuid

import httpx
import pytest

from dsr.backends import connect
from dsr.backends.base import IndexSpec
from dsr.encoders.hashing import HashingEncoder
from dsr.engines import free_port
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_cluster_down_is_a_502_in_the_elasticsearch_error_shape(flavor, serve_thread):
    conn = ConnectionSettings(closed_port_url())
    backend = connect(conn, flavor=flavor)  # the client is built; nothing listens behind it
    searcher = HybridSearcher(backend, "products", HashingEncoder(16))
    with serve_thread(create_app(ServeSettings(conn, index="products"), searcher=searcher)) as url:
        plain = httpx.post(f"{url}/products/_search", json={"query": {"match_all": {}}}, timeout=60)
        other = httpx.get(f"{url}/_cat/indices", timeout=60)
        dsr = httpx.post(f"{url}/products/_search", json={"ext": {"dsr": {"text": "red shoes"}}}, timeout=120)
    for r in (plain, other, dsr):
        assert r.status_code in (502, 503), r.text
        err = r.json()
        assert err["status"] == r.status_code
        assert err["error"]["type"].startswith("dsr_upstream")
        assert "reach" in err["error"]["reason"] or "unavailable" in err["error"]["reason"]


def test_embedded_backend_serves_only_dsr_searches(embedded_backend, serve_thread):
    index = f"dsr-e2e-embedded-{uuid.uuid4().hex[:8]}"
    embedded_backend.ensure_index(IndexSpec(index))
    embedded_backend.bulk_upsert(index, [{"id": "a", "title": "red sneakers", "price": 10.0},
                                         {"id": "b", "title": "blue boots", "price": 20.0}])
    embedded_backend.refresh(index)
    searcher = HybridSearcher(embedded_backend, index)
    app = create_app(ServeSettings(ConnectionSettings(None), index=index), searcher=searcher)
    with serve_thread(app) as url:
        root = httpx.get(url + "/")
        dsr = httpx.post(f"{url}/{index}/_search", json={"ext": {"dsr": {"text": "red sneakers"}}})
        plain = httpx.post(f"{url}/{index}/_search", json={"query": {"match_all": {}}})
        put = httpx.put(f"{url}/{index}/_doc/c", json={"title": "x"})
    assert root.status_code == 200 and root.json()["cluster_name"] == "embedded"
    assert dsr.status_code == 200 and [h["_id"] for h in dsr.json()["hits"]["hits"]] == ["a"]
    for r in (plain, put):
        assert r.status_code == 501
        assert "embedded backend" in r.json()["error"]["reason"]
