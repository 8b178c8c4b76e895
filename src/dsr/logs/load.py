"""One entry point for search logs: the format is told from the file's first record."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path

from dsr.errors import InputError, UsageError
from dsr.logs.jsonl import load_sessions_jsonl
from dsr.logs.records import LoadReport, Session
from dsr.logs.ubi import load_ubi, looks_like_ubi

FORMATS = ("auto", "ubi", "jsonl")


def detect_format(path: Path) -> str:
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    return "ubi" if looks_like_ubi(json.loads(raw)) else "jsonl"
                except json.JSONDecodeError:
                    return "jsonl"  # the jsonl loader reports the bad line
    return "jsonl"


def load_logs(
    paths: Path | str | Sequence[Path | str],
    *,
    fmt: str = "auto",
    applications: Collection[str] | None = None,
    known_items: Collection[str] | None = None,
    max_errors: int | None = 100,
) -> tuple[list[Session], LoadReport]:
    """Sessions from one or more log files (UBI ndjson / bulk ndjson, or the simple jsonl)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown log format {fmt!r}; choose one of {', '.join(FORMATS)}")
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    for f in files:
        if not f.is_file():
            raise UsageError(f"log file not found: {f}")
    formats = {f: detect_format(f) if fmt == "auto" else fmt for f in files}
    ubi = [f for f in files if formats[f] == "ubi"]
    total = LoadReport()
    sessions: list[Session] = []
    if ubi:
        s, r = load_ubi(ubi, applications=applications, known_items=known_items, max_errors=max_errors)
        sessions += s
        _merge(total, r)
    for f in files:
        if formats[f] == "jsonl":
            budget = None if max_errors is None else max_errors - len(total.problems)
            if budget is not None and budget < 0:
                raise InputError(f"more than {max_errors} malformed log lines")
            s, r = load_sessions_jsonl(f, known_items=known_items, max_errors=budget)
            sessions += s
            _merge(total, r)
    sessions.sort(key=lambda s: (s.ts is None, s.ts or 0.0))
    total.sessions = len(sessions)
    return sessions, total


def _merge(into: LoadReport, other: LoadReport) -> None:
    into.lines_read += other.lines_read
    for k, v in other.skipped.items():
        into.skipped[k] = into.skipped.get(k, 0) + v
    into.problems.extend(other.problems)
