"""The synthetic world: deterministic, graded, and hard for term matching where it should be."""

from __future__ import annotations

import pytest

from dsr.catalog import category_levels
from dsr.logs.synthetic import (
    QUERY_KINDS_NO_OVERLAP,
    examine_probability,
    item_tokens,
    make_world,
    recent_clicks,
    simulate_sessions,
)
from dsr.text import tokenize


@pytest.fixture(scope="module")
def world():
    return make_world(n_items=1500, n_queries=200, n_users=60, seed=3)


def test_same_seed_same_world_and_sessions():
    a, b = make_world(300, 50, 20, seed=11), make_world(300, 50, 20, seed=11)
    assert a.catalog == b.catalog
    assert [q.text for q in a.queries] == [q.text for q in b.queries]
    assert simulate_sessions(a, 50, seed=2) == simulate_sessions(b, 50, seed=2)
    assert make_world(300, 50, 20, seed=12).catalog != a.catalog


def test_catalog_rows_have_the_design_format(world):
    ids = [row["id"] for row in world.catalog]
    assert len(ids) == len(set(ids)) == 1500
    for row in world.catalog[:50]:
        assert isinstance(row["id"], str) and row["title"] and row["description"] and row["brand"]
        assert len(category_levels(row)) == 3
        assert isinstance(row["price"], float) and row["price"] > 0
        assert isinstance(row["attributes"], dict)
        assert isinstance(row["popularity"], float) and isinstance(row["ctr"], float)


def test_about_thirty_percent_of_queries_share_no_token_with_any_relevant_item(world):
    no = [q for q in world.queries if q.no_overlap]
    assert 0.25 <= len(no) / len(world.queries) <= 0.35
    assert {q.kind for q in no} == set(QUERY_KINDS_NO_OVERLAP)
    tokens = {row["id"]: item_tokens(row) for row in world.catalog}
    for q in world.queries:
        assert q.relevant, q.text
        shared = any(set(tokenize(q.text)) & tokens[i] for i in q.relevant)
        assert shared is not q.no_overlap, q.text


def test_grades_are_graded_and_consistent(world):
    seen = set()
    for q in world.queries:
        for item_id, g in q.relevant.items():
            assert g in (1, 2, 3)
            assert world.grade(q.text, item_id) == g
            seen.add(g)
    assert seen == {1, 2, 3}
    q = world.queries[0]
    irrelevant = next(row["id"] for row in world.catalog if row["id"] not in q.relevant)
    assert world.grade(q.text, irrelevant) == 0


def test_synonym_query_finds_the_same_items_as_the_catalog_words():
    w = make_world(500, 0, 10, seed=0)
    assert w.query("sneakers").relevant == w.query("running shoe").relevant
    assert w.query("kleenex").relevant == w.query("facial tissue").relevant
    assert w.query("sneakers").no_overlap and not w.query("running shoe").no_overlap


def test_personal_grade_plants_brand_and_price_preferences(world):
    q = next(q for q in world.queries if q.kind == "exact")
    budget = next(u for u in world.users if u.segment == "budget")
    premium = next(u for u in world.users if u.segment == "premium")
    assert set(budget.preferred_brands).isdisjoint(premium.preferred_brands)
    items = world.items_by_id
    liked = next(i for i in q.relevant if items[i]["brand"] in budget.preferred_brands)
    assert world.personal_grade(q.text, liked, budget.user_id) > world.personal_grade(
        q.text, liked, premium.user_id
    )
    irrelevant = next(row["id"] for row in world.catalog if row["id"] not in q.relevant)
    assert world.personal_grade(q.text, irrelevant, budget.user_id) == 0.0


def test_sessions_are_time_ordered_and_clicks_follow_relevance_and_position(world):
    sessions = simulate_sessions(world, 3000, seed=1)
    ts = [s.ts for s in sessions]
    assert ts == sorted(ts)
    clicks_rel = clicks_irr = shown_rel = shown_irr = 0
    top = bottom = 0
    for s in sessions:
        assert len(s.impressions) == 10
        assert set(s.orders) <= set(s.add_to_carts) <= set(s.clicks) <= set(s.impressions)
        for pos, item in enumerate(s.impressions):
            rel = world.grade(s.query, item) > 0
            clicked = item in s.clicks
            shown_rel += rel
            shown_irr += not rel
            clicks_rel += rel and clicked
            clicks_irr += (not rel) and clicked
            top += pos == 0 and clicked
            bottom += pos == 9 and clicked
    assert shown_rel and shown_irr
    assert clicks_rel / shown_rel > 3 * clicks_irr / shown_irr
    assert top > bottom
    assert examine_probability(0) > examine_probability(9)
    assert any(s.orders for s in sessions)


def test_first_stage_controls_what_is_shown(world):
    page = [row["id"] for row in world.catalog[:5]]
    sessions = simulate_sessions(world, 20, seed=0, first_stage=lambda q: page)
    assert all(s.impressions == tuple(page) for s in sessions)


def test_recent_clicks_are_recoverable_per_user(world):
    sessions = simulate_sessions(world, 2000, seed=4)
    last = sessions[-1]
    recent = recent_clicks(sessions, last.user_id, before_ts=last.ts, limit=5)
    earlier = [c for s in sessions[:-1] if s.user_id == last.user_id for c in s.clicks]
    assert recent == list(reversed(earlier))[:5]


def test_large_worlds_are_built():
    w = make_world(n_items=20_000, n_queries=50, n_users=10, seed=1)
    assert len(w.catalog) == 20_000 and len(w.queries) == 50
