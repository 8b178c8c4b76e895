"""The simple jsonl session format of DESIGN.md, one session per line:
`{session_id, user_id, query, ts, impressions: [ids], clicks: [ids], orders: [ids]}`
(`add_to_carts` is accepted too). Item ids may be strings or integers; they are kept as strings."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from dsr.logs.problems import reject
from dsr.logs.records import LoadReport, Session
from dsr.logs.timestamps import parse_ts

ID_LISTS = ("impressions", "clicks", "add_to_carts", "orders")


def _id_list(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list of item ids")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, str | int) or str(v).strip() == "":
            raise ValueError(f"{name} holds a bad item id {v!r}")
        out.append(str(v))
    return tuple(out)


def parse_session(obj: Any, line: int, known_items: Collection[str] | None = None) -> Session:
    """One jsonl record as a Session; ValueError with the reason when it cannot be used."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    query = obj.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("missing query")
    lists = {name: _id_list(obj.get(name), name) for name in ID_LISTS}
    if known_items is not None:
        unknown = sorted({i for ids in lists.values() for i in ids if i not in known_items})
        if unknown:
            more = f" (+{len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ValueError(f"unknown item id {unknown[0]!r}{more}")
    user = obj.get("user_id")
    return Session(
        session_id=str(obj.get("session_id") or f"line-{line}"),
        query=query.strip(),
        user_id=None if user in (None, "") else str(user),
        ts=parse_ts(obj.get("ts")),
        **lists,
    )


def load_sessions_jsonl(
    path: Path | str, *, known_items: Collection[str] | None = None, max_errors: int | None = 100
) -> tuple[list[Session], LoadReport]:
    """Read sessions; bad lines (bad JSON, missing query, unknown item id) are reported by line number."""
    path = Path(path)
    report = LoadReport()
    sessions: list[Session] = []
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            report.lines_read += 1
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                reject(report, n, f"bad JSON ({e.msg})", raw, max_errors=max_errors, source=str(path))
                continue
            try:
                sessions.append(parse_session(obj, n, known_items))
            except ValueError as e:
                reject(report, n, str(e), raw, max_errors=max_errors, source=str(path))
    report.sessions = len(sessions)
    return sessions, report


def session_to_dict(s: Session) -> dict[str, Any]:
    return {
        "session_id": s.session_id, "user_id": s.user_id, "query": s.query, "ts": s.ts,
        "impressions": list(s.impressions), "clicks": list(s.clicks),
        "add_to_carts": list(s.add_to_carts), "orders": list(s.orders),
    }


def write_sessions_jsonl(sessions: Iterable[Session], path: Path | str) -> int:
    """Write sessions in the simple jsonl format; returns how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for s in sessions:
            fh.write(json.dumps(session_to_dict(s)) + "\n")
            n += 1
    return n
