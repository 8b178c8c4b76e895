"""The filter language means the same thing in the query DSL and in Python."""

from __future__ import annotations

import pytest

from dsr.backends.filters import matches, to_query_clauses
from dsr.errors import UsageError

DOC = {"brand": "Acme", "price": 25.0, "tags": ["a", "b"], "attributes": {"color": "red"}}


def test_scalars_lists_and_ranges_become_term_terms_and_range_clauses() -> None:
    assert to_query_clauses({"brand": "Acme", "tags": ["a", "z"], "price": {"gte": 10, "lt": 30}}) == [
        {"term": {"brand": "Acme"}},
        {"terms": {"tags": ["a", "z"]}},
        {"range": {"price": {"gte": 10, "lt": 30}}},
    ]
    assert to_query_clauses(None) == []


@pytest.mark.parametrize("filters, expected", [
    ({"brand": "Acme"}, True),
    ({"brand": "acme"}, False),
    ({"brand": ["Zed", "Acme"]}, True),
    ({"price": {"gt": 25}}, False),
    ({"price": {"gte": 25, "lte": 25}}, True),
    ({"tags": "b"}, True),
    ({"attributes.color": "red"}, True),
    ({"missing": "x"}, False),
    ({"brand": {"gte": 1}}, False),
])
def test_matches_agrees_with_the_clause_semantics(filters, expected) -> None:
    assert matches(DOC, filters) is expected


@pytest.mark.parametrize("bad", [{"price": {"between": 1}}, {"price": {"gte": "ten"}}, {"brand": []},
                                 {"brand": {"x": 1}}, {"price": {}}])
def test_invalid_filters_name_the_field(bad) -> None:
    with pytest.raises(UsageError, match=next(iter(bad))):
        to_query_clauses(bad)
