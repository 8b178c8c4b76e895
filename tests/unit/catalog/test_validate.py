"""Row validation: what a good item is, and the reason a bad one gives."""

from __future__ import annotations

import pytest

from dsr.catalog.validate import Limits, validate_row


def test_a_good_row_keeps_unknown_fields_and_converts_numeric_strings():
    checked = validate_row({"id": 7, "title": "Lamp", "price": "12.5", "colour_code": "x1"})
    assert checked.reason is None
    assert checked.item == {"id": "7", "title": "Lamp", "price": 12.5, "colour_code": "x1"}


@pytest.mark.parametrize(("row", "reason"), [
    ({"title": "x"}, "missing id"),
    ({"id": "  ", "title": "x"}, "missing id"),
    ({"id": 1.5, "title": "x"}, "id must be a string"),
    ({"id": "a"}, "missing title"),
    ({"id": "a", "title": ""}, "missing title"),
    ({"id": "a", "title": 3}, "title must be a string"),
    ({"id": "a", "title": "x", "price": "abc"}, "price must be a number, got 'abc'"),
    ({"id": "a", "title": "x", "price": True}, "price must be a number"),
    ({"id": "a", "title": "x", "price": float("nan")}, "price must be finite"),
    ({"id": "a", "title": "x", "price": -1}, "price must not be negative"),
    ({"id": "a", "title": "x", "brand": ["b"]}, "brand must be a string"),
    ({"id": "a", "title": "x", "attributes": "red"}, "attributes must be an object"),
    ({"id": "a", "title": "x", "embedding": [1.0]}, "reserved"),
    ({"id": "a", "title": "x", "_id": "b"}, "starts with '_'"),
    ({"id": "a", "title": "x" * 1001}, "title is longer than 1000"),
    ({"id": "é" * 300, "title": "x"}, "id is longer than 512 bytes"),
    ({"id": "a", "title": "bad \ud800 surrogate"}, "invalid UTF-8"),
])
def test_bad_rows_are_rejected_with_a_reason(row, reason):
    checked = validate_row(row)
    assert checked.item is None
    assert reason in checked.reason


def test_limits_are_configurable():
    assert validate_row({"id": "a", "title": "abcdef"}, Limits(title_chars=3)).item is None


@pytest.mark.parametrize("flag", [True, "true", "1", 1])
def test_a_tombstone_needs_only_an_id(flag):
    checked = validate_row({"id": "a", "_deleted": flag})
    assert checked.deleted and checked.item == {"id": "a"}


def test_a_false_tombstone_flag_is_an_ordinary_row():
    checked = validate_row({"id": "a", "title": "x", "_deleted": False})
    assert not checked.deleted and checked.item == {"id": "a", "title": "x"}
