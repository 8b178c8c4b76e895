"""A public set's split as the files the training commands read: a catalog, graded judgments and,
where the set has click logs, sessions in the simple jsonl format.

So the models for a set are trained by the same commands a shop runs on its own data
(`dsr train retrieval --judgments/--logs`, `dsr train ranker --judgments`), on the train split only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from dsr.eval.dataset import EvalDataset
from dsr.eval.judgments import GAIN_SCALE
from dsr.eval.loaders import normalise_query
from dsr.logs.jsonl import write_sessions_jsonl
from dsr.logs.records import Session


def export_split(dataset: EvalDataset, split: str, out_dir: Path) -> dict[str, Path]:
    """Write `catalog.jsonl`, `judgments.{split}.tsv` (grade = the set's gain: 0 = not relevant) and, for click logs,
    `sessions.{split}.jsonl`; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"catalog": out_dir / "catalog.jsonl", "judgments": out_dir / f"judgments.{split}.tsv"}
    known = set()
    with open(paths["catalog"], "w", encoding="utf-8") as fh:
        for item in dataset.items():
            known.add(str(item["id"]))
            fh.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
    with open(paths["judgments"], "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["query", "item_id", "grade"])
        for query, grades in sorted(dataset.split(split).judgments.items()):
            for item_id, gain in sorted(grades.items()):
                writer.writerow([query, item_id, round(gain / GAIN_SCALE, 4)])
    records = (dataset.sessions or {}).get(split)
    if records:
        paths["sessions"] = out_dir / f"sessions.{split}.jsonl"
        # clicks on products missing from the catalog cannot be learned from; the dataset's notes
        # count them (the same ones its judgments leave out)
        write_sessions_jsonl(click_sessions(r for r in records if str(r.get("sku")) in known), paths["sessions"])
    return paths


def click_sessions(records: Iterable[Mapping[str, Any]]) -> list[Session]:
    """Click records (`user`, `sku`, `query`, `query_time`) as one session per query event: the
    clicks of one user on one query issued at one time."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for rec in records:
        query = normalise_query(str(rec.get("query") or ""))
        if not query or not rec.get("sku"):
            continue
        key = (str(rec.get("user") or ""), query, str(rec.get("query_time") or ""))
        grouped.setdefault(key, []).append(str(rec["sku"]))
    sessions = []
    for n, ((user, query, when), skus) in enumerate(grouped.items()):
        sessions.append(Session(f"s{n}", query, user_id=user or None, ts=timestamp_of(when),
                                clicks=tuple(dict.fromkeys(skus))))
    return sessions


def timestamp_of(text: str) -> float | None:
    """Seconds since the epoch of an ISO time as the click logs write it; None when empty or unreadable."""
    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None
