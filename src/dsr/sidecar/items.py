"""`ItemRecords`: the fields a ranker can read of each item, kept beside the item's vector.

Re-ranking the top 100 needs every candidate's title, brand, category, price and popularity
figures. Term hits arrive with their sources, sidecar neighbours do not. Fetching the neighbours'
sources with `mget` while the term search runs doubles the work the cluster does per search, and on
a small node the two requests slow each other down. Ingest therefore writes the items' fields here,
in the same step that writes the vector, so the searcher reads them locally and asks the cluster
only for the sources of the page it returns. The cluster stays the source of truth for what a
response shows; these records only feed the ranker.

What a record holds. Ingest does not know which ranker will be served: a ranker's feature config
may name other popularity, rating, CTR or CVR fields than the default one does, and another kind of
ranker may read other fields again. So a record written by ingest keeps every top-level field of the
item whose value is a scalar (a string, a number, a boolean), except the few that are large and that
no ranker dsr trains reads (`UNRECORDED`: the description, the attributes object, the vector). A
field that some item holds as an object or a list is not kept either, and the file says so; then
`covers` knows exactly which fields a record can stand in for, whatever the ranker. (Records can
also be created for a declared list of fields only, the layout of format 1.)

SQLite keyed by id: each batch is durable when `upsert` returns, a serving process can read while
ingest writes, and a lookup of 100 ids takes a fraction of a millisecond. Connections are per
thread, because the server calls the searcher from a thread pool.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsr.catalog import EMBEDDING_FIELD
from dsr.errors import VectorIndexError

log = logging.getLogger(__name__)

FILE_NAME = "items.sqlite"
DECLARED_FORMAT = 1  # the record holds a declared list of fields
SCALARS_FORMAT = 2  # the record holds every scalar field but the unrecorded ones
UNRECORDED = ("description", "attributes", EMBEDDING_FIELD)
_MAX_PARAMS = 900  # SQLite's default limit on host parameters is 999


def records_path(directory: Path | str) -> Path:
    return Path(directory) / FILE_NAME


class ItemRecords:
    """Per-item records, upserted and deleted by id.

    `fields` is the declared field list of a format-1 file, None for a file that keeps every scalar
    field except `unrecorded`.
    """

    def __init__(self, path: Path, fields: tuple[str, ...] | None,
                 unrecorded: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.fields = fields
        self.unrecorded = frozenset(unrecorded)
        self._local = threading.local()

    @property
    def keeps_every_scalar(self) -> bool:
        return self.fields is None

    @classmethod
    def open(cls, directory: Path | str, fields: Sequence[str] | None = None) -> ItemRecords:
        """The records in `directory`; a new file is created for the declared `fields`.

        An existing file of declared fields keeps them unless `fields` adds new ones: then the file
        is declared to hold the union, and items written from now on carry all of them. Records
        written before hold only the old fields, so a changed field list should be followed by a
        full re-ingest. An existing file that keeps every scalar field stays so (it holds more).
        """
        path = records_path(directory)
        with _opened(path) as (conn, version, meta):
            if version == SCALARS_FORMAT:
                return cls(path, None, json.loads(meta.get("unrecorded", "[]")))
            stored = tuple(json.loads(meta.get("fields", "[]")))
            declared = tuple(dict.fromkeys([*stored, *(fields or ())]))
            if not declared:
                raise VectorIndexError(f"{path}: no item fields declared")
            if declared != stored:
                _write_meta(conn, DECLARED_FORMAT, fields=json.dumps(declared))
        return cls(path, declared)

    @classmethod
    def open_for_every_scalar(cls, directory: Path | str) -> ItemRecords:
        """The records in `directory` as ingest writes them: every scalar field (see the module doc).

        A file of declared fields (written by an older dsr) is emptied and converted: its records
        could stand in only for the rankers that read no other field. Until items are written again,
        the searcher fetches their sources instead, and `dsr verify --repair` refills them.
        """
        path = records_path(directory)
        with _opened(path) as (conn, version, meta):
            if version == SCALARS_FORMAT:
                return cls(path, None, json.loads(meta.get("unrecorded", "[]")))
            if version is not None:
                log.warning("the item records in %s hold only the fields %s; they are rebuilt with every field "
                            "(`dsr verify --repair` refills the items not written again)", path,
                            json.loads(meta.get("fields", "[]")))
                with conn:
                    conn.execute("DELETE FROM items")
            _write_meta(conn, SCALARS_FORMAT, unrecorded=json.dumps(list(UNRECORDED)))
        return cls(path, None, UNRECORDED)

    @classmethod
    def open_existing(cls, directory: Path | str) -> ItemRecords | None:
        """The records in `directory`, or None when ingest wrote none there."""
        return cls.open(directory) if records_path(directory).exists() else None

    def covers(self, needed: Iterable[str]) -> bool:
        """Whether every field in `needed` is recorded (so a record can stand in for the source)."""
        if self.fields is None:
            return not set(needed) & self.unrecorded
        return set(needed) <= set(self.fields)

    def upsert(self, items: Iterable[Mapping[str, Any]]) -> None:
        skipped: set[str] = set()
        rows = [(str(item["id"]), self._record(item, skipped)) for item in items]
        if not rows:
            return
        with self._conn() as conn:
            if skipped - self.unrecorded:  # a field held as an object or a list: no record has it from now on
                self.unrecorded = self.unrecorded | skipped
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('unrecorded', ?)",
                             (json.dumps(sorted(self.unrecorded)),))
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

    def _record(self, item: Mapping[str, Any], skipped: set[str]) -> str:
        if self.fields is not None:
            kept = {f: item[f] for f in self.fields if item.get(f) is not None}
        else:
            kept = {}
            for name, value in item.items():
                if value is None or name == "id" or name in self.unrecorded:
                    continue
                if isinstance(value, str) or not isinstance(value, Iterable):
                    kept[name] = value
                else:
                    skipped.add(name)
        return json.dumps(kept, separators=(",", ":"), ensure_ascii=False, default=str)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
        return conn


@contextmanager
def _opened(path: Path) -> Iterator[tuple[sqlite3.Connection, int | None, dict[str, str]]]:
    """A set-up connection to the file at `path` with its format version and meta entries, closed after.

    A file that is not SQLite (or is damaged) is refused as a `VectorIndexError`, whether the damage
    shows when it is read or when its meta is rewritten.
    """
    existed = path.exists()
    conn: sqlite3.Connection | None = None
    try:
        conn = _prepare(path)
        version, meta = _read_meta(conn, path) if existed else (None, {})
        yield conn, version, meta
    except sqlite3.DatabaseError as e:
        raise VectorIndexError(f"{path}: not a readable item records file ({e})") from None
    finally:
        if conn is not None:
            conn.close()


def _prepare(path: Path) -> sqlite3.Connection:
    conn = _connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID")
    return conn


def _read_meta(conn: sqlite3.Connection, path: Path) -> tuple[int | None, dict[str, str]]:
    """The file's format version (None for a file not set up yet) and its meta entries."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if not meta:
        return None, meta
    version = int(meta.get("format_version", "0"))
    if version not in (DECLARED_FORMAT, SCALARS_FORMAT):
        raise VectorIndexError(f"{path}: item records format {version}, this dsr reads "
                               f"{DECLARED_FORMAT} and {SCALARS_FORMAT}")
    return version, meta


def _write_meta(conn: sqlite3.Connection, version: int, **entries: str) -> None:
    with conn:
        conn.execute("DELETE FROM meta")
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                         [("format_version", str(version)), *entries.items()])


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


__all__ = ["FILE_NAME", "UNRECORDED", "ItemRecords", "records_path"]
