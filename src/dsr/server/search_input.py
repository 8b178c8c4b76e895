"""Whose a `_search` request is: dsr's (a body with `ext.dsr`, read as the engines read bodies) or the cluster's.

The body of a search is taken where the engines take it: the request body, else (a bodiless GET, as
the clients send one) the `source` URL parameter with its `source_content_type`. It is decoded
(`Content-Encoding`), negotiated (`dsr.server.media`) and parsed strictly (`dsr.server.body`) only
when it may hold `ext.dsr`; a body that does not is relayed to the cluster as it came, unread, so a
plain search pays for one substring test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsr.server.body import Unreadable, content_codings, decompress, may_hold_dsr, parse_error, read_json
from dsr.server.dsr_request import has_dsr_ext
from dsr.server.errors import RequestError
from dsr.server.media import MediaType, MediaTypeNotSupported, negotiate

SOURCE_PARAMS = ("source", "source_content_type")


@dataclass(frozen=True)
class SearchInput:
    """A search that is dsr's: its parsed body, its URL parameters and how it is answered."""

    body: dict[str, Any]
    params: dict[str, str]  # without `source` / `source_content_type` when they carried the body
    media: MediaType
    has_ext: bool = True  # the body carries `ext.dsr` (else: a plain search on an index answered hybrid)


def worth_reading(headers: Mapping[str, str], query_string: bytes, raw: bytes) -> bool:
    """The cheap test: False for a request that cannot be an `ext.dsr` search, relayed unread."""
    if raw:
        return may_hold_dsr(raw) or "content-encoding" in headers
    return b"source=" in query_string


def read_search(headers: Mapping[str, str], params: Mapping[str, str], raw: bytes, *, limit: int,
                flavor: str, relay: bool, dsr_limit: int | None = None, plain: bool = False) -> SearchInput | None:
    """The `ext.dsr` search `raw` holds, or None when the request is the cluster's.

    With `plain` (a search on an index answered hybrid by default) a body without `ext.dsr` is read
    as well; one dsr cannot read, or larger than `dsr_limit`, is still the cluster's.

    Args:
        limit: the most bytes the body may have, decoded.
        dsr_limit: the most bytes the body of an `ext.dsr` search may have, decoded (None: `limit`).
        flavor: the cluster's engine ("elasticsearch", "opensearch", "embedded"): what it reads.
        relay: whether there is a cluster to relay to; without one, a body dsr cannot read is refused.

    Raises:
        RequestError: what the engines refuse as well (a 4xx with their error type).
    """
    rest = dict(params)
    from_source = not raw and "source" in rest
    try:
        if from_source:
            body = rest.pop("source").encode("utf-8", "surrogatepass")
            content_type = rest.pop("source_content_type", None)
        else:
            body = decompress(raw, content_codings(headers.get("content-encoding")), limit)
            content_type = headers.get("content-type")
        if not plain and not may_hold_dsr(body):
            return None
        media = _media(content_type, headers.get("accept"), flavor, from_source)
        if media is None:
            if relay:
                return None
            raise MediaTypeNotSupported(content_type or "")
        value, _ = read_json(body)
    except Unreadable as e:
        if relay:
            return None
        raise parse_error(f"the search body is not JSON dsr can read: {e}") from None
    has_ext = has_dsr_ext(value)
    if not has_ext and (not plain or not isinstance(value, dict)
                        or (dsr_limit is not None and len(body) > dsr_limit)):
        return None
    if dsr_limit is not None and len(body) > dsr_limit:
        raise RequestError(f"the body of a search with ext.dsr is {len(body)} bytes; the configured maximum is "
                           f"{dsr_limit}", status=413, error_type="content_too_long_exception")
    return SearchInput(value, rest, media, has_ext)


def _media(content_type: str | None, accept: str | None, flavor: str, from_source: bool) -> MediaType | None:
    if not from_source:
        return negotiate(content_type, accept, flavor)
    # the URL form: the engines answer its mistakes as a validation failure
    if content_type is None:
        raise RequestError("Validation Failed: 1: source and source_content_type parameters are required;",
                           error_type="validation_exception")
    try:
        return negotiate(content_type, accept, flavor)
    except MediaTypeNotSupported:
        raise RequestError(f"Validation Failed: 1: Unknown value for source_content_type [{content_type}];",
                           error_type="validation_exception") from None
