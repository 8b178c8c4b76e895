"""Reading a search body the way Elasticsearch and OpenSearch read it, before dsr decides whose it is.

A body is inspected only when it may hold `ext.dsr` (`may_hold_dsr`: the keys written plainly, or
a `\\u` escape of one of their letters, or a compressed body); every other body, one with escaped
non-ASCII text included, goes to the cluster unread. An inspected body is decoded as the engines
decode it:

* `Content-Encoding: gzip` / `deflate` is undone, and the decoded size counts against the same
  limit as the body (`http.max_content_length`), so a small bomb cannot grow past it;
* JSON is read strictly: `NaN` / `Infinity`, duplicate keys and nesting deeper than the engines'
  1,000 levels (x-content's `max_nesting_depth`) are refused with the engines' 400
  `x_content_parse_exception`, whatever the body asks for.

What dsr cannot read (a JSON syntax error, an unknown encoding, a body nested too deep for dsr to
parse but within the engines' limit) raises `Unreadable`: such a body is the cluster's to judge. A
body that does not decode as its declared `Content-Encoding` is a 400 (the engines drop the
connection on it).
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

import numpy as np

from dsr.server.errors import RequestError
from dsr.server.proxy import BodyTooLarge

ENGINE_MAX_DEPTH = 1000
"""Nesting depth both engines' JSON parser accepts at most (Elasticsearch refuses deeper documents)."""
PARSE_MAX_DEPTH = 500
"""Deepest body dsr parses itself; deeper (but within the engines' limit) is left to the cluster."""

_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS,
              "x-deflate": zlib.MAX_WBITS}
_KEY_LETTER_ESCAPE = re.compile(rb"\\u00(?:6[45]|7[2348])")  # d e r s t x, the letters of "ext" and "dsr"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as int8


class Unreadable(Exception):
    """A body dsr cannot read as JSON; the cluster answers it as it would."""


def parse_error(reason: str) -> RequestError:
    """The engines' answer to a body their JSON parser refuses."""
    return RequestError(reason, error_type="x_content_parse_exception")


def may_hold_dsr(body: bytes) -> bool:
    """Whether `body` could carry `ext.dsr`: the cheap test that lets every other body pass unread."""
    if b'"dsr"' in body and b'"ext"' in body:
        return True
    # one backslash is found at memchr speed; only a body with one is searched for escapes
    return b"\\" in body and _KEY_LETTER_ESCAPE.search(body) is not None


def content_codings(header: str | None) -> list[str]:
    """The codings of a `Content-Encoding` header, in the order they were applied ("identity" dropped)."""
    return [c for c in (part.strip().lower() for part in (header or "").split(",")) if c and c != "identity"]


def decompress(body: bytes, codings: list[str], limit: int) -> bytes:
    """`body` with its content codings undone, never more than `limit` bytes of it.

    Raises:
        BodyTooLarge: the decoded body is over `limit`.
        RequestError: data that does not decode (the engines drop the connection on it).
        Unreadable: a coding dsr does not decode; the cluster answers it.
    """
    for coding in reversed(codings):
        if coding not in _ENCODINGS:
            raise Unreadable(f"content coding {coding!r}")
        body = _inflate(body, _ENCODINGS[coding], limit, coding)
    return body


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    out: list[bytes] = []
    size = 0
    while data:  # gzip allows several members one after another
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(data, limit + 1 - size)
        except zlib.error as e:
            raise RequestError(f"the body does not decode as Content-Encoding [{coding}]: {e}") from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(limit)
        if not inflater.eof:
            raise RequestError(f"the body does not decode as Content-Encoding [{coding}]: it is truncated")
        data = inflater.unused_data
    return b"".join(out)


def nesting_depth(body: bytes) -> int:
    """How many objects and arrays deep `body` nests (strings and what they hold do not count)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets.translate(_STEPS), dtype=np.int8)
    return int(np.cumsum(steps, dtype=np.int64).max())


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NonStandard(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return obj


def _constant(token: str) -> Any:
    raise _NonStandard(token)


def read_json(body: bytes) -> tuple[Any, int]:
    """The JSON value of `body` and how deep it nests, read as strictly as the engines read it.

    Raises:
        RequestError: what the engines refuse too (x_content_parse_exception): NaN or Infinity,
            a duplicate key, nesting deeper than `ENGINE_MAX_DEPTH`.
        Unreadable: not JSON dsr can read (syntax, encoding, deeper than `PARSE_MAX_DEPTH`).
    """
    depth = nesting_depth(body)
    if depth > ENGINE_MAX_DEPTH:
        raise parse_error(f"Document nesting depth ({ENGINE_MAX_DEPTH + 1}) exceeds the maximum allowed "
                          f"({ENGINE_MAX_DEPTH})")
    if depth > PARSE_MAX_DEPTH:
        raise Unreadable(f"nested {depth} levels deep")
    try:
        return json.loads(body, object_pairs_hook=_pairs, parse_constant=_constant), depth
    except _Duplicate as e:
        raise parse_error(f"Duplicate field '{e.key}'") from None
    except _NonStandard as e:
        raise parse_error(f"Non-standard token '{e.token}': NaN and Infinity are not JSON numbers") from None
    except (ValueError, RecursionError) as e:
        raise Unreadable(str(e)) from None
