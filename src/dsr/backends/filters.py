"""One filter language for every backend.

`{"brand": "acme"}` matches a keyword exactly, `{"brand": ["a", "b"]}` any of them,
`{"price": {"gte": 10, "lt": 50}}` a range. The cluster backends translate it to the bool-filter
clauses both engines share; the embedded backend and the vector sidecar evaluate it in Python with
`matches`, so every backend agrees on what a filter means.

Values compare as the engines compare them on a numeric field: a numeric string (`{"gte": "10"}`,
`{"price": "25"}`) is the number it spells; a range bound that is no number is refused, naming the
field; a range never matches a value that is not a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dsr.errors import UsageError

RANGE_OPS = ("gt", "gte", "lt", "lte")


def _check(field: str, condition: Any) -> None:
    if isinstance(condition, Mapping):
        unknown = set(condition) - set(RANGE_OPS)
        if unknown or not condition:
            raise UsageError(f"filter on {field!r}: a range takes {', '.join(RANGE_OPS)}; got {sorted(condition)}")
        for op, bound in condition.items():
            if _number(bound) is None:
                raise UsageError(f"filter on {field!r}: {op} needs a number, got {bound!r}")
    elif isinstance(condition, list | tuple):
        if not condition:
            raise UsageError(f"filter on {field!r}: an empty list matches nothing")
    elif not isinstance(condition, str | int | float | bool):
        raise UsageError(f"filter on {field!r}: unsupported value {condition!r}")


def _number(value: Any) -> float | None:
    """`value` as the number a numeric field reads it as (numbers and numeric strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def validate(filters: Mapping[str, Any] | None) -> None:
    for field, condition in (filters or {}).items():
        _check(field, condition)


def to_query_clauses(filters: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Bool `filter` clauses in the query DSL shared by Elasticsearch and OpenSearch."""
    validate(filters)
    clauses: list[dict[str, Any]] = []
    for field, condition in (filters or {}).items():
        if isinstance(condition, Mapping):
            clauses.append({"range": {field: dict(condition)}})
        elif isinstance(condition, list | tuple):
            clauses.append({"terms": {field: list(condition)}})
        else:
            clauses.append({"term": {field: condition}})
    return clauses


def _value_matches(value: Any, condition: Any) -> bool:
    if isinstance(value, list):
        return any(_value_matches(v, condition) for v in value)
    if isinstance(condition, Mapping):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        bounds = [(op, _number(b)) for op, b in condition.items()]
        return all(
            b is not None and ((op == "gt" and value > b) or (op == "gte" and value >= b)
                               or (op == "lt" and value < b) or (op == "lte" and value <= b))
            for op, b in bounds
        )
    if isinstance(condition, list | tuple):
        return any(_equals(value, c) for c in condition)
    return _equals(value, condition)


def _equals(value: Any, wanted: Any) -> bool:
    """Term equality; on a numeric value a numeric string counts as its number, as on a numeric field."""
    if isinstance(value, int | float) and not isinstance(value, bool) and isinstance(wanted, str):
        number = _number(wanted)
        return number is not None and value == number
    return bool(value == wanted)


def matches(source: Mapping[str, Any], filters: Mapping[str, Any] | None) -> bool:
    """Whether a document source passes the filters (dotted field names reach into objects)."""
    for field, condition in (filters or {}).items():
        value: Any = source
        for part in field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or not _value_matches(value, condition):
            return False
    return True
