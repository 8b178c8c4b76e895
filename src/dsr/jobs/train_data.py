"""The data of one `dsr train` run: read once, summarised as facts, split into training and validation.

The validation part is held out before anything trains: whole queries (so no validation query is
trained on), or for logs that carry times the latest sessions (the queries serving will meet next).
The training part is written back as the files the training jobs read (graded judgments, jsonl
sessions, click judgments for a ranker of logs without impressions), so `dsr train` calls the same
jobs as `dsr train retrieval` and `dsr train ranker`; the validation part becomes graded judgments
(gain 0 = not relevant) for the pipeline table.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dsr.catalog import Item, read_catalog_items
from dsr.eval.dataset import Judgments
from dsr.eval.judgments import to_gain
from dsr.jobs.recipe import DataFacts, GradeMap, Recipe
from dsr.logs.jsonl import write_sessions_jsonl
from dsr.logs.judged import read_graded
from dsr.logs.load import load_logs
from dsr.logs.records import LoadReport, Session

ACTION_GRADES = (("clicks", 1.0), ("add_to_carts", 2.0), ("orders", 3.0))
"""The grade a logged action gives its item for a query: click < cart < order."""


@dataclass
class TrainingData:
    """A run's catalog, judgments and sessions as read, with what the readers rejected."""

    catalog: list[Item]
    catalog_rejected: int
    graded: dict[str, dict[str, float]]
    sessions: list[Session]
    logs: LoadReport | None = None
    judgments: LoadReport | None = None


def load_training_data(catalog: Path, *, logs: Sequence[Path] = (), judgments: Path | None = None,
                       log_format: str = "auto", applications: Collection[str] | None = None,
                       max_errors: int | None = 100, log: Callable[[str], None] | None = None) -> TrainingData:
    """Read the catalog, the logs and the judgments, keeping only rows about catalog items."""
    say = log or (lambda _m: None)
    items, rejected = read_catalog_items(catalog)
    say(f"catalog: {len(items)} items" + (f", {rejected} rows rejected" if rejected else ""))
    known = {str(it["id"]) for it in items}
    data = TrainingData(items, rejected, {}, [])
    if logs:
        data.sessions, data.logs = load_logs(list(logs), fmt=log_format, known_items=known,
                                             applications=applications, max_errors=max_errors)
        say(f"logs: {data.logs.summary()}")
    if judgments is not None:
        data.graded, data.judgments = read_graded(judgments, known_items=known, max_errors=max_errors)
        say(f"judgments: {data.judgments.summary()}")
    return data


def _acted(session: Session) -> bool:
    return bool(session.clicks or session.add_to_carts or session.orders)


def gather_facts(data: TrainingData, *, device: str, threads: int, time_budget_s: float | None) -> DataFacts:
    """The counts `choose_recipe` reads, from one pass over the data."""
    histogram: dict[float, int] = {}
    for grades in data.graded.values():
        for g in grades.values():
            histogram[round(g, 4)] = histogram.get(round(g, 4), 0) + 1
    sessions = data.sessions
    acted = [s for s in sessions if _acted(s)]
    return DataFacts(
        items=len(data.catalog),
        described_items=sum(1 for it in data.catalog if str(it.get("description") or "").strip()),
        judged_queries=len(data.graded), judged_pairs=sum(histogram.values()),
        grades=tuple(sorted(histogram.items())),
        sessions=len(sessions), clicked_sessions=len(acted),
        clicks=sum(len(set(s.clicks) | set(s.add_to_carts) | set(s.orders)) for s in acted),
        shown_sessions=sum(1 for s in acted if len(s.impressions) >= 2),
        timed_sessions=sum(1 for s in sessions if s.ts is not None),
        log_queries=len({s.query for s in sessions}),
        device=device, threads=threads, time_budget_s=time_budget_s,
    )


VALIDATION_SALT = b"dsr train validation\x1f"
"""Salts the hold-out hash: the towers' own epoch-choice share hashes the bare text, and must pick its
queries from the training part, not from the same corner of the hash space."""


def hold_out_queries(queries: Collection[str], share: float) -> set[str]:
    """`share` of the queries (at least one, never all of several), picked by a stable hash of their text."""
    def key(q: str) -> str:
        return hashlib.sha1(VALIDATION_SALT + q.strip().lower().encode("utf-8")).hexdigest()

    ordered = sorted(set(queries), key=key)
    n = max(1, round(len(ordered) * share))
    if len(ordered) > 1:
        n = min(n, len(ordered) - 1)
    return set(ordered[:n])


def latest_sessions(sessions: Sequence[Session], share: float) -> tuple[list[Session], list[Session]]:
    """(earlier, latest): the latest `share` of the timed sessions held out; untimed ones stay in training."""
    timed = sorted((s for s in sessions if s.ts is not None), key=lambda s: (s.ts, s.session_id))
    n = min(max(1, round(len(timed) * share)), max(0, len(timed) - 1)) if timed else 0
    latest = timed[len(timed) - n:] if n else []
    held = {id(s) for s in latest}
    return [s for s in sessions if id(s) not in held], latest


def session_grades(sessions: Sequence[Session]) -> dict[str, dict[str, float]]:
    """query -> item -> the grade of its strongest logged action (`ACTION_GRADES`)."""
    out: dict[str, dict[str, float]] = {}
    for s in sessions:
        for attr, grade in ACTION_GRADES:
            for item in getattr(s, attr):
                row = out.setdefault(s.query, {})
                row[item] = max(row.get(item, 0.0), grade)
    return out


@dataclass(frozen=True)
class SplitFiles:
    """The training part as files the training jobs read, and the validation part."""

    validation: Path  # query, item_id, grade = gain in grade units (0 = judged not relevant)
    validation_queries: int
    train_queries: int
    train_judgments: Path | None = None  # graded, on the recipe's scale
    train_sessions: Path | None = None
    train_clicks: Path | None = None  # click judgments, for a ranker of logs without impressions

    def inputs(self) -> list[Path]:
        return [p for p in (self.train_judgments, self.train_sessions, self.train_clicks) if p is not None]


def _write_grades(path: Path, graded: Mapping[str, Mapping[str, float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["query", "item_id", "grade"])
        for query in sorted(graded):
            for item, grade in sorted(graded[query].items()):
                writer.writerow([query, item, round(grade, 6)])
    return path


def _mapped(graded: Mapping[str, Mapping[str, float]], grade_map: GradeMap) -> dict[str, dict[str, float]]:
    return {q: {i: grade_map(g) for i, g in grades.items()} for q, grades in graded.items()}


def split_data(data: TrainingData, recipe: Recipe, folder: Path) -> SplitFiles:
    """Hold the validation part out and write both parts under `folder`."""
    graded = _mapped(data.graded, recipe.grade_map)
    sessions = data.sessions
    if recipe.validation == "time":
        train_sessions, latest = latest_sessions(sessions, recipe.validation_share)
        validation = session_grades(latest)
        train_graded = graded
    else:
        queries = set(graded) or {s.query for s in sessions if _acted(s)}
        held = hold_out_queries(queries, recipe.validation_share)
        validation = {q: g for q, g in graded.items() if q in held} if graded else \
            session_grades([s for s in sessions if s.query in held])
        train_sessions = [s for s in sessions if s.query not in held]
        train_graded = {q: g for q, g in graded.items() if q not in held}
    # validation gains: a mapped grade of 1 (the lowest of a 1-based scale) is judged not relevant
    low = 1.0 if graded and recipe.validation == "query" else 0.0
    gains = {q: {i: max(0.0, g - low) for i, g in row.items()} for q, row in validation.items()}
    sessions_file = clicks_file = None
    if train_sessions:
        folder.mkdir(parents=True, exist_ok=True)
        sessions_file = folder / "train.sessions.jsonl"
        write_sessions_jsonl(train_sessions, sessions_file)
    if recipe.ranker_data == "clicks":
        clicks_file = _write_grades(folder / "train.clicks.tsv", session_grades(train_sessions))
    return SplitFiles(
        validation=_write_grades(folder / "validation.tsv", gains), validation_queries=len(validation),
        train_queries=len(train_graded) or len({s.query for s in train_sessions if _acted(s)}),
        train_judgments=_write_grades(folder / "train.judgments.tsv", train_graded) if train_graded else None,
        train_sessions=sessions_file, train_clicks=clicks_file)


def read_validation(path: Path) -> Judgments:
    """The validation file as integer gains (`dsr.eval`'s form); queries without a relevant item are kept."""
    graded, _ = read_graded(path, max_errors=None)
    return {q: {i: to_gain(g) for i, g in row.items()} for q, row in graded.items()}

