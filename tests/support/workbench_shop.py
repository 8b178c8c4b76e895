"""The shop the workbench tests search: the shoe catalog, two items whose strings are hostile HTML, graded
judgments of known queries, and an XGBoost ranker trained on those grades in a second.

The grade of an item for a `colour kind` query is known from its title (3: both words, 1: one of
them, 0: neither), so a test can say what a good ranking is and what NDCG a ranking must have.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dsr.reranker.base import Candidate
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.groups import groups_from_judgments
from dsr.reranker.xgb import train_xgboost
from dsr.text import tokenize

from .shoes import COLORS, catalog

HOSTILE_TITLE = '<img src=x onerror="window.__xss=1">trail runner <script>window.__xss=2</script>'
HOSTILE_BRAND = '<b onmouseover="window.__xss=3">acme</b>'
HOSTILE = [
    {"id": "x-html", "title": HOSTILE_TITLE, "brand": HOSTILE_BRAND, "category": "Shoes > Trail", "price": 42.0,
     "description": "trail runner", "image": "https://images.invalid/trail-runner.png"},
    {"id": "x-js", "title": "trail runner javascript", "brand": "orbit", "category": "Shoes > Trail", "price": 43.0,
     "description": "trail runner", "image": "javascript:window.__xss=4"},
]
QUERIES = [f"{color} {kind}" for color in COLORS for kind in ("sneakers", "boots", "sandals")]


def shop_catalog() -> list[dict[str, Any]]:
    return [*catalog(), *HOSTILE]


def grade(query: str, item: Mapping[str, Any]) -> int:
    """3 when the title holds the colour and the kind of `query`, 1 when it holds one of them, else 0."""
    color, kind = query.split(" ", 1)
    title = str(item.get("title") or "")
    has_color, has_kind = title.startswith(color + " "), f" {kind} " in f" {title} "
    return 3 if has_color and has_kind else 1 if has_color or has_kind else 0


def judgments(queries: Iterable[str], items: Sequence[Mapping[str, Any]], *, per_query: int | None = None
              ) -> dict[str, dict[str, int]]:
    """query -> item id -> grade, for every item (or the first `per_query` of those with a grade > 0, and as
    many with grade 0)."""
    out: dict[str, dict[str, int]] = {}
    for q in queries:
        graded = {str(it["id"]): grade(q, it) for it in items}
        if per_query is not None:
            good = [i for i, g in graded.items() if g > 0][:per_query]
            bad = [i for i, g in graded.items() if g == 0][:per_query]
            graded = {i: graded[i] for i in good + bad}
        out[q] = graded
    return out


def write_catalog(path: Path, items: Sequence[Mapping[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    return path


def write_judgments(path: Path, graded: Mapping[str, Mapping[str, float]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["query", "item_id", "grade"])
        for query, grades in graded.items():
            for item_id, g in grades.items():
                writer.writerow([query, item_id, g])
    return path


def train_ranker(directory: Path, items: Sequence[Mapping[str, Any]]) -> Path:
    """An XGBoost ranker trained on the known grades of every query, every item a candidate."""
    by_id = {str(it["id"]): it for it in items}

    def first_stage(query: str) -> list[Candidate]:
        words = set(tokenize(query))
        found = sorted(items, key=lambda it: -len(words & set(tokenize(str(it.get("title") or "")))))
        # every item, without first-stage scores: the trees learn the query-title overlap and the price, which
        # read the same whatever first stage serves the ranker later
        return [Candidate(item=it) for it in found]

    groups, _ = groups_from_judgments(judgments(QUERIES, items), by_id, first_stage=first_stage, top_k=len(items))
    ranker, _ = train_xgboost(groups, [], FeatureExtractor(FeatureConfig(buckets=1 << 12)), n_estimators=30,
                              threads=1)
    ranker.save(directory)
    return directory
