"""Training triples (q, s+, s-) for the two towers, built from sessions.

Positives are clicked, carted or ordered items, weighted by the strongest signal (an order says
more than a click). Negatives are configurable, as in the DSR paper's training:
- `random`: a catalog item never clicked for that query (easy, covers the whole catalog);
- `hard`: an item shown in the same session but not clicked, or (with a `term_retriever`) an item term
  retrieval returns for the query that was never clicked for it;
- `in_batch`: no stored negative; the trainer uses the other positives of the batch.
Each triple also carries the user and the user's clicks before that session, for the DPSR query tower.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from dsr.errors import InputError
from dsr.logs.records import Session

NEGATIVE_KINDS = ("random", "hard", "in_batch")


@dataclass(frozen=True)
class Triple:
    query: str
    positive: str
    negative: str | None  # None: in-batch negatives only
    weight: float = 1.0
    negative_kind: str = "in_batch"
    user_id: str | None = None
    recent_clicks: tuple[str, ...] = ()  # the user's clicks before this session, most recent first
    ts: float | None = None


@dataclass(frozen=True)
class TripleConfig:
    negatives: tuple[str, ...] = ("hard", "random")
    click_weight: float = 1.0
    cart_weight: float = 2.0
    order_weight: float = 3.0
    recent_clicks: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [k for k in self.negatives if k not in NEGATIVE_KINDS]
        if bad or not self.negatives:
            raise InputError(f"negative kinds must be some of {', '.join(NEGATIVE_KINDS)} (got {list(self.negatives)})")


def positive_weights(session: Session, config: TripleConfig) -> dict[str, float]:
    """Item -> weight of its strongest action in the session."""
    out: dict[str, float] = {}
    for items, w in ((session.clicks, config.click_weight), (session.add_to_carts, config.cart_weight),
                     (session.orders, config.order_weight)):
        for item in items:
            out[item] = max(out.get(item, 0.0), w)
    return out


def build_triples(
    sessions: Iterable[Session],
    item_ids: Sequence[str],
    config: TripleConfig | None = None,
    *,
    term_retriever: Callable[[str], list[str]] | None = None,
) -> list[Triple]:
    """Triples for every positive in every session, one per configured negative kind."""
    config = config or TripleConfig()
    rng = np.random.default_rng(config.seed)
    sessions = sorted(sessions, key=lambda s: (s.ts is None, s.ts or 0.0))
    if not item_ids:
        raise InputError("the catalog is empty: no items to train on")
    clicked_for: dict[str, set[str]] = defaultdict(set)
    for s in sessions:
        clicked_for[s.query].update(positive_weights(s, config))
    if not any(clicked_for.values()):
        raise InputError("the logs hold no clicks, carts or orders: there is nothing to learn from")
    term_cache: dict[str, list[str]] = {}
    history: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=max(config.recent_clicks, 1)))
    triples: list[Triple] = []
    for s in sessions:
        positives = positive_weights(s, config)
        recent = tuple(reversed(history[s.user_id])) if s.user_id and config.recent_clicks else ()
        never = clicked_for[s.query]
        shown_not_clicked = [i for i in s.impressions if i not in positives and i not in never]
        for item, weight in positives.items():
            for kind in config.negatives:
                neg: str | None = None
                used = kind
                if kind == "hard":
                    pool = shown_not_clicked
                    if not pool and term_retriever is not None:
                        if s.query not in term_cache:
                            term_cache[s.query] = [i for i in term_retriever(s.query) if i not in never]
                        pool = term_cache[s.query]
                    if pool:
                        neg = pool[int(rng.integers(0, len(pool)))]
                    else:
                        used = "random"
                if used == "random":
                    for _ in range(20):
                        cand = item_ids[int(rng.integers(0, len(item_ids)))]
                        if cand not in never:
                            neg = cand
                            break
                triples.append(Triple(s.query, item, neg, weight, used if neg is not None else "in_batch",
                                      s.user_id, recent, s.ts))
        if s.user_id:
            history[s.user_id].extend(s.clicks)
    return triples
