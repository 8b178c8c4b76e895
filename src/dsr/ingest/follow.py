"""Follow the shop's writes: re-read some ids from the cluster and bring the sidecar in step with them.

Shared by the write-through of `dsr serve` (`dsr.server.writes`) and `dsr sync` (`dsr.ingest.sync`).
Whatever was written, the cluster is the source of truth: each id is read again (`mget`, real time,
with dsr's own credentials), so the sidecar ends with the document as the cluster holds it *now*,
whatever order the writes were followed in. A document the cluster holds is mapped to an item,
encoded with the item tower and upserted into the vectors and item records; a document it does not
hold (deleted), or one without a title after mapping, is deleted from both.

The item text mapping (`item_field_map`): an attached index uses the field map its attach recorded
(kept in the sidecar as `field_map.json`, or in the checkpoint of an attach still under way); any
other index is one `dsr ingest` wrote, whose documents carry the catalog's own field names, which
map onto themselves.

The changes go to the sidecar's journal (appended and fsynced, under a file lock, so several
processes may follow into one sidecar) and never to a snapshot: every process that has the sidecar
loaded takes them up on its next refresh (`dsr.sidecar.live`). The `_seq_no` and `_primary_term`
of each document followed are kept in `follow.sqlite` in the sidecar, for `dsr sync` to tell
which documents changed since.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsr.backends.base import EMBEDDING_FIELD
from dsr.catalog.validate import Limits, validate_row
from dsr.encoders.base import Encoder
from dsr.errors import EngineError, UsageError, VectorIndexError
from dsr.ingest.field_map import ITEM_FIELDS, FieldMap, FieldSource
from dsr.settings import ConnectionSettings
from dsr.sidecar.items import ItemRecords
from dsr.sidecar.storage import JournalWriter, atomic_write_bytes, current_version

FIELD_MAP_FILE = "field_map.json"
SEEN_FILE = "follow.sqlite"
LOCK_FILE = "follow.lock"
MGET_CHUNK = 500

Version = tuple[int, int]  # (_primary_term, _seq_no): later writes compare greater


def save_field_map(sidecar_dir: Path, fmap: FieldMap) -> None:
    """Record in the sidecar the field map its items were made with, for the writes followed later."""
    Path(sidecar_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(sidecar_dir) / FIELD_MAP_FILE, json.dumps(fmap.to_dict(), indent=1).encode("utf-8"))


CATALOG_FIELD_MAP = FieldMap(tuple(FieldSource(f, f, False) for f in ITEM_FIELDS))
"""The documents `dsr ingest` writes carry the catalog's field names: each item field is read from itself."""


def item_field_map(sidecar_dir: Path, attach_checkpoint: Path | None = None) -> tuple[FieldMap, str]:
    """The map from the index's documents to items, and where it was found (said to the user)."""
    for path in (Path(sidecar_dir) / FIELD_MAP_FILE, attach_checkpoint):
        if path is None or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data = data.get("field_map", data) if path.name != FIELD_MAP_FILE else data
            if data:
                return FieldMap.from_dict(data), str(path)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
    return CATALOG_FIELD_MAP, "the catalog fields (an index dsr ingest wrote)"


@dataclass(frozen=True)
class FollowOutcome:
    """What one `refresh` did: ids upserted, and ids deleted (gone from the index, or without a title)."""

    upserted: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


class SeenVersions:
    """The `(_primary_term, _seq_no)` of each document last followed into the sidecar."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, term INTEGER, seq INTEGER) "
                           "WITHOUT ROWID")
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._conn.commit()

    def set(self, versions: Mapping[str, Version]) -> None:
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO seen (id, term, seq) VALUES (?, ?, ?)",
                                   [(i, t, s) for i, (t, s) in versions.items()])

    def forget(self, ids: Iterable[str]) -> None:
        with self._conn:
            self._conn.executemany("DELETE FROM seen WHERE id = ?", [(i,) for i in ids])

    def all(self) -> dict[str, Version]:
        return {i: (t, s) for i, t, s in self._conn.execute("SELECT id, term, seq FROM seen")}

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def sidecar_lock(sidecar_dir: Path) -> Iterator[None]:
    """One process at a time appends to the sidecar's journal (the journal writer is not shared)."""
    with (Path(sidecar_dir) / LOCK_FILE).open("a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class Follower:
    """Brings the sidecar of `index` in step with the cluster for given ids.

    Args:
        client: the cluster's client, with dsr's own credentials (`ClusterBackend.client`).
        index: the concrete index the sidecar belongs to.
        sidecar_dir: the sidecar directory (a `SidecarStore`'s), which must exist.
        encoder: the item tower the sidecar was built with.
        field_map: documents -> items (`item_field_map`).
    """

    def __init__(self, client: Any, index: str, sidecar_dir: Path, encoder: Encoder, field_map: FieldMap,
                 *, limits: Limits = Limits(), owned: Any = None) -> None:
        self.client = client
        self._owned = owned  # closed with the follower (the backend the client is of)
        self.index = index
        self.sidecar_dir = Path(sidecar_dir)
        if current_version(self.sidecar_dir) is None:
            raise VectorIndexError(f"{self.sidecar_dir} is not a sidecar directory")
        self.encoder = encoder
        self.field_map = field_map
        self.limits = limits
        self.seen = SeenVersions(self.sidecar_dir / SEEN_FILE)

    def read(self, ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], Version]]:
        """The sources and versions of those ids the index holds now."""
        found: dict[str, tuple[dict[str, Any], Version]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), MGET_CHUNK):
            resp = self.client.mget(index=self.index, body={"ids": unique[start:start + MGET_CHUNK]},
                                    _source_excludes=[EMBEDDING_FIELD])
            for doc in resp["docs"]:
                if doc.get("error"):  # not "not found": the cluster could not say, so nothing is decided
                    raise EngineError(f"re-reading [{doc.get('_id')}] from {self.index} failed: {doc['error']}")
                if doc.get("found"):
                    version = (int(doc.get("_primary_term", 0)), int(doc.get("_seq_no", -1)))
                    found[str(doc["_id"])] = (doc.get("_source") or {}, version)
        return found

    def refresh(self, ids: Sequence[str]) -> FollowOutcome:
        """Read `ids` from the cluster and upsert (or delete) each in the sidecar and its records."""
        if not ids:
            return FollowOutcome()
        held = self.read(ids)
        items: list[dict[str, Any]] = []
        versions: dict[str, Version] = {}
        gone = [i for i in dict.fromkeys(ids) if i not in held]
        for doc_id, (source, version) in held.items():
            checked = validate_row(self.field_map.item(doc_id, source), self.limits)
            if checked.item is None or checked.deleted:
                gone.append(doc_id)
            else:
                items.append(checked.item)
            versions[doc_id] = version
        vectors = (np.asarray(self.encoder.encode_items(items), dtype=np.float32) if items
                   else np.zeros((0, self.encoder.dim), np.float32))
        self.apply(items, vectors, gone)
        self.seen.set(versions)
        self.seen.forget(i for i in gone if i not in versions)
        return FollowOutcome(tuple(i["id"] for i in items), tuple(gone))

    def apply(self, items: Sequence[Mapping[str, Any]], vectors: np.ndarray, gone: Sequence[str]) -> None:
        """Journal the upserts and deletes (fsynced) and write the item records, under the sidecar's lock."""
        with sidecar_lock(self.sidecar_dir):
            version = current_version(self.sidecar_dir)
            assert version is not None
            journal = JournalWriter(self.sidecar_dir, version)
            try:
                if items:
                    journal.append("upsert", [str(i["id"]) for i in items], vectors)
                if gone:
                    journal.append("delete", list(gone))
            finally:
                journal.close()
            records = ItemRecords.open_existing(self.sidecar_dir)
            if records is not None:
                try:
                    if items:
                        records.upsert(items)
                    if gone:
                        records.delete(gone)
                finally:
                    records.close()

    def close(self) -> None:
        self.seen.close()
        if self._owned is not None:
            self._owned.close()


def fold_journal(sidecar_dir: Path) -> str:
    """Fold the journal into a new snapshot, under the sidecar's lock; returns the snapshot's version.

    The journal of a followed sidecar only grows, and every process that has it loaded reads it again
    when it grows; folding it now and then keeps both cheap. Those processes load the new snapshot.
    """
    from dsr.sidecar.faiss_index import FaissIndex
    from dsr.sidecar.storage import reset_journal

    with sidecar_lock(sidecar_dir):
        version = FaissIndex.load(Path(sidecar_dir), device="cpu").save_snapshot(Path(sidecar_dir))
        reset_journal(Path(sidecar_dir), version)
    return version


def follower_for(connection: ConnectionSettings, index: str, sidecar_dir: Path, encoder: Encoder,
                 name: str | None = None) -> Follower:
    """A follower of `index` into `sidecar_dir` over a connection of its own, with dsr's credentials.

    `name`: the index (or alias) as the user named it, under which an attach keeps its checkpoint.
    """
    from dsr.backends import connect

    backend = connect(connection)
    client = getattr(backend, "client", None)
    if client is None:
        backend.close()
        raise UsageError(f"the {backend.flavor} backend has no cluster to follow writes on")
    checkpoint = Path(connection.data_dir) / "attach" / f"{name or index}.checkpoint.json"
    fmap, _ = item_field_map(sidecar_dir, checkpoint)
    return Follower(client, index, sidecar_dir, encoder, fmap, owned=backend)
