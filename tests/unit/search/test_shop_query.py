"""Reading a shop's own query: the shopper's text it searches for, and what every hit must match beside it.

The text is the first text query form found, depth first in the order the clauses are written, in
the query, a `bool`'s `must` and `should`, and the query of a wrapper (`function_score`,
`constant_score`, `boosting`, `dis_max`). The restrictions are the `filter`, `must_not` and
non-text `must` clauses of every `bool` from the root down to the text; `should` clauses only score.
"""

from __future__ import annotations

from typing import Any

import pytest

from dsr.search.shop_query import TEXT_QUERY_FORMS, Restrictions, read_shop_query

IN_STOCK = {"term": {"in_stock": True}}
ACME = {"term": {"brand": "acme"}}
CHEAP = {"range": {"price": {"lte": 50}}}
HIDDEN = {"term": {"hidden": True}}
PROMO = {"term": {"promo": True}}


def text_of(query: Any, forms: tuple[str, ...] = TEXT_QUERY_FORMS) -> str | None:
    return read_shop_query(query, forms).text


# -- the text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    {"match": {"title": "red sneakers"}},
    {"match": {"title": {"query": "red sneakers", "operator": "and"}}},
    {"multi_match": {"query": "red sneakers", "fields": ["title^3", "description"]}},
    {"combined_fields": {"query": "red sneakers", "fields": ["title", "description"]}},
    {"simple_query_string": {"query": "red sneakers", "fields": ["title"]}},
], ids=["match-short", "match-long", "multi_match", "combined_fields", "simple_query_string"])
def test_the_text_is_read_from_each_default_text_form(query):
    shop = read_shop_query(query)
    assert shop.text == "red sneakers"
    assert shop.form == next(iter(query))
    assert shop.query is query
    assert not shop.restrictions


def test_simple_query_string_operators_are_not_words_the_shopper_typed():
    query = {"simple_query_string": {"query": '"red sneakers" +acme -(blue | green) sneak*'}}
    assert text_of(query) == "red sneakers acme blue green sneak"


def test_a_fuzziness_or_slop_after_tilde_is_an_operator_too():
    assert text_of({"simple_query_string": {"query": '"red sneakers"~2 acme~1'}}) == "red sneakers acme"


def test_whitespace_is_collapsed_and_a_number_is_a_text():
    assert text_of({"multi_match": {"query": "  red \t sneakers\n"}}) == "red sneakers"
    assert text_of({"match": {"size": 42}}) == "42"
    assert text_of({"match": {"size": {"query": 9.5}}}) == "9.5"


@pytest.mark.parametrize("query", [
    {"match": {"title": "   "}},
    {"multi_match": {"query": ""}},
    {"simple_query_string": {"query": "+-()"}},
    {"match": {"in_stock": True}},
    {"multi_match": {"fields": ["title"]}},
    {"match": {"title": "red", "description": "shoe"}},  # not a match query: one field only
    {"match": "red"},
], ids=["blank", "empty", "operators-only", "boolean", "no-query", "two-fields", "not-an-object"])
def test_a_text_form_without_words_holds_no_text(query):
    assert text_of(query) is None


@pytest.mark.parametrize("query", [
    None, {}, {"match_all": {}}, {"term": {"brand": "acme"}}, {"ids": {"values": ["a"]}},
    {"bool": {"filter": [{"match": {"title": "red"}}]}},  # filter context: a restriction, not a text
    {"bool": {"must_not": [{"match": {"title": "red"}}]}},
    {"match_phrase": {"title": "red sneakers"}},  # not a default form
    {"query_string": {"query": "red sneakers"}},
    {"match": {"title": "red"}, "term": {"brand": "acme"}},  # not one query
], ids=["none", "empty", "match_all", "term", "ids", "in-filter", "in-must_not", "match_phrase", "query_string",
        "two-keys"])
def test_no_text_is_none(query):
    shop = read_shop_query(query)
    assert shop.text is None and shop.form is None
    assert not shop.restrictions


def test_the_text_is_found_in_bool_must_and_should():
    assert text_of({"bool": {"must": [IN_STOCK, {"match": {"title": "red sneakers"}}]}}) == "red sneakers"
    assert text_of({"bool": {"must": {"match": {"title": "red sneakers"}}}}) == "red sneakers"  # one clause
    assert text_of({"bool": {"should": [PROMO, {"multi_match": {"query": "red sneakers"}}]}}) == "red sneakers"


def test_the_text_is_found_in_nested_bools():
    query = {"bool": {"must": [{"bool": {"should": [{"bool": {"must": [{"match": {"title": "red"}}]}}]}}]}}
    assert text_of(query) == "red"


@pytest.mark.parametrize("query", [
    {"function_score": {"query": {"match": {"title": "red"}}, "functions": [{"weight": 2}]}},
    {"constant_score": {"filter": {"match": {"title": "red"}}, "boost": 2}},
    {"boosting": {"positive": {"match": {"title": "red"}}, "negative": PROMO, "negative_boost": 0.5}},
    {"dis_max": {"queries": [{"term": {"brand": "acme"}}, {"match": {"title": "red"}}]}},
    {"script_score": {"query": {"match": {"title": "red"}}, "script": {"source": "_score"}}},
], ids=["function_score", "constant_score", "boosting", "dis_max", "script_score"])
def test_the_text_is_found_in_the_query_of_a_wrapper(query):
    assert text_of(query) == "red"


def test_a_boosting_querys_negative_holds_no_text_of_the_shopper():
    assert text_of({"boosting": {"positive": {"match_all": {}}, "negative": {"match": {"title": "red"}},
                                 "negative_boost": 0.5}}) is None


def test_the_first_text_wins_depth_first_in_the_order_written():
    query = {"bool": {
        "must": [{"bool": {"should": [{"match": {"title": "first"}}]}}, {"match": {"title": "second"}}],
        "should": [{"match": {"title": "third"}}]}}
    assert text_of(query) == "first"
    # must is looked at before should, whichever comes first in the object
    assert text_of({"bool": {"should": [{"match": {"title": "scored"}}],
                             "must": [{"match": {"title": "required"}}]}}) == "required"
    # a clause without words does not stop the search
    assert text_of({"dis_max": {"queries": [{"match": {"title": " "}}, {"match": {"title": "red"}}]}}) == "red"


def test_a_configured_form_list_changes_what_is_found():
    query = {"bool": {"should": [{"multi_match": {"query": "from multi"}}, {"match": {"title": "from match"}}]}}
    assert text_of(query) == "from multi"
    assert text_of(query, ("match",)) == "from match"
    assert text_of({"multi_match": {"query": "red"}}, ("match",)) is None
    assert text_of({"match_phrase": {"title": "red sneakers"}}, ("match_phrase",)) == "red sneakers"
    assert text_of({"query_string": {"query": "red sneakers"}}, ("query_string",)) == "red sneakers"


# -- the restrictions ----------------------------------------------------------------------------


def test_restrictions_are_the_filter_must_not_and_non_text_must_clauses():
    query = {"bool": {"must": [IN_STOCK, {"multi_match": {"query": "red sneakers"}}],
                      "filter": [ACME, CHEAP], "must_not": HIDDEN, "should": [PROMO]}}
    shop = read_shop_query(query)
    assert shop.text == "red sneakers"
    assert shop.restrictions == Restrictions(filters=(ACME, CHEAP, IN_STOCK), must_not=(HIDDEN,))


def test_should_clauses_restrict_nothing():
    shop = read_shop_query({"bool": {"should": [{"match": {"title": "red"}}, PROMO, {"bool": {"filter": ACME}}]}})
    assert shop.text == "red"
    assert not shop.restrictions


def test_a_must_clause_holding_text_is_no_restriction_even_a_second_one():
    shop = read_shop_query({"bool": {"must": [{"match": {"title": "red"}}, {"match": {"description": "shoe"}}]}})
    assert shop.text == "red"
    assert not shop.restrictions


def test_restrictions_of_every_bool_on_the_way_down_to_the_text_add_up():
    inner = {"bool": {"must": [{"match": {"title": "red"}}], "filter": ACME, "must_not": [HIDDEN]}}
    query = {"function_score": {"query": {"bool": {"must": [inner], "filter": [CHEAP]}},
                                "functions": [{"filter": PROMO, "weight": 3}]}}
    shop = read_shop_query(query)
    assert shop.text == "red"
    assert shop.restrictions == Restrictions(filters=(CHEAP, ACME), must_not=(HIDDEN,))


def test_bools_off_the_way_to_the_text_restrict_nothing():
    query = {"bool": {"must": [{"match": {"title": "red"}}],
                      "should": [{"bool": {"filter": [ACME], "must_not": [HIDDEN]}}]}}
    assert not read_shop_query(query).restrictions


def test_without_text_nothing_is_read_as_a_restriction():
    assert not read_shop_query({"bool": {"filter": [ACME], "must": [IN_STOCK]}}).restrictions


# -- Restrictions.query --------------------------------------------------------------------------


def test_no_restrictions_are_match_all():
    assert not Restrictions()
    assert Restrictions().query() == {"match_all": {}}


def test_restrictions_are_one_bool_in_filter_context():
    assert Restrictions(filters=(ACME, CHEAP), must_not=(HIDDEN,)).query() == \
        {"bool": {"filter": [ACME, CHEAP], "must_not": [HIDDEN]}}
    assert Restrictions(filters=(ACME,)).query() == {"bool": {"filter": [ACME]}}
    assert Restrictions(must_not=(HIDDEN,)).query() == {"bool": {"must_not": [HIDDEN]}}


def test_the_restrictions_query_is_a_copy_the_shops_query_does_not_share():
    shop = read_shop_query({"bool": {"must": {"match": {"title": "red"}}, "filter": [{"term": {"brand": "acme"}}]}})
    out = shop.restrictions.query()
    out["bool"]["filter"][0]["extra"] = 1
    assert shop.query["bool"]["filter"][0] == {"term": {"brand": "acme"}}
