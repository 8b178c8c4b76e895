"""A search body is decoded and parsed as strictly as the engines read it, and never past its limits."""

from __future__ import annotations

import gzip
import time
import zlib

import pytest

from dsr.server.body import (
    ENGINE_MAX_DEPTH,
    Unreadable,
    content_codings,
    decompress,
    may_hold_dsr,
    nesting_depth,
    read_json,
)
from dsr.server.errors import RequestError
from dsr.server.proxy import BodyTooLarge


def test_the_cheap_test_sees_the_key_plain_or_escaped_and_nothing_else():
    assert may_hold_dsr(b'{"ext": {"dsr": {"text": "x"}}}')
    assert may_hold_dsr(b'{"ext": {"\\u0064sr": {}}}')
    assert not may_hold_dsr(b'{"query": {"match": {"title": "dsr"}}}')
    assert not may_hold_dsr(b'{"query": {"match_all": {}}}')
    assert not may_hold_dsr(b'{"query": {"match": {"title": "gr\\u00fcn"}}}')  # escaped text, not a key
    assert may_hold_dsr(b'{"\\u0065xt": {"d\\u0073r": {}}}')


def test_nesting_depth_counts_containers_not_brackets_in_strings():
    assert nesting_depth(b'{"a": [1, {"b": []}]}') == 4
    assert nesting_depth(b'{"a": "[[[[{{{{\\"[["}') == 1
    assert nesting_depth(b"1") == 0
    assert nesting_depth(b"[" * 5000 + b"]" * 5000) == 5000


def test_deeper_than_the_engines_allow_is_their_parse_error():
    with pytest.raises(RequestError) as e:
        read_json(b"[" * (ENGINE_MAX_DEPTH + 1) + b"]" * (ENGINE_MAX_DEPTH + 1))
    assert e.value.status == 400 and e.value.error_type == "x_content_parse_exception"
    assert "nesting depth (1001) exceeds the maximum allowed (1000)" in e.value.reason
    value, depth = read_json(b'{"a":' * 10 + b"1" + b"}" * 10)
    assert depth == 10 and value["a"]["a"]["a"]


def test_nested_beyond_what_dsr_parses_but_within_the_engines_limit_is_left_to_the_cluster():
    with pytest.raises(Unreadable):
        read_json(b"[" * 900 + b"]" * 900)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_numbers_are_refused(token):
    with pytest.raises(RequestError, match=f"Non-standard token '{token}'") as e:
        read_json(b'{"a": [1, ' + token.encode() + b"]}")
    assert e.value.error_type == "x_content_parse_exception"


def test_duplicate_keys_are_refused_at_any_depth():
    with pytest.raises(RequestError, match="Duplicate field 'b'"):
        read_json(b'{"a": {"b": 1, "b": 2}}')


@pytest.mark.parametrize("body", [b'{"a": ', b"\xff\xfe{", b'{"a": "x\x00"}', b'{"a": "\xff"}'])
def test_what_is_not_json_is_unreadable(body):
    with pytest.raises(Unreadable):
        read_json(body)


def test_a_byte_order_mark_is_read_past_as_the_engines_do():
    assert read_json(b'\xef\xbb\xbf{"a": 1}') == ({"a": 1}, 1)


def test_gzip_and_deflate_are_undone_and_bounded_by_the_limit():
    body = b'{"ext": {"dsr": {"text": "red"}}}'
    assert decompress(gzip.compress(body), ["gzip"], 1000) == body
    assert decompress(zlib.compress(body), ["deflate"], 1000) == body
    assert decompress(gzip.compress(body) + gzip.compress(body), ["gzip"], 1000) == body + body
    assert decompress(gzip.compress(gzip.compress(body)), ["gzip", "gzip"], 1000) == body
    with pytest.raises(BodyTooLarge):
        decompress(gzip.compress(body), ["gzip"], len(body) - 1)


def test_a_bomb_is_stopped_at_the_limit_without_inflating_it():
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    started = time.monotonic()
    with pytest.raises(BodyTooLarge):
        decompress(bomb, ["gzip"], 1024 * 1024)
    assert time.monotonic() - started < 1.0


def test_a_body_that_does_not_decode_is_a_400_and_an_unknown_coding_the_clusters():
    with pytest.raises(RequestError, match=r"Content-Encoding \[gzip\]") as e:
        decompress(b"not gzip", ["gzip"], 1000)
    assert e.value.status == 400
    with pytest.raises(RequestError, match="truncated"):
        decompress(gzip.compress(b"{}" * 100)[:-10], ["gzip"], 1000)
    with pytest.raises(Unreadable):
        decompress(b"x", ["br"], 1000)


def test_content_codings_are_read_in_order_without_identity():
    assert content_codings(None) == []
    assert content_codings("identity") == []
    assert content_codings("GZIP") == ["gzip"]
    assert content_codings("deflate, gzip") == ["deflate", "gzip"]
