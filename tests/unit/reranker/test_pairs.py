"""Pair building: preference order, position-bias weights, and what yields no pairs."""

from __future__ import annotations

from dsr.logs.records import Session
from dsr.reranker.pairs import (
    ALL_PREFERRED,
    NO_IMPRESSIONS,
    NO_PREFERENCE,
    SINGLE_ITEM,
    PositionBias,
    build_pairs,
    session_levels,
)

NO_BIAS = PositionBias(eta=0.0)


def named(sp):
    return sorted((sp.items[a], sp.items[b], w) for a, b, w in sp.pairs)


def test_ordered_beats_cart_beats_click_beats_skip():
    s = Session("s1", "drill", impressions=("a", "b", "c", "d"), clicks=("b", "c", "d"),
                add_to_carts=("c", "d"), orders=("d",))
    (sp,), report = build_pairs([s], bias=NO_BIAS)
    assert sp.levels == (0, 1, 2, 3)
    assert named(sp) == sorted([
        ("b", "a", 1.0),
        ("c", "a", 1.0), ("c", "b", 1.0),
        ("d", "a", 1.0), ("d", "b", 1.0), ("d", "c", 1.0),
    ])
    assert report.pairs == 6 and report.sessions_with_pairs == 1


def test_a_click_pairs_with_every_skipped_impression_and_not_with_other_clicks():
    s = Session("s1", "drill", impressions=("a", "b", "c", "d"), clicks=("a", "c"))
    (sp,), _ = build_pairs([s], bias=NO_BIAS)
    assert named(sp) == sorted([("a", "b", 1.0), ("a", "d", 1.0), ("c", "b", 1.0), ("c", "d", 1.0)])


def test_inverse_propensity_weight_grows_with_the_preferred_items_position_and_is_clipped():
    s = Session("s1", "q", impressions=tuple("abcdefghijklmn"), clicks=("a", "c", "m"))
    (sp,), _ = build_pairs([s], bias=PositionBias(eta=1.0, max_weight=10.0))
    weights = {sp.items[a]: w for a, _, w in sp.pairs}
    assert weights == {"a": 1.0, "c": 3.0, "m": 10.0}  # position 13 clipped to 10


def test_an_event_item_missing_from_the_impressions_is_shown_after_the_last_one():
    s = Session("s1", "q", impressions=("a", "b"), orders=("z",))
    (sp,), _ = build_pairs([s], bias=PositionBias(eta=1.0))
    assert sp.items == ("a", "b", "z")
    assert named(sp) == [("z", "a", 3.0), ("z", "b", 3.0)]


def test_duplicate_impressions_count_once_at_their_first_position():
    items, levels = session_levels(Session("s", "q", impressions=("a", "b", "a"), clicks=("a",)))
    assert items == ["a", "b"] and levels == [1, 0]


def test_sessions_without_pairs_are_counted_by_reason():
    sessions = [
        Session("empty", "q"),
        Session("one", "q", impressions=("a",), clicks=("a",)),
        Session("skipped", "q", impressions=("a", "b")),
        Session("all", "q", impressions=("a", "b"), clicks=("a", "b")),
        Session("ok", "q", impressions=("a", "b"), clicks=("b",)),
    ]
    out, report = build_pairs(sessions)
    assert [sp.session.session_id for sp in out] == ["ok"]
    assert report.sessions == 5 and report.sessions_with_pairs == 1
    assert dict(report.no_pairs) == {NO_IMPRESSIONS: 1, SINGLE_ITEM: 1, NO_PREFERENCE: 1, ALL_PREFERRED: 1}
    assert "4 without pairs" not in report.summary()  # per reason, not lumped
    assert f"1 without pairs ({NO_PREFERENCE})" in report.summary()


def test_unknown_item_ids_are_dropped_and_reported():
    s = Session("s1", "q", impressions=("a", "ghost", "b"), clicks=("ghost", "b"))
    (sp,), report = build_pairs([s], known_ids={"a", "b"}, bias=NO_BIAS)
    assert sp.items == ("a", "b")
    assert named(sp) == [("b", "a", 1.0)]
    assert dict(report.unknown_ids) == {"ghost": 1}
    assert "unknown item ids" in report.summary() and "ghost" in report.summary()


def test_a_session_left_with_one_known_item_yields_no_pairs():
    s = Session("s1", "q", impressions=("a", "ghost"), clicks=("ghost",))
    out, report = build_pairs([s], known_ids={"a"})
    assert out == [] and report.no_pairs[SINGLE_ITEM] == 1
