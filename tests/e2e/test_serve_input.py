"""`dsr serve` reads an `ext.dsr` search as the engines read a search, and answers bad input with a 4xx.

A small catalog is indexed in the real Elasticsearch node (OpenSearch where its answer differs), with
its DSR vectors in an in-process FAISS sidecar and the deterministic hashing encoder as query tower.
Where the engine itself refuses the same input, dsr's status and error type are checked against the
engine's own answer to it.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

from ..support.shoes import flat_sidecar, index_with_vectors

DIM = 32
JSON_HEADERS = {"content-type": "application/json"}
COMPATIBLE = "application/vnd.elasticsearch+json;compatible-with=8"


def catalog() -> list[dict[str, Any]]:
    colors, kinds = ["red", "blue", "green"], ["sneakers", "boots", "sandals"]
    return [{"id": f"p{i:02d}", "title": f"{colors[i % 3]} {kinds[(i // 3) % 3]} {i}", "brand": "acme",
             "price": float(i)} for i in range(30)]


@dataclass
class Served:
    url: str
    index: str
    engine_url: str


@pytest.fixture(scope="module")
def es_index(es_backend) -> Iterator[tuple[SearchBackend, str, FaissIndex]]:
    index = f"dsr-e2e-input-{uuid.uuid4().hex[:8]}"
    rows = catalog()
    sidecar = flat_sidecar(rows, index_with_vectors(es_backend, index, rows, DIM), DIM)
    try:
        yield es_backend, index, sidecar
    finally:
        es_backend.delete_index(index)


def app_for(backend: SearchBackend, index: str, vectors: Any = None, **settings: Any) -> Any:
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), vectors)
    return create_app(ServeSettings(ConnectionSettings(backend.url), index=index, **settings), searcher=searcher)


@pytest.fixture(scope="module")
def served(es_index, serve_thread) -> Iterator[Served]:
    backend, index, sidecar = es_index
    with serve_thread(app_for(backend, index, sidecar, max_body_bytes=1024 * 1024)) as url:
        yield Served(url, index, backend.url)


def post(s: Served, content: bytes | str, headers: dict[str, str] | None = None, *, path: str = "_search",
         base: str | None = None, method: str = "POST", params: dict[str, str] | None = None) -> httpx.Response:
    data = content.encode() if isinstance(content, str) else content
    return httpx.request(method, f"{base or s.url}/{s.index}/{path}", content=data, params=params,
                         headers=JSON_HEADERS if headers is None else headers, timeout=30)


def dsr_body(**dsr: Any) -> str:
    return json.dumps({"size": 3, "ext": {"dsr": {"text": "red sneakers", "k": 10, "term_k": 10, **dsr}}})


def error_type(r: httpx.Response) -> str:
    return r.json()["error"]["type"]


def assert_hybrid(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert "dsr" in out["ext"] and len(out["hits"]["hits"]) == 3
    return out


# nesting

def test_json_nested_deeper_than_the_engines_allow_is_their_400(served):
    deep = '{"a":' * 1100 + "1" + "}" * 1100
    body = '{"ext":{"dsr":{"text":"red","user":' + deep + "}}}"
    r = post(served, body)
    assert r.status_code == 400, r.text
    assert error_type(r) == "x_content_parse_exception"
    assert "nesting depth" in r.json()["error"]["reason"]
    engine = post(served, body, base=served.engine_url)  # the engine refuses it with the same type
    assert engine.status_code == 400 and error_type(engine) == "x_content_parse_exception"


def test_an_ext_dsr_body_deeper_than_dsr_reads_is_a_400_naming_where(served):
    r = post(served, '{"ext":{"dsr":{"text":"red","user":' + '{"a":' * 150 + "1" + "}" * 150 + "}}}")
    assert r.status_code == 400 and error_type(r) == "illegal_argument_exception"
    assert "deeper than 100 levels" in r.json()["error"]["reason"]
    assert "ext.dsr.user.a" in r.json()["error"]["reason"]


# filters

def test_a_string_range_bound_on_the_vector_side_compares_as_the_engine_compares(served):
    r = post(served, dsr_body(term_k=0, filters={"price": {"gte": "10"}}))
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]["hits"]
    assert hits and all(h["_source"]["price"] >= 10 for h in hits)
    both = post(served, dsr_body(filters={"price": {"gte": "10", "lt": "20"}}))
    assert both.status_code == 200, both.text
    assert all(10 <= h["_source"]["price"] < 20 for h in both.json()["hits"]["hits"])


@pytest.mark.parametrize("term_k", [0, 10])
def test_a_range_bound_that_is_no_number_is_a_400_naming_the_field(served, term_k):
    r = post(served, dsr_body(term_k=term_k, filters={"price": {"gte": "ten"}}))
    assert r.status_code == 400 and error_type(r) == "illegal_argument_exception"
    assert "price" in r.json()["error"]["reason"]


# non-finite numbers

@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_as_the_engine_refuses_them(served, token):
    body = '{"size":3,"ext":{"dsr":{"text":"red","filters":{"price":{"gte":' + token + "}}}}}"
    r = post(served, body)
    assert r.status_code == 400, r.text
    assert error_type(r) == "x_content_parse_exception" and token.lstrip("-") in r.json()["error"]["reason"]
    engine = post(served, body, base=served.engine_url)
    assert engine.status_code == 400 and error_type(engine) == "x_content_parse_exception"


def test_a_number_beyond_a_double_is_a_400_naming_the_key(served):
    r = post(served, '{"ext":{"dsr":{"text":"red","filters":{"price":{"gte":1e999}}}}}')
    assert r.status_code == 400 and "ext.dsr.filters.price.gte" in r.json()["error"]["reason"]


# size of the query text

def test_text_beyond_the_character_limit_is_refused_quickly(served):
    started = time.monotonic()
    r = post(served, dsr_body(text="red " * 200_000))  # 800 KB of text
    assert time.monotonic() - started < 3
    assert r.status_code == 400 and "characters long" in r.json()["error"]["reason"]
    assert "4096" in r.json()["error"]["reason"]


def test_text_with_too_many_terms_is_refused(served):
    r = post(served, dsr_body(text=" ".join(f"w{i}" for i in range(65))))
    assert r.status_code == 400 and "more than 64 terms" in r.json()["error"]["reason"]
    assert_hybrid(post(served, dsr_body(text=" ".join(f"w{i}" for i in range(64)))))


# encodings and spellings of the same search

def test_a_gzip_compressed_body_is_read(served):
    out = assert_hybrid(post(served, gzip.compress(dsr_body().encode()),
                             {**JSON_HEADERS, "content-encoding": "gzip"}))
    plain = assert_hybrid(post(served, dsr_body()))
    assert [h["_id"] for h in out["hits"]["hits"]] == [h["_id"] for h in plain["hits"]["hits"]]
    deflated = post(served, zlib.compress(dsr_body().encode()), {**JSON_HEADERS, "content-encoding": "deflate"})
    assert_hybrid(deflated)


def test_a_compressed_body_decoding_past_the_body_limit_is_a_413(served):
    bomb = gzip.compress(dsr_body(text="red").encode()[:-3] + b" " * (2 * 1024 * 1024) + b"}}}")
    assert len(bomb) < 1024 * 1024
    r = post(served, bomb, {**JSON_HEADERS, "content-encoding": "gzip"})
    assert r.status_code == 413 and r.json()["status"] == 413


def test_a_compressed_plain_search_is_relayed_as_it_came(served):
    r = post(served, gzip.compress(b'{"size":2,"query":{"match":{"title":"red"}}}'),
             {**JSON_HEADERS, "content-encoding": "gzip"})
    assert r.status_code == 200 and "ext" not in r.json() and len(r.json()["hits"]["hits"]) == 2


def test_an_escaped_key_spells_the_same_search(served):
    assert_hybrid(post(served, dsr_body().replace('"dsr"', '"\\u0064sr"')))
    assert_hybrid(post(served, dsr_body().replace('"ext"', '"\\u0065xt"')))


def test_the_path_with_a_trailing_slash_is_the_same_search(served):
    assert_hybrid(post(served, dsr_body(), path="_search/"))


def test_a_get_with_a_body_is_the_same_search(served):
    assert_hybrid(post(served, dsr_body(), method="GET"))


def test_a_bodiless_get_carries_the_search_in_the_source_parameter(served):
    r = httpx.get(f"{served.url}/{served.index}/_search",
                  params={"source": dsr_body(), "source_content_type": "application/json"}, timeout=30)
    assert_hybrid(r)
    missing = httpx.get(f"{served.url}/{served.index}/_search", params={"source": dsr_body()}, timeout=30)
    assert missing.status_code == 400 and error_type(missing) == "validation_exception"


# headers

def test_x_opaque_id_is_echoed_on_answers_and_refusals(served):
    ok = post(served, dsr_body(), {**JSON_HEADERS, "x-opaque-id": "req-42"})
    bad = post(served, dsr_body(k="x"), {**JSON_HEADERS, "x-opaque-id": "req-43"})
    assert ok.status_code == 200 and ok.headers["x-opaque-id"] == "req-42"
    assert bad.status_code == 400 and bad.headers["x-opaque-id"] == "req-43"


def test_the_compatible_media_type_is_answered_in_kind(served):
    r = post(served, dsr_body(), {"content-type": COMPATIBLE, "accept": COMPATIBLE})
    assert_hybrid(r)
    assert r.headers["content-type"] == COMPATIBLE
    mismatch = post(served, dsr_body(), {"content-type": COMPATIBLE, "accept": "application/json"})
    engine = post(served, dsr_body(), {"content-type": COMPATIBLE, "accept": "application/json"},
                  base=served.engine_url)
    assert mismatch.status_code == engine.status_code == 400
    assert error_type(mismatch) == error_type(engine) == "media_type_header_exception"


@pytest.mark.parametrize("headers", [{"content-type": "text/plain"},
                                     {"content-type": "application/x-www-form-urlencoded"}, {}])
def test_a_body_of_a_type_the_engine_does_not_read_is_its_406(served, headers):
    r = post(served, dsr_body(), headers)
    engine = post(served, dsr_body(), headers, base=served.engine_url)
    assert r.status_code == engine.status_code == 406
    assert r.json() == engine.json()


def test_an_empty_content_type_is_the_engines_400(served):
    r = post(served, dsr_body(), {"content-type": ""})
    engine = post(served, dsr_body(), {"content-type": ""}, base=served.engine_url)
    assert r.status_code == engine.status_code == 400
    assert error_type(r) == error_type(engine) == "media_type_header_exception"


def test_duplicate_keys_are_refused_as_the_engine_refuses_them(served):
    body = '{"size":3,"size":4,"ext":{"dsr":{"text":"red"}}}'
    r = post(served, body)
    engine = post(served, body, base=served.engine_url)
    assert r.status_code == engine.status_code == 400
    assert error_type(r) == error_type(engine) == "x_content_parse_exception"
    assert "Duplicate field 'size'" in r.json()["error"]["reason"]


def test_opensearch_refuses_the_elasticsearch_media_type_as_it_does_itself(os_backend, serve_thread):
    with serve_thread(app_for(os_backend, "dsr-e2e-input-none")) as url:
        s = Served(url, "dsr-e2e-input-none", os_backend.url)
        headers = {"content-type": COMPATIBLE, "accept": COMPATIBLE}
        r = post(s, dsr_body(), headers)
        engine = post(s, dsr_body(), headers, base=os_backend.url)
        plain = post(s, dsr_body(), {"content-type": "text/plain"})
        plain_engine = post(s, dsr_body(), {"content-type": "text/plain"}, base=os_backend.url)
    assert r.status_code == engine.status_code == 406 and r.json() == engine.json()
    assert plain.status_code == plain_engine.status_code == 406 and plain.json() == plain_engine.json()


# pass-through

def test_a_plain_search_with_escapes_is_still_the_clusters(served):
    body = b'{"size":2,"query":{"match":{"title":"r\\u0065d"}}}'
    through = post(served, body)
    direct = post(served, body, base=served.engine_url)
    assert through.status_code == direct.status_code == 200
    assert through.json()["hits"] == direct.json()["hits"]


def test_without_a_cluster_a_body_dsr_cannot_read_is_a_400(embedded_backend, serve_thread):
    index = f"dsr-e2e-input-{uuid.uuid4().hex[:8]}"
    embedded_backend.ensure_index(IndexSpec(index))
    searcher = HybridSearcher(embedded_backend, index)
    with serve_thread(create_app(ServeSettings(ConnectionSettings(None), index=index), searcher=searcher)) as url:
        s = Served(url, index, "")
        broken = post(s, dsr_body()[:-3])
        nan = post(s, '{"ext":{"dsr":{"text":"red","k":NaN}}}')
        ok = post(s, dsr_body())
    assert broken.status_code == 400 and error_type(broken) == "x_content_parse_exception"
    assert nan.status_code == 400 and error_type(nan) == "x_content_parse_exception"
    assert ok.status_code == 200, ok.text


def test_ten_megabytes_of_text_are_refused_within_a_second_at_the_default_limits(es_index, serve_thread):
    backend, index, sidecar = es_index
    with serve_thread(app_for(backend, index, sidecar)) as url:
        started = time.monotonic()
        r = post(Served(url, index, backend.url), dsr_body(text="red " * 2_500_000))
        elapsed = time.monotonic() - started
    assert r.status_code == 413 and error_type(r) == "content_too_long_exception", r.text
    assert "ext.dsr" in r.json()["error"]["reason"] and elapsed < 1.5
