"""A small synthetic world with planted personal preferences, shared by the ranker tests."""

from __future__ import annotations

import pytest

from dsr.logs.synthetic import make_world, simulate_sessions
from dsr.reranker.groups import click_histories, groups_from_sessions
from dsr.reranker.pairs import build_pairs


@pytest.fixture(scope="session")
def synthetic_groups():
    """(catalog, train groups, test groups): sessions split by time, test after train."""
    world = make_world(n_items=300, n_queries=40, n_users=30, seed=0)
    sessions = simulate_sessions(world, 2500, seed=1)
    catalog = world.items_by_id
    pairs, _ = build_pairs(sessions, known_ids=catalog)
    groups = groups_from_sessions(pairs, catalog, histories=click_histories(sessions))
    cut = int(len(groups) * 0.8)
    return catalog, groups[:cut], groups[cut:]
