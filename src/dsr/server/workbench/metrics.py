"""A column's ranking scored against the judgments, with `dsr eval`'s own metric code.

NDCG@10, recall@100 and MRR@10 come from `dsr.eval.metrics.evaluate_run` (ranx, linear gains, the
grades turned into gains by `dsr.eval.judgments.to_gain`), so a figure in the page is the figure
`dsr eval` reports for the same ranking. A query none of whose judged items is relevant has no
NDCG, recall or MRR (`dsr eval` leaves it out too); the page shows it as unscored. The unjudged
share says how far to trust a figure: the part of the top ten that nobody has graded, which every
metric counts as not relevant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dsr.eval.judgments import to_gain
from dsr.eval.metrics import evaluate_run

CUTOFF = 10  # NDCG@10, MRR@10 and the unjudged share of the top ten
METRIC_KEYS = ("ndcg10", "recall100", "mrr10")


@dataclass(frozen=True)
class ColumnMetrics:
    """The metrics of one ranking of one query; the three ranx metrics are None when nothing judged is relevant."""

    ndcg10: float | None
    recall100: float | None
    mrr10: float | None
    unjudged10: float | None  # None when the ranking is empty
    judged: int  # judgments the query has
    relevant: int  # of them with a grade > 0
    judged_in_top: int  # of the top ten

    def to_json(self) -> dict[str, float | int | None]:
        return {"ndcg10": self.ndcg10, "recall100": self.recall100, "mrr10": self.mrr10,
                "unjudged10": self.unjudged10, "judged": self.judged, "relevant": self.relevant,
                "judged_in_top": self.judged_in_top}


def run_of(ids: Sequence[str]) -> dict[str, float]:
    """A ranking as a ranx run: scores fall with the rank, so the order is exactly `ids`' (no ties to reorder)."""
    out: dict[str, float] = {}
    for rank, doc_id in enumerate(ids):
        out.setdefault(doc_id, float(len(ids) - rank))
    return out


def column_metrics(ranking: Sequence[str], grades: Mapping[str, float]) -> ColumnMetrics:
    """The metrics of `ranking` (item ids, best first) against one query's `grades` (item id -> grade)."""
    gains = {item: to_gain(g) for item, g in grades.items()}
    top = list(ranking[:CUTOFF])
    judged_top = sum(1 for doc_id in top if doc_id in grades)
    unjudged = (len(top) - judged_top) / len(top) if top else None
    relevant = sum(1 for g in gains.values() if g > 0)
    values: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    if relevant:
        evaluation = evaluate_run({"q": gains}, {"q": run_of(ranking)})
        values = {key: float(evaluation.per_query[key][0]) for key in METRIC_KEYS}
    return ColumnMetrics(values["ndcg10"], values["recall100"], values["mrr10"], unjudged, len(grades), relevant,
                         judged_top)


def mean_metrics(rows: Sequence[ColumnMetrics]) -> dict[str, float | int | None]:
    """The mean of each metric over the queries that have it, and how many queries that is."""
    out: dict[str, float | int | None] = {}
    for key in (*METRIC_KEYS, "unjudged10"):
        values = [v for v in (getattr(r, key) for r in rows) if v is not None]
        out[key] = sum(values) / len(values) if values else None
    out["scored"] = sum(1 for r in rows if r.ndcg10 is not None)
    out["queries"] = len(rows)
    return out
