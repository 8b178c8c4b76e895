"""A shop's search body read for a hybrid answer, or the reason it is not.

The same problem is a `NotHybrid` for the shop's plain search (the cluster answers it, and the
reason goes into `X-Dsr-Reason`) and a `RequestError` (a 400 naming it) when the body carries
`ext.dsr`: there the caller asked for a hybrid answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from dsr.backends.cluster import term_query
from dsr.search.fusion import FusionMode
from dsr.server.dsr_request import ExtOptions, Limits, parse_ext_options
from dsr.server.errors import RequestError
from dsr.server.serve_config import ServedEntry
from dsr.server.shop_request import NotHybrid, shop_search_request

LIMITS = Limits(max_k=500, max_text_chars=40, max_text_terms=5, max_depth=20)
ENTRY = ServedEntry("products")
TEXT = {"multi_match": {"query": "red sneakers", "fields": ["title", "description"]}}
ACME = {"term": {"brand": "acme"}}
SHOP_BODY: dict[str, Any] = {
    "query": {"bool": {"must": [TEXT], "filter": [ACME]}},
    "aggs": {"brands": {"terms": {"field": "brand"}}}, "highlight": {"fields": {"title": {}}},
    "sort": ["_score"], "size": 5, "from": 5,
}


def read(body: dict[str, Any], params: dict[str, str] | None = None, *, entry: ServedEntry | None = ENTRY,
         ext: ExtOptions | None = None):
    return shop_search_request(body, params or {}, LIMITS, entry=entry, ext=ext)


def deep(levels: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"match_all": {}}
    for _ in range(levels):
        inner = {"bool": {"must": [inner]}}
    return inner


def with_text(extra: dict[str, Any]) -> dict[str, Any]:
    return {"query": TEXT, **extra}


PROBLEMS = [
    pytest.param(with_text({"rescore": {"window_size": 10}}), {}, "[rescore]", id="refused-key"),
    pytest.param(with_text({"knn": {"field": "v"}}), {}, "[knn]", id="knn"),
    pytest.param(with_text({"frobnicate": True}), {}, "['frobnicate']", id="unknown-key"),
    pytest.param(with_text({}), {"q": "red"}, "['q']", id="url-parameter"),
    pytest.param({"query": "red sneakers"}, {}, "[query] must be an object", id="query-not-an-object"),
    pytest.param({"query": {"term": {"brand": "acme"}}}, {}, "no shopper's text", id="no-text"),
    pytest.param({"aggs": {"b": {"terms": {"field": "brand"}}}}, {}, "no shopper's text", id="no-query"),
    pytest.param({"query": {"match": {"title": "x" * 41}}}, {}, "[query] is 41 characters long", id="long-text"),
    pytest.param({"query": {"match": {"title": "a b c d e f"}}}, {}, "[query] has more than 5 terms",
                 id="many-terms"),
    pytest.param({"query": {"bool": {"must": [TEXT, deep(30)]}}}, {}, "nests deeper than 20 levels", id="deep"),
]


@pytest.mark.parametrize("body, params, named", PROBLEMS)
def test_a_plain_search_that_cannot_be_answered_hybrid_is_not_hybrid_with_the_reason(body, params, named):
    with pytest.raises(NotHybrid) as e:
        read(body, params)
    assert named in str(e.value)


@pytest.mark.parametrize("body, params, named", PROBLEMS)
def test_the_same_problem_with_ext_dsr_is_a_400_naming_it(body, params, named):
    with pytest.raises(RequestError) as e:
        read({**body, "ext": {"dsr": {"k": 10}}}, params, ext=ExtOptions(k=10))
    assert e.value.status == 400
    assert named in e.value.reason


def test_the_reasons_say_why_and_what_was_looked_for():
    with pytest.raises(NotHybrid, match=r"\[rescore\]: it re-scores the top hits"):
        read(with_text({"rescore": {}}))
    with pytest.raises(NotHybrid) as plain:
        read({"query": {"term": {"brand": "acme"}}})
    assert str(plain.value).startswith("no shopper's text in the query (looked for match, multi_match, "
                                       "combined_fields, simple_query_string,")
    assert "ext.dsr.text" not in str(plain.value)
    with pytest.raises(RequestError) as asked:
        read({"query": {"term": {"brand": "acme"}}}, ext=ExtOptions())
    assert asked.value.reason.startswith("[ext.dsr.text] is required: the query holds no shopper's text (looked for")


def test_a_shops_plain_request_becomes_a_hybrid_search_of_its_text():
    shop = read(SHOP_BODY, {"typed_keys": "true"})
    assert shop.body is SHOP_BODY and shop.params == {"typed_keys": "true"}
    assert shop.query.query == SHOP_BODY["query"]
    assert shop.query.text == "red sneakers" and shop.query.form == "multi_match"
    assert shop.query.restrictions.filters == (ACME,)
    s = shop.search
    assert (s.text, s.user, s.filters, s.term_k, s.knn_k, s.fusion, s.rerank, s.rerank_top) == \
        ("red sneakers", None, None, None, None, None, True, None)  # unset depths: the entry's, at search time


def test_ext_dsr_text_overrides_the_text_found_in_the_query():
    shop = read(SHOP_BODY, ext=ExtOptions(text="crimson trainers"))
    assert shop.search.text == "crimson trainers"
    assert shop.query.query == SHOP_BODY["query"]  # the term side is still the shop's own query
    assert shop.query.text == "red sneakers"


def test_ext_dsr_text_makes_a_query_without_text_hybrid():
    shop = read({"query": {"term": {"brand": "acme"}}}, ext=ExtOptions(text="red sneakers"))
    assert shop.search.text == "red sneakers"
    assert shop.query.query == {"term": {"brand": "acme"}}


def test_a_body_without_query_but_with_ext_text_gets_dsrs_default_term_query():
    shop = read({"aggs": {"b": {"terms": {"field": "brand"}}}}, ext=ExtOptions(text="red sneakers"))
    assert shop.query.query == term_query("red sneakers", None, None)
    assert "multi_match" in shop.query.query and shop.query.query["multi_match"]["query"] == "red sneakers"
    assert shop.query.text == "red sneakers" and not shop.query.restrictions


def test_the_options_of_ext_dsr_go_to_the_search():
    ext = parse_ext_options({"k": 30, "term_k": 40, "rerank_top": 20, "fusion": "linear", "user": {"id": "u1"},
                             "filters": {"brand": "acme"}}, LIMITS)
    s = read(SHOP_BODY, ext=ext).search
    assert (s.knn_k, s.term_k, s.rerank_top, s.user) == (30, 40, 20, {"id": "u1"})
    assert s.fusion is not None and s.fusion.mode is FusionMode.LINEAR
    assert s.filters == {"brand": "acme"}


def test_the_entrys_rerank_default_applies_unless_ext_dsr_says_otherwise():
    no_ranker = ServedEntry("products", rerank=False)
    assert read(SHOP_BODY, entry=no_ranker).search.rerank is False
    assert read(SHOP_BODY, entry=no_ranker, ext=ExtOptions(rerank=True)).search.rerank is True
    assert read(SHOP_BODY, ext=ExtOptions(rerank=False)).search.rerank is False
    assert read(SHOP_BODY, entry=None).search.rerank is True


def test_the_entrys_text_queries_say_where_the_text_is():
    only_match = ServedEntry("products", text_queries=("match",))
    with pytest.raises(NotHybrid, match="looked for match,"):
        read(SHOP_BODY, entry=only_match)
    body = {"query": {"bool": {"should": [TEXT, {"match": {"title": "red"}}]}}}
    assert read(body, entry=only_match).search.text == "red"
    assert read(body, entry=None).search.text == "red sneakers"  # no entry: the default forms


def test_a_text_within_the_limits_is_kept_as_found():
    assert read({"query": {"match": {"title": "a b c d e"}}}).search.text == "a b c d e"
    assert read({"query": {"match": {"title": "x" * 40}}}).search.text == "x" * 40


def test_the_ext_dsr_text_is_held_to_the_limits_and_named():
    with pytest.raises(RequestError, match=r"\[ext.dsr.text\] is 41 characters long"):
        read(SHOP_BODY, ext=ExtOptions(text="y" * 41))
