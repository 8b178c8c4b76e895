"""`_msearch` bodies: searches batched in one request, some answered hybrid and the rest by the cluster.

A shop's front end (Searchkit, InstantSearch adapters, a page with several result blocks) batches
its searches in `_msearch`: newline-delimited pairs of a header (`{"index": ...}`, or `{}` for the
URL's index) and a search body. dsr reads the pairs; the ones a configured index answers hybrid run
as hybrid searches, the others go to the cluster together in one `_msearch` of their original lines,
and the answers are put back in the order of the request. A body dsr cannot read is the cluster's
to answer, whole, as it came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dsr.server.body import Unreadable, read_json
from dsr.server.errors import RequestError

MSEARCH_TYPES = {"application/x-ndjson", "application/json", "application/vnd.elasticsearch+x-ndjson"}

HYBRID_HEADER_KEYS = frozenset({"index", "preference", "request_cache", "search_type", "ignore_unavailable",
                                "allow_no_indices", "expand_wildcards", "allow_partial_search_results",
                                "ccs_minimize_roundtrips"})
"""Header keys a hybrid entry honours: `index`, and URL parameters its final pass carries."""


@dataclass(frozen=True)
class MsearchEntry:
    """One search of an `_msearch`: its header, body, the lines they came as, and its target."""

    header: dict[str, Any]
    body: dict[str, Any]
    lines: bytes  # the header line and the body line, as sent (for the cluster's part)
    target: str | None  # the index the header (or the URL) names; None: several or none

    @property
    def params(self) -> dict[str, str]:
        """The header's keys other than `index`, as the URL parameters of a search."""
        return {k: _param(v) for k, v in self.header.items() if k != "index"}

    @property
    def hybrid_header(self) -> bool:
        return set(self.header) <= HYBRID_HEADER_KEYS


def read_msearch(body: bytes, default_index: str | None) -> list[MsearchEntry] | None:
    """The entries of an `_msearch` body, or None when dsr cannot read it (the cluster answers it)."""
    lines = body.split(b"\n")
    if lines and lines[-1].strip() == b"":
        lines = lines[:-1]
    if not lines or len(lines) % 2:
        return None
    entries = []
    for i in range(0, len(lines), 2):
        try:
            header, _ = read_json(lines[i]) if lines[i].strip() else ({}, 0)
            search, _ = read_json(lines[i + 1]) if lines[i + 1].strip() else ({}, 0)
        except (Unreadable, RequestError):  # the cluster's to refuse, in its own words
            return None
        if not isinstance(header, dict) or not isinstance(search, dict):
            return None
        index = header.get("index", default_index)
        if isinstance(index, list):
            index = index[0] if len(index) == 1 and isinstance(index[0], str) else None
        target = index if isinstance(index, str) and index else None
        entries.append(MsearchEntry(header, search, lines[i] + b"\n" + lines[i + 1] + b"\n", target))
    return entries


def cluster_part(entries: list[MsearchEntry]) -> bytes:
    """The `_msearch` body of the entries the cluster answers: their lines as they came."""
    return b"".join(e.lines for e in entries)


def assemble(answers: list[dict[str, Any]], took: int) -> bytes:
    """The `_msearch` answer: every entry's answer in the request's order."""
    return json.dumps({"took": took, "responses": answers}).encode()


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
