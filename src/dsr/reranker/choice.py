"""Which of the trained rankers serves: the one that orders the held-out groups best, if any beats the first stage.

`dsr train ranker` trains the Siamese ranker and, beside it, XGBoost on the same numeric features.
Both are scored on the same validation groups (whole queries or sessions no model trained on) with
the first stage's own orders, fused and by DSR similarity, as the bar to clear. The ranker with the
best validation NDCG@10 serves (session AUC breaks a tie; a tie on both keeps the Siamese ranker);
`served.json` in the output directory names it, and `load_reranker` on that directory loads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsr.eval.session_metrics import mean_over_groups
from dsr.reranker.base import Reranker
from dsr.reranker.groups import RankGroup, fused_order_scores

SERVED_FILE = "served.json"
NDCG_K = 10


@dataclass(frozen=True)
class RankerChoice:
    """Validation figures per order (`session_auc`, `ndcg@10`, `groups`) and the ranker chosen to serve."""

    served: str
    reason: str
    figures: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_stage_orders(groups: Sequence[RankGroup]) -> dict[str, list[np.ndarray]]:
    """The orders the ranker must beat: the fused one, and the DSR similarity where the candidates carry it."""
    out = {"first_stage": fused_order_scores(groups)}
    if any(c.dsr is not None for g in groups for c in g.candidates):
        out["dsr"] = [np.array([-np.inf if c.dsr is None else c.dsr for c in g.candidates]) for g in groups]
    return out


def validation_figures(orders: Mapping[str, Sequence[np.ndarray]], groups: Sequence[RankGroup]
                       ) -> dict[str, dict[str, float]]:
    labels = [g.labels for g in groups]
    out = {}
    for name, scores in orders.items():
        m = mean_over_groups(scores, labels, k=(NDCG_K,))
        out[name] = {"session_auc": round(m["session_auc"], 4), f"ndcg@{NDCG_K}": round(m[f"ndcg@{NDCG_K}"], 4),
                     "groups": int(m["groups"])}
    return out


def choose_ranker(rankers: Mapping[str, Reranker], groups: Sequence[RankGroup]) -> RankerChoice:
    """Score every ranker and the first-stage orders on `groups`; the best ranker by NDCG@10 serves.

    `rankers` in order of preference (the first wins a tie). Without validation groups there is
    nothing to choose on: the first ranker serves and the reason says so.
    """
    names = list(rankers)
    if not groups:
        return RankerChoice(names[0], "no validation groups to choose on: the first trained ranker serves", {})
    orders: dict[str, Sequence[np.ndarray]] = dict(first_stage_orders(groups))
    for name, ranker in rankers.items():
        orders[name] = [np.asarray(ranker.score(g.query, g.candidates, g.user)) for g in groups]
    figures = validation_figures(orders, groups)

    def key(name: str) -> tuple[float, float, int]:
        f = figures[name]
        ndcg, auc = f[f"ndcg@{NDCG_K}"], f["session_auc"]
        return (ndcg if math.isfinite(ndcg) else -1.0, auc if math.isfinite(auc) else -1.0, -names.index(name))

    served = max(names, key=key)
    best_first = max((n for n in orders if n not in rankers), key=lambda n: figures[n][f"ndcg@{NDCG_K}"])
    gain = figures[served][f"ndcg@{NDCG_K}"] - figures[best_first][f"ndcg@{NDCG_K}"]
    others = ", ".join(f"{n} {figures[n][f'ndcg@{NDCG_K}']:.4f}" for n in orders if n != served)
    verdict = "beats" if gain > 0 else "does not beat"
    reason = (f"{served}: the best validation NDCG@{NDCG_K} ({figures[served][f'ndcg@{NDCG_K}']:.4f} over "
              f"{figures[served]['groups']} groups; {others}); it {verdict} the best first-stage order "
              f"({best_first}) by {gain:+.4f}")
    return RankerChoice(served, reason, figures)


def write_choice(directory: Path, choice: RankerChoice) -> Path:
    path = Path(directory) / SERVED_FILE
    path.write_text(json.dumps(choice.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_served(directory: Path) -> str | None:
    """The ranker `served.json` names in a `dsr train ranker` output, None without one (or unreadable)."""
    try:
        served = json.loads((Path(directory) / SERVED_FILE).read_text()).get("served")
    except (OSError, ValueError, AttributeError):
        return None
    return served if isinstance(served, str) and served else None
