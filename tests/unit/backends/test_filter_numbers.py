"""Numeric strings in filters compare as numbers, as on the engines' numeric fields, and never raise."""

from __future__ import annotations

import pytest

from dsr.backends.filters import matches, to_query_clauses, validate
from dsr.errors import UsageError

DOC = {"price": 25.0, "stock": 3, "brand": "Acme", "sizes": [40, 42]}


@pytest.mark.parametrize(("filters", "expected"), [
    ({"price": {"gte": "10"}}, True),
    ({"price": {"gte": "25.5"}}, False),
    ({"price": {"gt": " 1e1 ", "lte": "25"}}, True),
    ({"price": "25"}, True),
    ({"stock": ["2", "3"]}, True),
    ({"sizes": {"gte": "41"}}, True),
    ({"brand": {"gte": "10"}}, False),  # a range never matches a value that is no number
    ({"price": "cheap"}, False),
])
def test_numeric_strings_compare_as_numbers(filters, expected):
    validate(filters)
    assert matches(DOC, filters) is expected


@pytest.mark.parametrize("bound", ["ten", "", "nan", "inf", None, [1]])
def test_a_bound_that_is_no_finite_number_is_refused_naming_the_field(bound):
    with pytest.raises(UsageError, match="'price'"):
        validate({"price": {"gte": bound}})


@pytest.mark.parametrize("bound", ["ten", None, [1], {"x": 1}])
def test_matching_an_unvalidated_filter_never_raises(bound):
    assert matches(DOC, {"price": {"gte": bound}}) is False


def test_the_cluster_gets_the_bound_as_written_for_the_engine_to_coerce():
    assert to_query_clauses({"price": {"gte": "10"}}) == [{"range": {"price": {"gte": "10"}}}]
