"""The generic judgments form any shop can write: `query, item_id, grade` as tsv, csv, json or jsonl.

Grades are relevance gains: 0 (or less) is judged-not-relevant, higher is better; fractional grades
(averaged raters) are kept exactly by `to_gain`. Every rejected line is reported with its line number
and reason; a file with no usable line is an error.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsr.errors import InputError, UsageError

GAIN_SCALE = 12
"""Gains are stored as round(grade * 12): exact for halves, thirds and quarters (averaged raters).

NDCG with linear gains is invariant to scaling, and an item is relevant (recall, MRR) iff its grade > 0.
"""


def to_gain(grade: float) -> int:
    return max(0, round(float(grade) * GAIN_SCALE))


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class JudgmentRow:
    query: str
    item_id: str
    grade: float
    split: str | None = None


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record or None, reason when None) for each row of the file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    yield n, None, f"bad JSON: {e.msg}"
                    continue
                yield (n, rec, "") if isinstance(rec, dict) else (n, None, "not a JSON object")
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: bad JSON: {e.msg} (line {e.lineno})") from e
        if isinstance(data, dict):
            data = data.get("judgments", data)
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a list of {{query, item_id, grade}} objects")
        for n, rec in enumerate(data, 1):
            yield (n, rec, "") if isinstance(rec, dict) else (n, None, "not a JSON object")
    elif suffix in (".tsv", ".csv", ".txt"):
        delimiter = "," if suffix == ".csv" else "\t"
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            missing = {"query", "item_id", "grade"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(
                    f"{path}: header lacks column(s) {', '.join(sorted(missing))} "
                    f"(need query, item_id, grade)"
                )
            for rec in reader:
                yield reader.line_num, rec, ""
    else:
        raise UsageError(f"{path}: unknown judgments format {suffix!r} (use .tsv, .csv, .json or .jsonl)")


def read_judgments(path: Path) -> tuple[list[JudgmentRow], list[Rejected]]:
    """The valid rows and, for every other row, why it was rejected."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"judgments file not found: {path}")
    rows: list[JudgmentRow] = []
    rejected: list[Rejected] = []
    for n, rec, reason in _records(path):
        if rec is None:
            rejected.append(Rejected(n, reason))
            continue
        query = str(rec.get("query") or "").strip()
        item_id = str(rec.get("item_id") if rec.get("item_id") is not None else "").strip()
        if not query:
            rejected.append(Rejected(n, "empty query"))
            continue
        if not item_id:
            rejected.append(Rejected(n, "empty item_id"))
            continue
        try:
            grade = float(rec.get("grade"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            rejected.append(Rejected(n, f"grade {rec.get('grade')!r} is not a number"))
            continue
        if grade != grade:
            rejected.append(Rejected(n, "grade is NaN"))
            continue
        split = rec.get("split")
        rows.append(JudgmentRow(query, item_id, grade, str(split) if split else None))
    if not rows:
        detail = f"; first problem: {rejected[0]}" if rejected else ""
        raise InputError(f"{path}: no usable judgment rows{detail}")
    return rows, rejected
