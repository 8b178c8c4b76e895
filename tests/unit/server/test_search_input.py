"""Which `_search` requests are dsr's, and what their body is, taken where the engines take it."""

from __future__ import annotations

import gzip
import json

import pytest

from dsr.server.errors import RequestError
from dsr.server.media import MediaTypeNotSupported
from dsr.server.search_input import read_search, worth_reading

DSR = json.dumps({"size": 2, "ext": {"dsr": {"text": "red"}}}).encode()
JSON = {"content-type": "application/json"}


def read(raw: bytes, headers: dict[str, str] | None = None, params: dict[str, str] | None = None, *,
         relay: bool = True, flavor: str = "elasticsearch"):
    return read_search(JSON if headers is None else headers, params or {}, raw, limit=10_000, flavor=flavor,
                       relay=relay)


def test_the_cheap_test_lets_plain_requests_pass_unread():
    assert not worth_reading(JSON, b"", b'{"query": {"match_all": {}}}')
    assert not worth_reading(JSON, b"size=3", b"")
    assert worth_reading(JSON, b"", DSR)
    assert worth_reading({"content-encoding": "gzip"}, b"", b"\x1f\x8b")
    assert worth_reading({}, b"source=%7B%7D&source_content_type=application%2Fjson", b"")


def test_a_body_with_ext_dsr_is_dsrs_and_any_other_the_clusters():
    found = read(DSR)
    assert found is not None and found.body["ext"]["dsr"]["text"] == "red" and found.params == {}
    assert read(b'{"query": {"match": {"title": "dsr"}}, "ext": {"other": {}}}') is None
    assert read(gzip.compress(b'{"size": 1}'), {**JSON, "content-encoding": "gzip"}) is None


def test_a_bodiless_get_takes_the_source_parameter_and_its_type():
    found = read(b"", {}, {"source": DSR.decode(), "source_content_type": "application/json", "size": "1"})
    assert found is not None and found.params == {"size": "1"}
    with pytest.raises(RequestError, match="source_content_type parameters are required") as e:
        read(b"", {}, {"source": DSR.decode()})
    assert e.value.error_type == "validation_exception"
    with pytest.raises(RequestError, match=r"Unknown value for source_content_type \[text/plain\]"):
        read(b"", {}, {"source": DSR.decode(), "source_content_type": "text/plain"})


def test_with_a_body_the_source_parameter_stays_a_parameter():
    found = read(DSR, params={"source": "{}", "source_content_type": "application/json"})
    assert found is not None and "source" in found.params  # refused later, as the engines refuse it


def test_a_bodiless_request_without_source_is_the_clusters_even_without_a_cluster():
    assert read(b"", {}, {"_source": "false"}, relay=False) is None


def test_without_a_cluster_what_dsr_cannot_read_is_refused():
    assert read(DSR[:-2]) is None  # relayed: the cluster answers its own parse error
    with pytest.raises(RequestError) as e:
        read(DSR[:-2], relay=False)
    assert e.value.status == 400 and e.value.error_type == "x_content_parse_exception"
    assert read(DSR, {"content-type": "application/yaml"}) is None
    with pytest.raises(MediaTypeNotSupported):
        read(DSR, {"content-type": "application/yaml"}, relay=False)


def test_an_ext_dsr_body_beyond_its_own_limit_is_a_413_and_a_plain_one_is_not():
    big = json.dumps({"ext": {"dsr": {"text": "red", "user": {"notes": "x" * 5000}}}}).encode()
    with pytest.raises(RequestError) as e:
        read_search(JSON, {}, big, limit=10_000, flavor="elasticsearch", relay=True, dsr_limit=1000)
    assert e.value.status == 413 and e.value.error_type == "content_too_long_exception"
    plain = json.dumps({"query": {"match": {"title": "dsr"}}, "ext": {"x": "y" * 5000}}).encode()
    assert read_search(JSON, {}, plain, limit=10_000, flavor="elasticsearch", relay=True, dsr_limit=1000) is None
