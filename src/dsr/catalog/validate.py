"""Validation of a catalog row: a clean item, a tombstone, or a reason to reject it.

Rules follow the catalog row format of DESIGN.md: `id` (string, required, unique) and `title`
(required), optional text fields, numeric fields that must really be numbers, `attributes` an object.
Unknown fields are kept as they are. Numbers written as strings (CSV has nothing else) are converted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsr.catalog.fields import EMBEDDING_FIELD, TEXT_FIELDS

TOMBSTONE_FIELD = "_deleted"
NUMERIC_FIELDS = ("price", "popularity", "ctr", "cvr", "sales", "rating", "review_count")
_TRUE = {"true", "1", "yes"}


@dataclass(frozen=True)
class Limits:
    id_bytes: int = 512  # Elasticsearch's own limit on a document id
    title_chars: int = 1_000
    short_chars: int = 1_000  # brand, category
    description_chars: int = 50_000
    row_bytes: int = 1_000_000


@dataclass(frozen=True)
class Checked:
    """`item` when the row is good, `reason` when it is rejected; `deleted` marks a tombstone."""

    item: dict[str, Any] | None
    reason: str | None = None
    deleted: bool = False
    item_id: str | None = None


def check_id(value: Any, limits: Limits = Limits()) -> tuple[str | None, str | None]:
    """The id as a string, or why it is not acceptable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "missing id"
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, f"id must be a string, got {type(value).__name__} {value!r}"[:200]
    text = str(value)
    if len(text.encode("utf-8", "surrogatepass")) > limits.id_bytes:
        return None, f"id is longer than {limits.id_bytes} bytes"
    return text, None


def is_tombstone(row: Mapping[str, Any]) -> bool:
    flag = row.get(TOMBSTONE_FIELD)
    if isinstance(flag, str):
        return flag.strip().lower() in _TRUE
    return flag is True or flag == 1


def validate_row(row: Mapping[str, Any], limits: Limits = Limits()) -> Checked:
    item_id, reason = check_id(row.get("id"), limits)
    if reason:
        return Checked(None, reason, item_id=None if row.get("id") is None else str(row.get("id"))[:200])
    assert item_id is not None
    if is_tombstone(row):
        return Checked({"id": item_id}, deleted=True, item_id=item_id)
    reason = _problem(row, limits)
    if reason:
        return Checked(None, reason, item_id=item_id)
    item = dict(row)
    item["id"] = item_id
    item.pop(TOMBSTONE_FIELD, None)
    for name in NUMERIC_FIELDS:
        if item.get(name) is not None:
            item[name] = _number(item[name])
    try:
        size = len(json.dumps(item, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        return Checked(None, "invalid UTF-8 (a lone surrogate in a string)", item_id=item_id)
    if size > limits.row_bytes:
        return Checked(None, f"row is larger than {limits.row_bytes} bytes", item_id=item_id)
    return Checked(item, item_id=item_id)


def _problem(row: Mapping[str, Any], limits: Limits) -> str | None:
    title = row.get("title")
    if title is None or (isinstance(title, str) and not title.strip()):
        return "missing title"
    for name in TEXT_FIELDS:
        value = row.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name} must be a string, got {type(value).__name__}"
        limit = _text_limit(name, limits)
        if len(value) > limit:
            return f"{name} is longer than {limit} characters ({len(value)})"
    for name in NUMERIC_FIELDS:
        value = row.get(name)
        if value is None:
            continue
        number = _number(value)
        if number is None:
            return f"{name} must be a number, got {value!r}"[:200]
        if not math.isfinite(number):
            return f"{name} must be finite, got {value!r}"
        if name == "price" and number < 0:
            return f"price must not be negative, got {value!r}"
    attributes = row.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        return f"attributes must be an object, got {type(attributes).__name__}"
    if EMBEDDING_FIELD in row:
        return f"field {EMBEDDING_FIELD!r} is reserved for the item vector computed at ingest"
    for name in row:
        if not isinstance(name, str) or not name:
            return "a field name is empty"
        if name.startswith("_") and name != TOMBSTONE_FIELD:
            return f"field name {name!r} starts with '_', which the search engines reserve"
    return None


def _text_limit(name: str, limits: Limits) -> int:
    if name == "title":
        return limits.title_chars
    return limits.description_chars if name == "description" else limits.short_chars


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return None
    return None
