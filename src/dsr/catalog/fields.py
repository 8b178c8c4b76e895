"""The catalog item as every part of dsr sees it.

A catalog row is a plain mapping so unknown fields survive the trip into the cluster untouched;
these helpers read the well-known fields with the defaults the models rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

Item = Mapping[str, Any]

TEXT_FIELD_BOOSTS: Mapping[str, float] = MappingProxyType({
    "title": 3.0, "brand": 2.0, "category": 1.5, "description": 1.0})
"""The catalog's text fields, which term search matches, each with its weight in the match.

The title says most about what an item is, brand and category name it in the shoppers' own words,
and the description matches almost anything. Each backend spells these in its engine's terms (the
cluster's `multi_match` fields, the embedded index's tantivy fields); validation checks them all.
"""
TEXT_FIELDS: tuple[str, ...] = tuple(TEXT_FIELD_BOOSTS)
EMBEDDING_FIELD = "embedding"  # the item vector dsr adds to a document; reserved in catalog rows


def item_text(item: Item) -> str:
    """Title, brand and category joined: the text the models read for an item."""
    parts = [str(item.get(f) or "") for f in ("title", "brand", "category")]
    return " ".join(p for p in parts if p)


def category_levels(item: Item) -> list[str]:
    """The category path `a > b > c` as its levels, outermost first."""
    raw = item.get("category") or ""
    return [level.strip() for level in str(raw).split(">") if level.strip()]


def numeric_field(item: Item, name: str, default: float = 0.0) -> float:
    """A numeric field as float, the declared default when missing or not a number."""
    value = item.get(name)
    if value is None or isinstance(value, bool):
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if out == out else default  # NaN -> default
