"""OpenSearch User Behavior Insights (UBI) logs -> sessions.

UBI stores two indices: `ubi_queries` (one document per search: `query_id`, `client_id`,
`user_query`, `timestamp`) and `ubi_events` (`action_name`, `query_id`, `client_id`, `timestamp`,
`event_attributes.object.object_id`, `event_attributes.position.ordinal`). They arrive as plain ndjson
(one document per line, the kind told apart by `action_name`) or as a bulk-API export (an
`{"index": {"_index": ...}}` line before each document). Both may be mixed in one file or split over
several files.

One session is one `query_id`: the query text, who issued it and when, what was shown (in position
order) and what was clicked, added to the cart and purchased. Events of other applications (when
`applications` is given) and actions that carry no relevance signal are skipped and counted by reason;
malformed lines are rejected with their line number.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsr.logs.problems import reject, skip
from dsr.logs.records import LoadReport, Session
from dsr.logs.timestamps import parse_ts

IMPRESSION_ACTIONS = frozenset({"impression"})
CLICK_ACTIONS = frozenset({"click", "item_click", "product_click"})
CART_ACTIONS = frozenset({"add_to_cart"})
ORDER_ACTIONS = frozenset({"purchase", "order", "checkout"})
ITEM_ACTIONS = IMPRESSION_ACTIONS | CLICK_ACTIONS | CART_ACTIONS | ORDER_ACTIONS


@dataclass
class _Query:
    text: str | None = None
    user_id: str | None = None
    ts: float | None = None
    line: int = 0
    from_query_doc: bool = False  # ts came from the ubi_queries document
    empty: bool = False  # a search with an empty query string (browsing), not a malformed one
    impressions: dict[str, float] = field(default_factory=dict)  # item -> best position
    clicks: list[tuple[float, str]] = field(default_factory=list)
    carts: list[tuple[float, str]] = field(default_factory=list)
    orders: list[tuple[float, str]] = field(default_factory=list)


def _documents(path: Path, report: LoadReport, max_errors: int | None) -> Iterator[tuple[int, str, dict, str]]:
    """(line, kind, document, raw) with kind 'query' or 'event'; bulk action lines are consumed."""
    pending_index: str | None = None  # the _index named by the previous bulk action line
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            report.lines_read += 1
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                pending_index = None
                reject(report, n, f"bad JSON ({e.msg})", raw, max_errors=max_errors, source=str(path))
                continue
            if not isinstance(obj, dict):
                pending_index = None
                reject(report, n, "not a JSON object", raw, max_errors=max_errors, source=str(path))
                continue
            if len(obj) == 1 and next(iter(obj)) in ("index", "create", "update", "delete") \
                    and isinstance(next(iter(obj.values())), dict):
                op, meta = next(iter(obj.items()))
                if op == "delete":
                    skip(report, "bulk delete action")
                    pending_index = None
                else:
                    pending_index = str(meta.get("_index", ""))
                    if op == "update":
                        pending_index = "\x00update"
                continue
            index, pending_index = pending_index, None
            if index == "\x00update":
                skip(report, "bulk update document")
                continue
            if index:
                if "ubi_queries" in index:
                    kind = "query"
                elif "ubi_events" in index:
                    kind = "event"
                else:
                    skip(report, f"index {index}")
                    continue
            elif "action_name" in obj:
                kind = "event"
            elif "query_id" in obj and "user_query" in obj:
                kind = "query"
            else:
                reject(report, n, "neither a ubi_queries nor a ubi_events document", raw,
                       max_errors=max_errors, source=str(path))
                continue
            yield n, kind, obj, raw


def _object_id(event: dict) -> str | None:
    attrs = event.get("event_attributes")
    obj = attrs.get("object") if isinstance(attrs, dict) else None
    oid = obj.get("object_id") if isinstance(obj, dict) else None
    if oid is None or isinstance(oid, bool) or str(oid).strip() == "":
        return None
    return str(oid)


def _position(event: dict) -> float:
    attrs = event.get("event_attributes")
    pos = attrs.get("position") if isinstance(attrs, dict) else None
    ordinal = pos.get("ordinal") if isinstance(pos, dict) else None
    return float(ordinal) if isinstance(ordinal, int | float) and not isinstance(ordinal, bool) else float("inf")


def _user(doc: dict) -> str | None:
    for key in ("user_id", "client_id"):
        v = doc.get(key)
        if v not in (None, ""):
            return str(v)
    return None


def load_ubi(
    paths: Path | str | Sequence[Path | str],
    *,
    applications: Collection[str] | None = None,
    known_items: Collection[str] | None = None,
    max_errors: int | None = 100,
) -> tuple[list[Session], LoadReport]:
    """Sessions (one per query_id, in time order) from UBI ndjson or bulk-ndjson files."""
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    report = LoadReport()
    queries: dict[str, _Query] = {}
    for path in files:
        src = str(path)
        for n, kind, doc, raw in _documents(path, report, max_errors):
            app = doc.get("application")
            if applications is not None and app not in applications:
                skip(report, f"application {app!r}")
                continue
            qid = doc.get("query_id")
            if qid in (None, ""):
                if kind == "event" and doc.get("action_name") not in ITEM_ACTIONS:
                    skip(report, f"action {doc.get('action_name')!r} (no item signal)")
                    continue
                reject(report, n, "missing query_id", raw, max_errors=max_errors, source=src)
                continue
            try:
                ts = parse_ts(doc.get("timestamp"))
            except ValueError as e:
                reject(report, n, f"bad timestamp ({e})", raw, max_errors=max_errors, source=src)
                continue
            text = doc.get("user_query")
            if kind == "query":
                q = queries.setdefault(str(qid), _Query(line=n))
                if isinstance(text, str) and not text.strip():
                    q.empty = True
                    continue
                if not isinstance(text, str):
                    reject(report, n, "missing query", raw, max_errors=max_errors, source=src)
                    continue
                q.text, q.user_id, q.line = text.strip(), _user(doc), n
                if ts is not None:
                    q.ts, q.from_query_doc = ts, True
                continue
            action = doc.get("action_name")
            if not isinstance(action, str) or not action:
                reject(report, n, "missing action_name", raw, max_errors=max_errors, source=src)
                continue
            if action not in ITEM_ACTIONS:
                skip(report, f"action {action!r} (no item signal)")
                continue
            q = queries.setdefault(str(qid), _Query(line=n))
            item = _object_id(doc)
            if item is None:
                reject(report, n, f"{action} event without an object id", raw, max_errors=max_errors, source=src)
                continue
            if known_items is not None and item not in known_items:
                reject(report, n, f"unknown item id {item!r}", raw, max_errors=max_errors, source=src)
                continue
            if q.text is None and isinstance(text, str) and text.strip():
                q.text = text.strip()
            q.user_id = q.user_id or _user(doc)
            if ts is not None and not q.from_query_doc:  # no ubi_queries time yet: the earliest event's
                q.ts = ts if q.ts is None else min(q.ts, ts)
            when = ts if ts is not None else float(n)
            if action in IMPRESSION_ACTIONS:
                q.impressions[item] = min(q.impressions.get(item, float("inf")), _position(doc))
            elif action in CLICK_ACTIONS:
                q.clicks.append((when, item))
            elif action in CART_ACTIONS:
                q.carts.append((when, item))
            else:
                q.orders.append((when, item))
    sessions = []
    for qid, q in queries.items():
        if q.text is None and q.empty:
            skip(report, "empty query string")
            continue
        if q.text is None:
            reject(report, q.line, f"missing query (no ubi_queries document or user_query for query_id {qid})",
                   max_errors=max_errors, source=", ".join(map(str, files)))
            continue
        sessions.append(Session(
            session_id=qid,
            query=q.text,
            user_id=q.user_id,
            ts=q.ts,
            impressions=tuple(i for i, _ in sorted(q.impressions.items(), key=lambda kv: kv[1])),
            clicks=_ordered(q.clicks),
            add_to_carts=_ordered(q.carts),
            orders=_ordered(q.orders),
        ))
    sessions.sort(key=lambda s: (s.ts is None, s.ts or 0.0))
    report.sessions = len(sessions)
    return sessions, report


def _ordered(events: list[tuple[float, str]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for _, item in sorted(events, key=lambda e: e[0]):
        seen.setdefault(item, None)
    return tuple(seen)


def looks_like_ubi(first_record: Any) -> bool:
    """Whether a file's first JSON record is UBI (a bulk action line, an event or a ubi_queries doc)."""
    if not isinstance(first_record, dict):
        return False
    if len(first_record) == 1 and next(iter(first_record)) in ("index", "create"):
        return True
    return "action_name" in first_record or ("query_id" in first_record and "user_query" in first_record)
