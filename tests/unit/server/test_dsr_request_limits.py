"""What an `ext.dsr` search may ask is bounded, and what no stage can carry is refused with the key named."""

from __future__ import annotations

from typing import Any

import pytest

from dsr.server.dsr_request import Limits, parse_dsr_request
from dsr.server.errors import RequestError

LIMITS = Limits(max_text_chars=100, max_text_terms=5, max_depth=10)


def reason(body: dict[str, Any], limits: Limits = LIMITS) -> str:
    with pytest.raises(RequestError) as e:
        parse_dsr_request(body, {}, limits)
    assert e.value.status == 400
    return e.value.reason


def dsr(**ext: Any) -> dict[str, Any]:
    return {"ext": {"dsr": {"text": "red sneakers", **ext}}}


def test_the_text_is_bounded_in_characters_and_terms():
    assert "101 characters long; the configured maximum is 100" in reason(dsr(text="x" * 101))
    assert "more than 5 terms" in reason(dsr(text="a b c d e f"))
    assert parse_dsr_request(dsr(text="a b c d e"), {}, LIMITS).search.text == "a b c d e"
    assert parse_dsr_request(dsr(text="x" * 100), {}, LIMITS).search.text == "x" * 100


def test_the_default_limits_fit_the_engines_clause_count():
    limits = Limits()
    assert limits.max_text_chars == 4096 and limits.max_text_terms == 64
    assert limits.max_text_terms * 16 <= 1024  # indices.query.bool.max_clause_count's default


def test_nesting_beyond_the_limit_is_refused_where_it_happens():
    user: Any = 1
    for _ in range(12):
        user = {"a": user}
    text = reason(dsr(user=user))
    assert "deeper than 10 levels" in text and "[ext.dsr.user.a.a" in text
    shallow: Any = 1
    for _ in range(6):
        shallow = [shallow]
    assert parse_dsr_request(dsr(user={"a": shallow}), {}, LIMITS).search.user == {"a": shallow}


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_are_refused_anywhere_with_their_path(value):
    assert "[ext.dsr.filters.price.gte] is a number out of range" in reason(dsr(filters={"price": {"gte": value}}))
    assert "[query.range.price.lt]" in reason({**dsr(), "query": {"range": {"price": {"lt": value}}}})
    assert "[ext.dsr.user.scores[1]]" in reason(dsr(user={"scores": [1.0, value]}))


def test_unpaired_surrogates_are_refused_but_unicode_and_nul_are_fine():
    assert "[ext.dsr.text] holds an unpaired UTF-16 surrogate" in reason(dsr(text="red \ud800"))
    assert "unpaired UTF-16 surrogate" in reason(dsr(user={"\udfff": 1}))
    ok = parse_dsr_request(dsr(text="rote Schuhe 😀 \u0000 中文"), {}, LIMITS)
    assert ok.search.text.startswith("rote")


def test_filters_are_checked_by_the_filter_language_up_front():
    assert "'price'" in reason(dsr(filters={"price": {"gte": "ten"}}))
    req = parse_dsr_request(dsr(filters={"price": {"gte": "10", "lt": 20}}), {}, LIMITS)
    assert req.search.filters == {"price": {"gte": "10", "lt": 20}}
