"""The HTTP relay itself, byte for byte, against a plain recording HTTP server.

Security is off on the test clusters, so they ignore `Authorization` and cannot show that it is
relayed; this upstream records exactly what reached it instead. It stands in for no engine
behaviour (the engine-facing checks are in test_serve_passthrough.py, against real nodes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings

BIG = bytes(range(256)) * 20_000  # 5 MB


async def record(request: Request) -> Response:
    if request.url.path == "/slow":
        await asyncio.sleep(3)
    if request.url.path == "/stream":
        async def chunks() -> Iterator[bytes]:
            for i in range(0, len(BIG), 65536):
                yield BIG[i:i + 65536]
        return StreamingResponse(chunks(), media_type="application/octet-stream")  # no Content-Length
    body = await request.body()
    seen = {"method": request.method, "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
            "body_sha": hashlib.sha256(body).hexdigest(), "body_len": len(body)}
    response = Response(json.dumps(seen), status_code=207, media_type="application/json")
    response.raw_headers += [(b"x-multi", b"one"), (b"x-multi", b"two")]
    return response


@pytest.fixture
def relay(serve_thread) -> Iterator[str]:
    upstream = Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])])
    with serve_thread(upstream) as upstream_url:
        settings = ServeSettings(ConnectionSettings("http://user:dsr-secret@" + upstream_url[len("http://"):]),
                                 index="products", max_body_bytes=8 * 1024 * 1024, upstream_timeout_s=1.0)
        app = create_app(settings, searcher=HybridSearcher(None, "products"))  # type: ignore[arg-type]
        with serve_thread(app) as url:
            yield url


def test_method_path_query_headers_and_body_arrive_unchanged(relay):
    body = b'{"query": {"match": {"title": "caf\xc3\xa9"}}}'
    r = httpx.request("PATCH", relay + "/my%2Dindex/_doc/a%2Fb?refresh=wait_for&x=1&x=2&q=a%20b",
                      content=body, headers={"Authorization": "Basic Y2FsbGVyOnB3", "X-Custom": "42",
                                             "Content-Type": "application/json"})
    assert r.status_code == 207
    seen = r.json()
    assert seen["method"] == "PATCH"
    assert seen["raw_path"] == "/my%2Dindex/_doc/a%2Fb"
    assert seen["query"] == "refresh=wait_for&x=1&x=2&q=a%20b"
    headers = {k: v for k, v in seen["headers"]}
    assert headers["authorization"] == "Basic Y2FsbGVyOnB3"  # the caller's, never dsr's own
    assert headers["x-custom"] == "42"
    assert seen["body_sha"] == hashlib.sha256(body).hexdigest()
    assert r.headers.get_list("x-multi") == ["one", "two"]


def test_no_credentials_or_headers_are_added(relay):
    seen = httpx.Client(headers={}).get(relay + "/_cluster/health",
                                        headers={"User-Agent": "probe", "Accept-Encoding": "identity"}).json()
    names = [k for k, _ in seen["headers"]]
    assert "authorization" not in names
    assert dict(seen["headers"])["user-agent"] == "probe"
    assert dict(seen["headers"])["accept-encoding"] == "identity"


def test_large_bodies_stream_both_ways(relay):
    up = httpx.put(relay + "/products/_bulk", content=BIG, headers={"Content-Type": "application/x-ndjson"})
    assert up.json()["body_len"] == len(BIG)
    assert up.json()["body_sha"] == hashlib.sha256(BIG).hexdigest()
    relayed = dict(up.json()["headers"])
    assert relayed["content-length"] == str(len(BIG)) and "transfer-encoding" not in relayed  # not re-chunked
    with httpx.stream("GET", relay + "/stream") as down:
        got = b"".join(down.iter_raw())
    assert got == BIG


def test_bodies_over_the_limit_are_refused_with_413(relay):
    r = httpx.put(relay + "/products/_bulk", content=BIG * 2, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "content_too_long_exception"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        for _ in range(4):
            yield BIG

    r = httpx.put(relay + "/products/_bulk", content=chunked(), headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 413


def test_a_cluster_slower_than_the_upstream_timeout_is_a_504(relay):
    r = httpx.get(relay + "/slow", timeout=10)
    assert r.status_code == 504 and r.json()["error"]["type"] == "dsr_upstream_timeout_exception"
