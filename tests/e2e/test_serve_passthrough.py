"""`dsr serve` is transparent: the official clients get the same answers through it as from the cluster.

Each engine's own client (`elasticsearch` for Elasticsearch, `opensearch-py` for OpenSearch) runs
the same script twice — once straight at the cluster, once at `dsr serve` — on two fresh indices,
and every response must match (ignoring `took`, scroll ids and the index names).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings

DOCS = [
    {"id": str(i), "title": f"{color} {kind}", "brand": brand, "price": float(10 + i), "n": i}
    for i, (color, kind, brand) in enumerate([
        ("red", "sneakers", "acme"), ("blue", "sneakers", "acme"), ("red", "boots", "zenit"),
        ("green", "sandals", "zenit"), ("black", "boots", "acme"), ("white", "sneakers", "orbit"),
        ("red", "sandals", "orbit"), ("blue", "boots", "zenit"),
    ])
]
MAPPINGS = {"properties": {"title": {"type": "text"}, "brand": {"type": "keyword"},
                           "price": {"type": "float"}, "n": {"type": "integer"}}}
SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


def normalise(value: Any, names: dict[str, str]) -> Any:
    """The response with what legitimately differs between two runs removed."""
    if isinstance(value, dict):
        return {k: normalise(v, names) for k, v in value.items() if k not in ("took", "_scroll_id")}
    if isinstance(value, list):
        return [normalise(v, names) for v in value]
    if isinstance(value, str):
        for name, placeholder in names.items():
            value = value.replace(name, placeholder)
        return value
    return value


def body(response: Any) -> Any:
    return response.body if hasattr(response, "body") else response


def call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """The response, or the error the client raised (status and body): both must match."""
    try:
        return body(fn(**kwargs))
    except Exception as e:  # the two clients' ApiError / TransportError types differ
        status = getattr(e, "status_code", None) or getattr(getattr(e, "meta", None), "status", None)
        return {"raised": type(e).__name__, "status": status, "info": getattr(e, "body", None)
                or getattr(e, "info", None)}


@pytest.fixture(params=["elasticsearch", "opensearch"])
def engine(request) -> Iterator[tuple[str, Any, Callable[[str], Any]]]:
    """(flavor, backend, client factory by URL) for each real engine."""
    backend = request.getfixturevalue("es_backend" if request.param == "elasticsearch" else "os_backend")
    if request.param == "elasticsearch":
        from elasticsearch import Elasticsearch

        def make(url: str) -> Any:
            return Elasticsearch(url, request_timeout=30)
    else:
        from opensearchpy import OpenSearch

        def make(url: str) -> Any:
            return OpenSearch(url, timeout=30)
    yield request.param, backend, make


@pytest.fixture
def proxy(engine, serve_thread) -> Iterator[str]:
    _, backend, _ = engine
    settings = ServeSettings(ConnectionSettings(backend.url), index="unused")
    app = create_app(settings, searcher=HybridSearcher(backend, "unused"))
    with serve_thread(app) as url:
        yield url


def script(flavor: str, client: Any, index: str) -> list[Any]:
    """index, bulk, get, search, aggregations, scroll, delete-by-query — every response, in order."""
    out: list[Any] = []
    if flavor == "elasticsearch":
        out.append(client.indices.create(index=index, settings=SETTINGS, mappings=MAPPINGS))
        out.append(client.index(index=index, id=DOCS[0]["id"], document=DOCS[0], refresh=True))
        ops: list[Any] = []
        for d in DOCS[1:]:
            ops += [{"index": {"_index": index, "_id": d["id"]}}, d]
        out.append(client.bulk(operations=ops, refresh=True))
        out.append(client.get(index=index, id="3"))
        out.append(client.search(index=index, query={"match": {"title": "red sneakers"}}))
        out.append(client.search(index=index, size=0, aggs={
            "brands": {"terms": {"field": "brand"}, "aggs": {"avg_price": {"avg": {"field": "price"}}}},
            "price": {"stats": {"field": "price"}}}))
        page = client.search(index=index, scroll="1m", size=3, sort=[{"n": "asc"}],
                             query={"match_all": {}})
        pages = [page]
        while page["hits"]["hits"]:
            page = client.scroll(scroll_id=page["_scroll_id"], scroll="1m")
            pages.append(page)
        client.clear_scroll(scroll_id=page["_scroll_id"])
        out.extend(pages)
        out.append(call(client.delete_by_query, index=index, query={"term": {"brand": "acme"}},
                        refresh=True))
        out.append(client.count(index=index))
        out.append(client.indices.delete(index=index))
    else:
        out.append(client.indices.create(index=index, body={"settings": SETTINGS, "mappings": MAPPINGS}))
        out.append(client.index(index=index, id=DOCS[0]["id"], body=DOCS[0], refresh=True))
        ops = []
        for d in DOCS[1:]:
            ops += [{"index": {"_index": index, "_id": d["id"]}}, d]
        out.append(client.bulk(body=ops, refresh=True))
        out.append(client.get(index=index, id="3"))
        out.append(client.search(index=index, body={"query": {"match": {"title": "red sneakers"}}}))
        out.append(client.search(index=index, body={"size": 0, "aggs": {
            "brands": {"terms": {"field": "brand"}, "aggs": {"avg_price": {"avg": {"field": "price"}}}},
            "price": {"stats": {"field": "price"}}}}))
        page = client.search(index=index, scroll="1m", body={"size": 3, "sort": [{"n": "asc"}],
                                                             "query": {"match_all": {}}})
        pages = [page]
        while page["hits"]["hits"]:
            page = client.scroll(scroll_id=page["_scroll_id"], scroll="1m")
            pages.append(page)
        client.clear_scroll(scroll_id=page["_scroll_id"])
        out.extend(pages)
        out.append(call(client.delete_by_query, index=index, body={"query": {"term": {"brand": "acme"}}},
                        refresh=True))
        out.append(client.count(index=index))
        out.append(client.indices.delete(index=index))
    return [body(r) for r in out]


def test_official_client_gets_the_same_answers_through_dsr_serve(engine, proxy):
    flavor, backend, make = engine
    direct_index = f"dsr-e2e-direct-{uuid.uuid4().hex[:8]}"
    proxied_index = f"dsr-e2e-proxied-{uuid.uuid4().hex[:8]}"
    direct, proxied = make(backend.url), make(proxy)
    try:
        want = script(flavor, direct, direct_index)
        got = script(flavor, proxied, proxied_index)
    finally:
        for name in (direct_index, proxied_index):
            if backend.index_exists(name):
                backend.delete_index(name)
    assert len(got) == len(want)
    assert len(want) > 10  # scroll produced several pages
    names = {direct_index: "INDEX", proxied_index: "INDEX"}
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        assert normalise(g, names) == normalise(w, names), f"step {step} differs"


def test_reads_on_the_same_index_match_and_plain_search_is_byte_for_byte(engine, proxy):
    flavor, backend, make = engine
    index = f"dsr-e2e-read-{uuid.uuid4().hex[:8]}"
    client = make(backend.url)
    try:
        script_setup(flavor, client, index)
        for method, path, payload in [
            ("GET", f"/{index}/_doc/2", None),
            ("POST", f"/{index}/_search?filter_path=hits.hits._id,hits.hits._score",
             b'{"query": {"match": {"title": "boots"}}}'),
            ("GET", f"/{index}/_search?q=title:red&filter_path=hits.total,hits.hits._source",
             None),
            ("POST", f"/{index}/_search?filter_path=aggregations",
             b'{"size": 0, "aggs": {"b": {"terms": {"field": "brand"}}}}'),
            ("GET", f"/{index}/_mapping", None),
            ("HEAD", f"/{index}", None),
            ("GET", f"/{index}-missing/_doc/1", None),
            ("POST", f"/{index}/_search", b'{"query": {"no_such_query": {}}}'),
        ]:
            headers = {"content-type": "application/json"} if payload else {}
            want = httpx.request(method, backend.url + path, content=payload, headers=headers)
            got = httpx.request(method, proxy + path, content=payload, headers=headers)
            assert got.status_code == want.status_code, path
            assert got.content == want.content or _strip_took(got.content) == _strip_took(want.content), path
            assert _relayed(got.headers) == _relayed(want.headers), path
    finally:
        if backend.index_exists(index):
            backend.delete_index(index)


def script_setup(flavor: str, client: Any, index: str) -> None:
    ops: list[Any] = []
    for d in DOCS:
        ops += [{"index": {"_index": index, "_id": d["id"]}}, d]
    if flavor == "elasticsearch":
        client.indices.create(index=index, settings=SETTINGS, mappings=MAPPINGS)
        client.bulk(operations=ops, refresh=True)
    else:
        client.indices.create(index=index, body={"settings": SETTINGS, "mappings": MAPPINGS})
        client.bulk(body=ops, refresh=True)


def _strip_took(raw: bytes) -> bytes:
    return re.sub(rb'"took":\d+,', b"", raw)


def _relayed(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("content-length", "transfer-encoding")}


def test_request_headers_reach_the_cluster_and_compressed_bodies_stay_compressed(engine, proxy):
    """The cluster echoes X-Opaque-Id; a gzip answer is relayed still gzipped, with its header."""
    _, backend, _ = engine
    headers = {"X-Opaque-Id": "dsr-test-42", "Accept-Encoding": "gzip"}
    want = httpx.get(backend.url + "/_cluster/health", headers=headers)
    got = httpx.get(proxy + "/_cluster/health", headers=headers)
    assert got.status_code == 200
    assert got.headers.get("x-opaque-id") == "dsr-test-42"
    assert got.headers.get("content-encoding") == want.headers.get("content-encoding")
    assert got.json()["status"] in ("green", "yellow")
    plain = httpx.get(proxy + "/_cluster/health", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers  # nothing the caller did not ask for
