"""`dsr serve` in front of the real Elasticsearch node survives malformed and hostile `ext.dsr` bodies.

A seeded generator builds a few hundred bodies: wrong types, deep and wide nesting, long strings,
unicode, NUL bytes and unpaired surrogates, NaN and huge numbers, duplicate and unknown keys, broken
JSON, compressed and mis-declared encodings, odd content types. Every answer must be a client error
or a success (no 5xx: the cluster is up), none may take more than a few seconds, and the server
must answer a normal search afterwards.
"""

from __future__ import annotations

import gzip
import json
import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from dsr.backends.base import IndexSpec
from dsr.encoders.hashing import HashingEncoder
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

SEED = 20_240_601
BODIES = 300
DIM = 16
SLOWEST_S = 5.0
DSR_KEYS = ["text", "k", "term_k", "fusion", "rrf_k", "normalization", "weights", "rerank", "rerank_top",
            "user", "filters"]


def nested(rng: random.Random, depth: int) -> Any:
    value: Any = rng.choice([1, "x", None, [], {}])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def any_value(rng: random.Random) -> Any:
    choices: list[Callable[[], Any]] = [
        lambda: rng.randint(-10**6, 10**6), lambda: 10**rng.randint(10, 400), lambda: -1, lambda: 0,
        lambda: rng.random() * 1e308, lambda: 1e-320, lambda: True, lambda: None, lambda: "",
        lambda: "red sneakers", lambda: "ü€😀中文", lambda: "a\u0000b", lambda: "\ud800", lambda: "x" * 20_000,
        lambda: " ".join(["w"] * 200), lambda: [], lambda: [1, "a", None], lambda: {}, lambda: {"gte": "10"},
        lambda: {"gte": "ten"}, lambda: nested(rng, rng.randint(1, 150)), lambda: list(range(2000)),
        lambda: {f"k{i}": i for i in range(500)}, lambda: "rrf", lambda: "linear", lambda: {"term": -1},
    ]
    return rng.choice(choices)()


def ext_body(rng: random.Random) -> dict[str, Any]:
    dsr: dict[str, Any] = {"text": "red sneakers", "k": 5, "term_k": 5}
    if rng.random() < 0.25:  # a valid search, to reach the whole pipeline
        dsr.update(rng.choice([{"fusion": "linear"}, {"rerank": False}, {"filters": {"price": {"gte": "3"}}},
                               {"term_k": 0}, {"text": "ü€😀 \u0000 red"}, {"user": {"brand": "acme"}}]))
        return {"size": rng.randint(0, 10), "ext": {"dsr": dsr}}
    for _ in range(rng.randint(1, 4)):
        key = rng.choice([*DSR_KEYS, "unknown", "", "\u0000", "dsr"])
        dsr[key] = any_value(rng)
    body: dict[str, Any] = {"ext": {"dsr": dsr}}
    if rng.random() < 0.3:
        body[rng.choice(["size", "from", "query", "_source", "explain", "aggs", "sort", "track_total_hits"])] = \
            any_value(rng)
    return body


def raw_json(rng: random.Random, body: dict[str, Any]) -> bytes:
    """`body` as JSON, sometimes damaged or spelled in ways a strict reader must refuse or decode."""
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)
    mutation = rng.randrange(16)  # 12 and up: left as it is
    if mutation == 0:
        text = text[:rng.randrange(len(text))]  # truncated
    elif mutation == 1:
        text = text.replace('"text": ', '"text": NaN, "k": ', 1)
    elif mutation == 2:
        text = text.replace('{"ext": ', '{"size": Infinity, "ext": ', 1)
    elif mutation == 3:
        text = text.replace('{"ext": ', '{"size": 1, "size": 2, "ext": ', 1)
    elif mutation == 4:
        depth = rng.choice([999, 1001, 1500, 3000])
        text = text.replace('"text": ', '"user": ' + "[" * depth + "]" * depth + ', "text": ', 1)
    elif mutation == 5:
        text = text.replace('"dsr"', '"\\u0064sr"').replace('"text"', '"t\\u0065xt"')
    elif mutation == 6:
        text = text.replace('"text": "', '"text": "\\u0000\\ud800\\udfff ', 1)
    elif mutation == 7:
        return text.encode("utf-8", "surrogatepass") + bytes(rng.randrange(256) for _ in range(8))  # trailing garbage
    elif mutation == 8:
        return text.encode("utf-16", "surrogatepass")
    elif mutation == 9:
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    elif mutation == 10:
        return text.encode("utf-8", "surrogatepass").replace(b"red", b"r\xff\xfed", 1)  # invalid UTF-8
    return text.encode("utf-8", "surrogatepass")


def request_for(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    body = raw_json(rng, ext_body(rng))
    headers = {"content-type": rng.choice(["application/json"] * 6 + ["application/json; charset=UTF-8",
                                           "application/vnd.elasticsearch+json;compatible-with=8",
                                           "application/vnd.elasticsearch+json;compatible-with=9",
                                           "text/plain", "application/x-ndjson", "application/yaml", ""])}
    if "vnd" in headers["content-type"] and rng.random() < 0.7:
        headers["accept"] = headers["content-type"]
    encoding = rng.randrange(10)
    if encoding == 0:
        body, headers["content-encoding"] = gzip.compress(body), "gzip"
    elif encoding == 1:
        body, headers["content-encoding"] = zlib.compress(body), "deflate"
    elif encoding == 2:
        headers["content-encoding"] = "gzip"  # declared, not applied
    elif encoding == 3:
        body, headers["content-encoding"] = gzip.compress(body)[:-6], "gzip"  # truncated stream
    elif encoding == 4:
        body, headers["content-encoding"] = gzip.compress(body), "br"  # a coding dsr does not decode
    if rng.random() < 0.1:
        headers["x-opaque-id"] = f"fuzz-{rng.randrange(10**6)}"
    return body, headers


@pytest.fixture(scope="module")
def served(es_backend, serve_thread) -> Iterator[tuple[str, str]]:
    index = f"dsr-e2e-fuzz-{uuid.uuid4().hex[:8]}"
    rows = [{"id": f"p{i}", "title": f"{c} sneakers {i}", "price": float(i)}
            for i, c in enumerate(["red", "blue", "green"] * 5)]
    vectors = HashingEncoder(DIM).encode_items(rows)
    es_backend.ensure_index(IndexSpec(index, dims=DIM))
    assert es_backend.bulk_upsert(index, rows).ok
    es_backend.refresh(index)
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in rows], vectors)
    searcher = HybridSearcher(es_backend, index, HashingEncoder(DIM), sidecar)
    app = create_app(ServeSettings(ConnectionSettings(es_backend.url), index=index, max_body_bytes=256 * 1024),
                     searcher=searcher)
    try:
        with serve_thread(app) as url:
            yield url, index
    finally:
        es_backend.delete_index(index)


def test_hostile_ext_dsr_bodies_get_client_errors_quickly_and_leave_the_server_healthy(served):
    url, index = served
    rng = random.Random(SEED)
    statuses: dict[int, int] = {}
    slowest = 0.0
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(BODIES):
            body, headers = request_for(rng)
            method = "GET" if rng.random() < 0.2 else "POST"
            path = f"/{index}/_search" + ("/" if rng.random() < 0.1 else "")
            started = time.monotonic()
            r = client.request(method, path, content=body, headers=headers)
            elapsed = time.monotonic() - started
            slowest = max(slowest, elapsed)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (i, headers, body[:300], r.text[:500])
            assert elapsed < SLOWEST_S, (i, headers, body[:300], elapsed)
            if "x-opaque-id" in headers and r.status_code != 413:
                assert r.headers.get("x-opaque-id") == headers["x-opaque-id"], (i, headers, r.headers)
        ok = client.post(f"/{index}/_search", json={"size": 3, "ext": {"dsr": {"text": "red sneakers"}}})
        health = client.get("/_cluster/health")
    assert ok.status_code == 200 and len(ok.json()["hits"]["hits"]) == 3, ok.text
    assert health.status_code == 200
    assert sum(statuses.values()) == BODIES and statuses.get(200, 0) > 0  # some bodies were valid searches
