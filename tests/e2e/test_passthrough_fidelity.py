"""Through `dsr serve`, a client gets what the cluster answers: status, body and the headers that matter.

The same script of raw HTTP requests (document writes and reads, updates, deletes, `_bulk`, searches
with aggregations, `_count`, `_mapping`, `_cat` as JSON, and errors: a missing index, a bad query)
runs once straight at each real engine and once through `dsr serve`, each on its own fresh index.
Every answer must match: the status, the body (with `took`, the index names and the indices' uuids
set aside) and the headers a client acts on: `content-type`, `X-Elastic-Product`, `Warning`
(deprecations; the index names start with a dot, which both engines warn about) and
`content-encoding` (asked for with gzip).
A hybrid search the cluster refuses is answered with the same status and body as the same query
sent to the cluster directly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings

KEY_HEADERS = ("content-type", "x-elastic-product", "warning", "content-encoding")
MAPPINGS = {"properties": {"title": {"type": "text"}, "brand": {"type": "keyword"},
                           "price": {"type": "float"}, "n": {"type": "integer"}}}
DOCS = [{"title": f"{c} {k}", "brand": b, "price": float(10 + i), "n": i}
        for i, (c, k, b) in enumerate([("red", "sneakers", "acme"), ("blue", "sneakers", "acme"),
                                       ("red", "boots", "zenit"), ("green", "sandals", "zenit"),
                                       ("black", "boots", "acme"), ("white", "sneakers", "orbit")])]
Step = tuple[str, str, Any]  # method, path ({i} is the index), JSON body, NDJSON lines or None


def bulk_lines(index: str) -> bytes:
    lines: list[Any] = []
    for i, doc in enumerate(DOCS[1:], start=2):
        lines += [{"index": {"_index": index, "_id": str(i)}}, doc]
    lines += [{"delete": {"_index": index, "_id": "no-such-doc"}},
              {"update": {"_index": index, "_id": "no-such-doc"}}, {"doc": {"price": 1}},
              {"create": {"_index": index, "_id": "2"}}, DOCS[1]]  # exists already: a 409 in the items
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


STEPS: list[Step] = [
    ("PUT", "/{i}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": MAPPINGS}),
    ("PUT", "/{i}/_doc/1?refresh=true", DOCS[0]),
    ("GET", "/{i}/_doc/1", None),
    ("POST", "/{i}/_update/1?refresh=true", {"doc": {"price": 99.0}}),
    ("POST", "/_bulk?refresh=true", "bulk"),
    ("GET", "/{i}/_doc/3?_source_includes=title,price", None),
    ("POST", "/{i}/_search", {"size": 0, "aggs": {
        "brands": {"terms": {"field": "brand"}, "aggs": {"avg_price": {"avg": {"field": "price"}}}},
        "price": {"stats": {"field": "price"}}}}),
    ("POST", "/{i}/_search", {"query": {"match": {"title": "red sneakers"}}, "sort": [{"n": "asc"}]}),
    ("GET", "/{i}/_search?q=brand:acme&size=2&sort=n:desc", None),
    ("GET", "/{i}/_count", None),
    ("POST", "/{i}/_count", {"query": {"term": {"brand": "zenit"}}}),
    ("GET", "/{i}/_mapping", None),
    ("GET", "/_cat/indices/{i}?format=json&h=index,health,status,pri,rep,docs.count", None),
    ("GET", "/_cat/count/{i}?format=json&h=count", None),
    ("DELETE", "/{i}/_doc/1?refresh=true", None),
    ("GET", "/{i}/_doc/1", None),
    ("DELETE", "/{i}/_doc/1", None),
    ("HEAD", "/{i}", None),
    ("GET", "/{i}-missing/_search", None),
    ("GET", "/{i}-missing/_doc/1", None),
    ("POST", "/{i}/_search", {"query": {"no_such_query": {}}}),
    ("POST", "/{i}/_search", {"query": {"range": {"price": {"gte": "not a number"}}}}),
    ("DELETE", "/{i}", None),
]


def send(client: httpx.Client, base: str, index: str, step: Step) -> httpx.Response:
    method, path, body = step
    # OpenSearch sends a deprecation warning once per X-Opaque-Id: each run has its own
    headers = {"Accept-Encoding": "gzip", "X-Opaque-Id": f"dsr-fidelity-{index}"}
    content: bytes | None = None
    if body == "bulk":
        content, headers["Content-Type"] = bulk_lines(index), "application/x-ndjson"
    elif body is not None:
        content, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    return client.request(method, base + path.replace("{i}", index), content=content, headers=headers)


def normalised(response: httpx.Response, index: str) -> tuple[int, Any, dict[str, str | None]]:
    """Status, body and key headers, with what differs between two indices and two runs set aside."""
    text = response.content.decode().replace(index, "INDEX")
    body: Any = text
    if text and response.headers.get("content-type", "").startswith("application/json"):
        body = _set_aside(json.loads(text))
    headers = {name: (response.headers.get(name) or "").replace(index, "INDEX") or None for name in KEY_HEADERS}
    return response.status_code, body, headers


def _set_aside(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _set_aside(v) for k, v in value.items() if k not in ("took", "index_uuid")}
    if isinstance(value, list):
        return [_set_aside(v) for v in value]
    return value


@pytest.fixture(params=["es_backend", "os_backend"])
def cluster(request) -> SearchBackend:
    return request.getfixturevalue(request.param)


@pytest.fixture
def proxy(cluster, serve_thread) -> Iterator[str]:
    settings = ServeSettings(ConnectionSettings(cluster.url), index="unused")
    with serve_thread(create_app(settings, searcher=HybridSearcher(cluster, "unused"))) as url:
        yield url


def test_every_operation_answers_the_same_through_dsr_serve(cluster, proxy):
    direct_index, proxied_index = (f".dsr-e2e-fidelity-{uuid.uuid4().hex[:8]}" for _ in range(2))
    try:
        with httpx.Client(timeout=60) as client:
            want = [normalised(send(client, cluster.url, direct_index, s), direct_index) for s in STEPS]
            got = [normalised(send(client, proxy, proxied_index, s), proxied_index) for s in STEPS]
    finally:
        for name in (direct_index, proxied_index):
            httpx.delete(f"{cluster.url}/{name}", params={"ignore_unavailable": "true"}, timeout=60)
    for step, g, w in zip(STEPS, got, want, strict=True):
        assert g == w, f"{step[0]} {step[1]}"
    # the script covers what it says: a warning, compressed answers, and errors of every kind
    assert want[0][2]["warning"] and "starts with a dot" in want[0][2]["warning"]
    assert any(headers["content-encoding"] == "gzip" for _, _, headers in want)
    assert {status for status, _, _ in want} >= {200, 201, 400, 404}
    assert want[4][1]["errors"] is True  # the bulk's refused items are relayed as the cluster reported them


def test_a_hybrid_search_the_cluster_refuses_has_the_clusters_status_and_body(cluster, serve_thread):
    index = f"dsr-e2e-fidelity-{uuid.uuid4().hex[:8]}"
    cluster.ensure_index(IndexSpec(index))
    cluster.bulk_upsert(index, [{"id": "1", "title": "red sneakers"}])
    cluster.refresh(index)
    searcher = HybridSearcher(cluster, index)
    bad = {"query": {"no_such_query": {}}}
    try:
        with serve_thread(create_app(ServeSettings(ConnectionSettings(cluster.url), index=index),
                                     searcher=searcher)) as url:
            want = httpx.post(f"{cluster.url}/{index}/_search", json=bad)
            got = httpx.post(f"{url}/{index}/_search", json={**bad, "ext": {"dsr": {"text": "red"}}})
    finally:
        cluster.delete_index(index)
    assert want.status_code == 400
    assert got.status_code == want.status_code and got.json() == want.json()
    assert got.headers.get("x-elastic-product") == want.headers.get("x-elastic-product")
    # dsr's own answers are JSON without a charset (OpenSearch names UTF-8, which JSON is anyway)
    assert got.headers["content-type"].split(";")[0] == want.headers["content-type"].split(";")[0]
