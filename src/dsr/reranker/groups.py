"""Ranking groups: one query's candidates with their labels and pairs, whatever the source.

Sessions (via `pairs.build_pairs`) and graded judgments both become `RankGroup`s, so the feature
extraction, both rankers and the metrics see one shape. A group also carries the user the query came
from (id, price level, recent click stream) for the personal features.
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsr.catalog import Item
from dsr.logs.records import Session
from dsr.reranker.base import Candidate
from dsr.reranker.pairs import SessionPairs


@dataclass(frozen=True)
class RankGroup:
    """Candidates of one query; `pairs` are (preferred index, other index, weight)."""

    group_id: str
    query: str
    candidates: tuple[Candidate, ...]
    labels: tuple[float, ...]
    pairs: tuple[tuple[int, int, float], ...]
    user: Mapping[str, Any] | None = None


def fused_order_scores(groups: Sequence[RankGroup]) -> list[np.ndarray]:
    """Each group's first-stage (fused) order as scores, higher = earlier: the order a ranker must beat."""
    return [-np.array([c.fused_rank for c in g.candidates], dtype=np.float64) for g in groups]


def click_histories(sessions: Sequence[Session], *, depth: int = 5) -> dict[str, tuple[str, ...]]:
    """For each session, the user's last `depth` clicked/carted/ordered items *before* it.

    Sessions are taken in time order (`ts`, then input order for ties or missing times), so the
    stream never contains what the user does in or after the session itself.
    """
    order = sorted(range(len(sessions)), key=lambda k: (sessions[k].ts if sessions[k].ts is not None else 0.0, k))
    recent: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=depth))
    out: dict[str, tuple[str, ...]] = {}
    for k in order:
        s = sessions[k]
        if s.user_id is None:
            out[s.session_id] = ()
            continue
        stream = recent[s.user_id]
        out[s.session_id] = tuple(reversed(stream))  # most recent first
        for item_id in (*s.clicks, *s.add_to_carts, *s.orders):
            if item_id in stream:
                stream.remove(item_id)
            stream.append(item_id)
    return out


def groups_from_sessions(
    session_pairs: Iterable[SessionPairs],
    catalog: Mapping[str, Item],
    *,
    histories: Mapping[str, tuple[str, ...]] | None = None,
    user_profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RankGroup]:
    """One group per session: its shown items in position order (fused rank = position - 1).

    `user_profiles` adds known user attributes (e.g. `price_level`) to the user mapping.
    """
    groups = []
    for sp in session_pairs:
        s = sp.session
        cands = tuple(Candidate(item=catalog[i], fused_rank=pos) for pos, i in enumerate(sp.items))
        user: dict[str, Any] | None = None
        if s.user_id is not None:
            user = {"user_id": s.user_id, "recent_clicks": (histories or {}).get(s.session_id, ())}
            user.update((user_profiles or {}).get(s.user_id, {}))
        groups.append(RankGroup(s.session_id, s.query, cands, tuple(float(v) for v in sp.levels), sp.pairs, user))
    return groups


def graded_pairs(labels: Sequence[float], *, max_pairs: int | None = None,
                 rng: random.Random | None = None) -> tuple[tuple[int, int, float], ...]:
    """All (a, b, 1.0) with label a > label b, optionally a uniform sample of `max_pairs`."""
    pairs = [(a, b, 1.0) for a, la in enumerate(labels) for b, lb in enumerate(labels) if la > lb]
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = (rng or random.Random(0)).sample(pairs, max_pairs)
    return tuple(pairs)


def groups_from_judgments(
    judgments: Mapping[str, Mapping[str, float]],
    catalog: Mapping[str, Item],
    *,
    first_stage: Callable[[str], Sequence[Candidate]] | None = None,
    top_k: int = 100,
    add_missed_judged: bool = True,
    unjudged_label: float = 0.0,
    max_pairs: int | None = None,
    seed: int = 0,
) -> tuple[list[RankGroup], dict[str, int]]:
    """Groups from graded judgments (query -> item id -> gain): the first stage's top k plus judged items.

    `first_stage(query)` may return more than `top_k` results (a deeper list): the first `top_k`
    are the candidates; judged items found deeper keep their real first-stage score and rank, and
    judged items it never returned get a BM25 score of 0 and the rank after its last result — so a
    judged item is never recognisable by a missing feature. With `add_missed_judged=False` (for
    training: what a production re-ranker sees) only the top k are kept. Unjudged candidates get
    `unjudged_label`. Returns the groups and counts of what was skipped.
    """
    rng = random.Random(seed)
    skipped: dict[str, int] = defaultdict(int)
    groups = []
    for query, grades in judgments.items():
        deep = list(first_stage(query)) if first_stage else []
        cands = deep[:top_k]
        if add_missed_judged:
            seen = {str(c.item.get("id")) for c in cands}
            deeper = {str(c.item.get("id")): c for c in deep[top_k:]}
            for item_id in grades:
                if item_id in seen:
                    continue
                if item_id in deeper:
                    cands.append(deeper[item_id])
                elif item_id in catalog:
                    bm25 = 0.0 if first_stage else None
                    cands.append(Candidate(item=catalog[item_id], bm25=bm25, fused_rank=len(deep)))
                else:
                    skipped["judged item not in catalog"] += 1
                    continue
                seen.add(item_id)
        labels = [float(grades.get(str(c.item.get("id")), unjudged_label)) for c in cands]
        pairs = graded_pairs(labels, max_pairs=max_pairs, rng=rng)
        if not pairs:
            skipped["query without a preference pair"] += 1
            continue
        groups.append(RankGroup(query, query, tuple(cands), tuple(labels), pairs, None))
    return groups, dict(skipped)


def groups_from_events(
    sessions: Sequence[Session],
    first_stage: Callable[[str], Sequence[Candidate]],
    *,
    histories: Mapping[str, tuple[str, ...]] | None = None,
    top_k: int = 100,
    max_pairs: int | None = None,
    seed: int = 0,
) -> tuple[list[RankGroup], dict[str, int]]:
    """One group per session of a log without impressions: the first stage's top `top_k` for its query.

    A candidate the session clicked (carted, ordered) is labelled by its strongest event (1, 2, 3),
    every other candidate 0. With `histories` (`click_histories`), a session with a user carries the
    user and their earlier clicks. Sessions whose chosen items the first stage did not return, or
    that chose nothing, are counted by reason.
    """
    from dsr.reranker.pairs import ADDED_TO_CART, CLICKED, ORDERED

    rng = random.Random(seed)
    skipped: dict[str, int] = defaultdict(int)
    groups = []
    for s in sessions:
        level: dict[str, int] = {}
        for events, value in ((s.clicks, CLICKED), (s.add_to_carts, ADDED_TO_CART), (s.orders, ORDERED)):
            for item_id in events:
                level[item_id] = max(level.get(item_id, 0), value)
        if not level:
            skipped["session without a click"] += 1
            continue
        cands = tuple(first_stage(s.query))[:top_k]
        labels = [float(level.get(str(c.item.get("id")), 0)) for c in cands]
        pairs = graded_pairs(labels, max_pairs=max_pairs, rng=rng)
        if not pairs:
            skipped["chosen item not among the first stage's candidates"] += 1
            continue
        user: dict[str, Any] | None = None
        if histories is not None and s.user_id is not None:
            user = {"user_id": s.user_id, "recent_clicks": histories.get(s.session_id, ())}
        groups.append(RankGroup(s.session_id, s.query, cands, tuple(labels), pairs, user))
    return groups, dict(skipped)
