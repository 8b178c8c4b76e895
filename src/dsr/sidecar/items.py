"""`ItemRecords`: the few fields the ranker reads for each item, kept beside the item's vector.

Re-ranking the top 100 needs every candidate's title, brand, category, price and popularity
figures. Term hits arrive with their sources, sidecar neighbours do not. Fetching the neighbours'
sources with `mget` while the term search runs doubles the work the cluster does per search, and on
a small node the two requests slow each other down. Ingest therefore writes these fields here, in
the same step that writes the vector, so the searcher reads them locally and asks the cluster only
for the sources of the page it returns. The cluster stays the source of truth for what a response
shows; these records only feed the ranker.

SQLite keyed by id: each batch is durable when `upsert` returns, a serving process can read while
ingest writes, and a lookup of 100 ids takes a fraction of a millisecond. Connections are per
thread, because the server calls the searcher from a thread pool.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dsr.errors import VectorIndexError

FILE_NAME = "items.sqlite"
FORMAT_VERSION = 1
_MAX_PARAMS = 900  # SQLite's default limit on host parameters is 999


def records_path(directory: Path | str) -> Path:
    return Path(directory) / FILE_NAME


class ItemRecords:
    """Per-item records (`id` plus the declared `fields`), upserted and deleted by id."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.fields = fields
        self._local = threading.local()

    @classmethod
    def open(cls, directory: Path | str, fields: Sequence[str] | None = None) -> ItemRecords:
        """The records in `directory`, created with `fields` when there are none yet.

        An existing file keeps the fields it was created with unless `fields` adds new ones: then
        the file is declared to hold the union, and items written from now on carry all of them.
        Records written before hold only the old fields, so a changed field list should be
        followed by a full re-ingest (the searcher falls back to `mget` for fields it lacks).
        """
        path = records_path(directory)
        existed = path.exists()
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(path)
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if existed and meta:
                version = int(meta.get("format_version", "0"))
                if version != FORMAT_VERSION:
                    raise VectorIndexError(f"{path}: item records format {version}, this dsr reads {FORMAT_VERSION}")
                stored = tuple(json.loads(meta.get("fields", "[]")))
            else:
                stored = ()
            declared = tuple(dict.fromkeys([*stored, *(fields or ())]))
            if not declared:
                raise VectorIndexError(f"{path}: no item fields declared")
            if declared != stored:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                     [("format_version", str(FORMAT_VERSION)), ("fields", json.dumps(declared))])
        except sqlite3.DatabaseError as e:
            raise VectorIndexError(f"{path}: not a readable item records file ({e})") from None
        finally:
            if conn is not None:
                conn.close()
        return cls(path, declared)

    @classmethod
    def open_existing(cls, directory: Path | str) -> ItemRecords | None:
        """The records in `directory`, or None when ingest wrote none there."""
        return cls.open(directory) if records_path(directory).exists() else None

    def covers(self, needed: Iterable[str]) -> bool:
        """Whether every field in `needed` is recorded (so a record can stand in for the source)."""
        return set(needed) <= set(self.fields)

    def upsert(self, items: Iterable[Mapping[str, Any]]) -> None:
        rows = [(str(item["id"]), self._record(item)) for item in items]
        if rows:
            with self._conn() as conn:
                conn.executemany("INSERT OR REPLACE INTO items (id, doc) VALUES (?, ?)", rows)

    def delete(self, ids: Iterable[str]) -> None:
        keys = [str(i) for i in ids]
        with self._conn() as conn:
            for start in range(0, len(keys), _MAX_PARAMS):
                chunk = keys[start:start + _MAX_PARAMS]
                conn.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def get_many(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of those ids that have one, as `{id: {"id": id, field: value, ...}}`."""
        out: dict[str, dict[str, Any]] = {}
        conn = self._conn()
        for start in range(0, len(ids), _MAX_PARAMS):
            chunk = list(ids[start:start + _MAX_PARAMS])
            query = f"SELECT id, doc FROM items WHERE id IN ({','.join('?' * len(chunk))})"
            for doc_id, doc in conn.execute(query, chunk):
                record = json.loads(doc)
                record["id"] = doc_id
                out[doc_id] = record
        return out

    def ids(self) -> list[str]:
        return [row[0] for row in self._conn().execute("SELECT id FROM items")]

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _record(self, item: Mapping[str, Any]) -> str:
        return json.dumps({f: item[f] for f in self.fields if item.get(f) is not None},
                          separators=(",", ":"), ensure_ascii=False, default=str)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
        return conn


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


__all__ = ["FILE_NAME", "ItemRecords", "records_path"]
