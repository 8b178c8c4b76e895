"""Write-through: the writes relayed by `dsr serve` to the served index reach its sidecar.

A write to the served index (or an alias resolving to it) is relayed unchanged and its answer sent
back unchanged; only then, off the request path, is the answer read for the documents the cluster
acknowledged (`acknowledged_ids`: items with a 2xx status, deletes that found or did not find the
document). Their ids go to the backlog, a small append-only file under
`DATA_DIR/follow/` (fsynced; an entry is marked done when applied, and the file is rewritten
without done entries once all are applied), and a worker thread re-reads them from the cluster and
applies them to the sidecar (`dsr.ingest.follow.Follower`). A restart, SIGKILL included, replays
what the backlog still holds; a backlog left by a process that is gone (another port) is replayed
too. Only the moment between the answer being sent and its ids reaching the backlog is not covered:
`dsr sync` catches what a crash loses there.

Replicas: every replica that shares the sidecar directory (same DATA_DIR or `--sidecar` on one
file system) appends to its journal under a file lock, and each one's searcher (`LiveVectors`)
replays the journal every `reload_s` seconds, so a write through any replica is searched by all of
them within the backlog's lag plus `reload_s`.

Write-through needs a local sidecar directory and a model; with a remote sidecar, the engine's own
kNN or `--model none`, writes are relayed only. Writes to another index than the one served at
start (an alias moved since) are not followed: `dsr sync` takes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import logging
import os
import queue
import re
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

_DOC_WRITE = re.compile(r"^/[^/]+/(_doc|_create|_update)(/[^/]+)?/?$")
_BULK = re.compile(r"^(/[^/]+)?/_bulk/?$")
MAX_READ_ANSWER = 64 * 1024 * 1024  # answers larger than this are not read for ids (`dsr sync` takes them)
BATCH_IDS = 500


def is_write(method: str, path: str) -> bool:
    """Whether `method path` is a document write the cluster answers with the ids it wrote."""
    if _BULK.match(path):
        return method in ("POST", "PUT")
    match = _DOC_WRITE.match(path)
    if match is None:
        return False
    if match.group(1) == "_doc":
        return method in ("PUT", "POST") or (method == "DELETE" and match.group(2) is not None)
    return method in ("PUT", "POST") and match.group(2) is not None


def acknowledged_ids(status: int, body: bytes, index: str) -> list[str]:
    """The ids of `index` the cluster acknowledged writing (or deleting) in this answer."""
    try:
        answer = json.loads(body)
    except ValueError:
        return []
    if not isinstance(answer, dict):
        return []
    if isinstance(answer.get("items"), list):
        out = []
        for entry in answer["items"]:
            if not isinstance(entry, dict) or not entry:
                continue
            item = next(iter(entry.values()))
            if isinstance(item, dict) and _acknowledged(item, item.get("status")) and item.get("_index") == index:
                out.append(str(item.get("_id")))
        return out
    if "_id" in answer and answer.get("_index") == index and _acknowledged(answer, status):
        return [str(answer["_id"])]
    return []


def _acknowledged(item: dict[str, Any], status: Any) -> bool:
    return isinstance(status, int) and (200 <= status < 300 or (status == 404 and item.get("result") == "not_found"))


def decoded(body: bytes, encoding: str | None) -> bytes:
    """The answer's bytes as JSON text (the proxy relays the cluster's compression as it is)."""
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


@dataclass
class Entry:
    number: int
    at: float
    ids: list[str]


class Backlog:
    """Ids acknowledged by the cluster and not yet applied to the sidecar, kept in a file that survives a crash.

    Lines: `{"n": N, "t": TIME, "ids": [...]}` for an entry, `{"done": N}` once applied. The file is
    locked (flock) by its process while it runs, so a later process knows whether it was left behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = self.path.open("a+b")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        self._lock = threading.Lock()
        self._pending: dict[int, Entry] = {e.number: e for e in read_backlog(self.path)}
        self._next = max(self._pending, default=0) + 1

    def add(self, ids: list[str], at: float | None = None) -> Entry:
        return self.add_many([ids], at)[0]

    def add_many(self, batches: list[list[str]], at: float | None = None) -> list[Entry]:
        """One entry per list of ids, made durable together (one fsync)."""
        with self._lock:
            entries = []
            for ids in batches:
                entry = Entry(self._next, time.time() if at is None else at, ids)
                self._next += 1
                entries.append(entry)
            self._write(*({"n": e.number, "t": e.at, "ids": e.ids} for e in entries))
            for entry in entries:
                self._pending[entry.number] = entry
            return entries

    def done(self, numbers: Iterable[int]) -> None:
        with self._lock:
            done = [n for n in numbers if self._pending.pop(n, None) is not None]
            if done:
                self._write(*({"done": n} for n in done))
            if not self._pending and self._file.tell() > 0:
                self._file.truncate(0)
                os.fsync(self._file.fileno())

    def pending(self) -> list[Entry]:
        with self._lock:
            return sorted(self._pending.values(), key=lambda e: e.number)

    def __len__(self) -> int:
        return len(self._pending)

    def oldest_age(self) -> float:
        with self._lock:
            oldest = min((e.at for e in self._pending.values()), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def _write(self, *lines: dict[str, Any]) -> None:
        self._file.seek(0, os.SEEK_END)
        self._file.write(b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_backlog(path: Path) -> list[Entry]:
    """The entries of a backlog file not marked done; a torn last line (a crash mid-append) is ignored."""
    entries: dict[int, Entry] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            data = json.loads(line)
            if "done" in data:
                entries.pop(int(data["done"]), None)
            else:
                entries[int(data["n"])] = Entry(int(data["n"]), float(data["t"]), [str(i) for i in data["ids"]])
        except (ValueError, KeyError, TypeError):
            continue
    return list(entries.values())


@contextlib.contextmanager
def _unlocked(path: Path) -> Iterator[bool]:
    """Whether the backlog at `path` was left behind (no live process holds it), holding it meanwhile."""
    with path.open("a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@dataclass
class Counts:
    applied: int = 0
    failed: int = 0
    last_error: str | None = None


class WriteThrough:
    """The backlog of one served index and the worker that applies it; also refreshes the searcher's vectors.

    Args:
        index: the concrete index the sidecar belongs to.
        follower: `dsr.ingest.follow.Follower` for it (any object with `refresh(ids)` and `close()`).
        backlog_dir: DATA_DIR/follow.
        name: this process's backlog name (the port), so replicas keep one each.
        vectors: the searcher's `LiveVectors` (refreshed after each batch and every `reload_s`), or None.
    """

    def __init__(self, index: str, follower: Any, backlog_dir: Path, name: str, *, vectors: Any = None,
                 reload_s: float = 1.0, retry_s: float = 2.0, gather_s: float = 0.05) -> None:
        self.index = index
        self.gather_s = gather_s
        self.follower = follower
        self.vectors = vectors
        self.reload_s = reload_s
        self.retry_s = retry_s
        self.counts = Counts()
        self.backlog = Backlog(Path(backlog_dir) / f"{index}.{name}.backlog")
        self._adopt(Path(backlog_dir))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dsr-write-through-{index}", daemon=True)
        self._answers: queue.SimpleQueue[tuple[int, bytes, str | None] | None] = queue.SimpleQueue()
        self._intake = threading.Thread(target=self._read_answers, name=f"dsr-write-answers-{index}", daemon=True)

    def _adopt(self, backlog_dir: Path) -> None:
        """Take over the entries of backlogs of this index that no running process holds (a replica gone)."""
        for path in sorted(backlog_dir.glob(f"{self.index}.*.backlog")):
            if path == self.backlog.path:
                continue
            with _unlocked(path) as left:
                if not left:
                    continue
                for entry in read_backlog(path):
                    self.backlog.add(entry.ids, at=entry.at)
                path.unlink(missing_ok=True)

    def start(self) -> None:
        self._thread.start()
        self._intake.start()
        if len(self.backlog):
            self._wake.set()

    def submit(self, status: int, body: bytes, encoding: str | None) -> None:
        """Hand over a write's answer, already sent; read for its ids in a thread, so no request waits on it."""
        self._answers.put((status, body, encoding))

    def _read_answers(self) -> None:
        """Journal the ids of the answers handed over; those waiting together share one fsync."""
        done = False
        while not done:
            answers = [self._answers.get()]
            while not self._answers.empty() and len(answers) < 1000:
                answers.append(self._answers.get())
            batches = []
            for answer in answers:
                if answer is None:
                    done = True
                    continue
                status, body, encoding = answer
                try:
                    ids = acknowledged_ids(status, decoded(body, encoding), self.index)
                except (OSError, ValueError, zlib.error) as e:
                    log.warning("cannot read the answer of a write to [%s] for its ids: %s", self.index, e)
                    continue
                if ids:
                    batches.append(ids)
            if batches:
                self.backlog.add_many(batches)
                self._wake.set()

    def record(self, ids: list[str]) -> None:
        """Journal acknowledged ids (fsynced) and wake the worker."""
        if ids:
            self.backlog.add(ids)
            self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {"backlog": sum(len(e.ids) for e in self.backlog.pending()), "backlog_entries": len(self.backlog),
                "lag_s": round(self.backlog.oldest_age(), 3), "applied": self.counts.applied,
                "failed": self.counts.failed, "last_error": self.counts.last_error}

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(self.reload_s):
                self._stop.wait(self.gather_s)  # the writes of a burst are applied together
            self._wake.clear()
            if self._stop.is_set():
                break
            if len(self.backlog) and not self._apply_pending():
                self._stop.wait(self.retry_s)
                self._wake.set()
            self._refresh_vectors()

    def _apply_pending(self) -> bool:
        """Apply the backlog in batches; False when a batch failed (it stays, and is tried again)."""
        entries = self.backlog.pending()
        while entries:
            batch: list[int] = []
            ids: list[str] = []
            while entries and (not ids or len(ids) + len(entries[0].ids) <= BATCH_IDS):
                entry = entries.pop(0)
                batch.append(entry.number)
                ids.extend(entry.ids)
            try:
                self.follower.refresh(list(dict.fromkeys(ids)))
            except Exception as e:  # the cluster or the sidecar failed: kept, tried again
                self.counts.failed += len(ids)
                self.counts.last_error = f"{type(e).__name__}: {e}"[:500]
                log.warning("write-through to the sidecar of [%s] failed (kept in the backlog): %s",
                            self.index, self.counts.last_error)
                return False
            self.backlog.done(batch)
            self.counts.applied += len(ids)
            self._refresh_vectors()
        return True

    def _refresh_vectors(self) -> None:
        if self.vectors is None:
            return
        try:
            self.vectors.refresh()
        except Exception as e:  # a sidecar being rewritten: tried again on the next round
            log.warning("cannot take up the sidecar's changes for [%s]: %s", self.index, e)

    def close(self) -> None:
        self._answers.put(None)  # the answers handed over so far are journaled first
        if self._intake.is_alive():
            self._intake.join(timeout=30)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.backlog.close()
        self.follower.close()
