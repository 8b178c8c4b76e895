"""Columns side by side: where each shown hit stands in the other columns, and which are shown by one column only.

Pure functions of the rankings (item ids, best first, `DEPTH` places each), so the page and the API
agree on what "moved" means: the hit's place in another column's ranking minus its place here, so
`+3` is "three places higher here than there", and None when the other column does not have it in
its ranking at all. A hit is "only here" when no other column shows it in its first `shown` places.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

IMAGE_FIELDS = ("image", "image_url", "imageUrl", "thumbnail", "thumbnail_url", "img", "picture", "images")


@dataclass(frozen=True)
class Move:
    """The same hit in another column: its 1-based place there (None: not in its ranking) and the move to here."""

    column: int
    rank: int | None
    delta: int | None

    def to_json(self) -> dict[str, int | None]:
        return {"column": self.column, "rank": self.rank, "delta": self.delta}


def places(ranking: Sequence[str]) -> dict[str, int]:
    """item id -> its 1-based place (the first, should an id come twice)."""
    out: dict[str, int] = {}
    for n, doc_id in enumerate(ranking, start=1):
        out.setdefault(doc_id, n)
    return out


def moves(rankings: Sequence[Sequence[str]], column: int, doc_id: str, rank: int) -> list[Move]:
    """Where `doc_id`, at place `rank` of column `column`, stands in each other column."""
    out = []
    for other, ranking in enumerate(rankings):
        if other == column:
            continue
        there = places(ranking).get(doc_id)
        out.append(Move(other, there, None if there is None else there - rank))
    return out


def only_here(rankings: Sequence[Sequence[str]], column: int, shown: int) -> set[str]:
    """The ids column `column` shows (first `shown` places) that no other column shows."""
    elsewhere = {doc_id for other, ranking in enumerate(rankings) if other != column for doc_id in ranking[:shown]}
    if len(rankings) < 2:
        return set()
    return {doc_id for doc_id in rankings[column][:shown] if doc_id not in elsewhere}


def image_url(source: Mapping[str, Any]) -> str | None:
    """The item's picture, when the catalog has one as an http(s) URL (anything else is never shown)."""
    for name in IMAGE_FIELDS:
        value = source.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, Mapping):
            value = value.get("url") or value.get("src")
        if isinstance(value, str) and value.strip().lower().startswith(("https://", "http://")):
            return value.strip()
    return None
