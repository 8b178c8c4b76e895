"""Crash-safe files for the sidecar: versioned snapshots behind a pointer, checksums, and a journal.

A sidecar directory looks like::

    CURRENT            name of the live snapshot ("v-000003"), replaced atomically
    v-000003/          one snapshot: manifest.json (sha256 + size of every file) and its files
    journal.log        changes made since that snapshot, one checksummed record per batch

A save writes the next snapshot into a temp folder, fsyncs every file and the folder, renames it into
place and only then swaps `CURRENT` (write temp + fsync + `os.replace`). A crash at any point leaves
either the old or the new snapshot in force, never half of one. Loading checks every file against the
manifest, so a truncated or corrupted file is refused with a clear error instead of serving garbage.

The journal lets a long ingest make each batch durable with one small append and fsync instead of
rewriting a snapshot of a million vectors. Its layout::

    DSRJOURNAL1\n{"base": "v-000003"}\n     header: the snapshot the records apply on top of
    REC2 op n dim ids_len body_crc head_crc  one record: a 25-byte little-endian header whose own crc32
    ids (JSON) vectors (n x dim float32)     (head_crc) covers the fields before it, then the body,
    ...                                      whose crc32 is body_crc

Records written before the header had its own checksum start with `REC1` and lack `head_crc`; they
still load. Two kinds of damage are told apart, because only one of them is harmless:

* a torn tail: the last record has fewer bytes than its header promises (or the file ends inside a
  header, or in a run of zero bytes a crash can leave). Its append never returned, so its batch was
  never acknowledged: the record is ignored on load, cut off (with a warning) when the journal is next
  opened for writing, and the ingest re-processes the batch.
* corruption: a record that is complete but fails a checksum, or a header that is not a record header.
  Its batch *was* acknowledged, so dropping it would lose items silently; loading is refused with
  `JournalCorruptError` (file and byte offset). `set_aside_damaged_journal` moves the damaged part
  into a file beside the journal so that `dsr verify --repair` can re-add what it held from the cluster.
  A `REC1` record cannot tell a damaged length field from a torn tail; `REC2` can.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsr.errors import VectorIndexError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
JOURNAL = "journal.log"
_JOURNAL_MAGIC = b"DSRJOURNAL1\n"
_RECORD_V1 = struct.Struct("<4sBIIII")  # magic, op, n, dim, ids_len, body crc32 (also the start of _RECORD)
_RECORD = struct.Struct("<4sBIIIII")  # the same, then the crc32 of the fields before it
_RECORD_MAGIC_V1 = b"REC1"
_RECORD_MAGIC = b"REC2"
_OPS = {1: "upsert", 2: "delete"}


def fsync_dir(path: Path) -> None:
    """Make a rename or file creation inside `path` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the old content or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def current_version(directory: Path) -> str | None:
    """Name of the snapshot `CURRENT` points at, or None for an empty/new directory."""
    pointer = directory / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not name or "/" in name or name.startswith("."):
        raise VectorIndexError(f"sidecar {directory}: {CURRENT} is corrupt ({name!r})")
    return name


def is_sidecar_dir(directory: Path) -> bool:
    return (directory / CURRENT).exists()


def write_snapshot(directory: Path, files: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Write a new snapshot and make it current; returns its version name.

    `files` maps a file name to a callable taking the target path and writing the file there.
    """
    directory.mkdir(parents=True, exist_ok=True)
    previous = current_version(directory)
    number = int(previous.split("-")[1]) + 1 if previous else 1
    version = f"v-{number:06d}"
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=f".{version}."))
    try:
        entries = {}
        for name, writer in files.items():
            target = tmp / name
            writer(target)
            _fsync_file(target)
            entries[name] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
        manifest = {"format_version": FORMAT_VERSION, **meta, "files": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _fsync_file(tmp / MANIFEST)
        fsync_dir(tmp)
        final = directory / version
        if final.exists():  # left over from a save that crashed before swapping CURRENT
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_dir(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_bytes(directory / CURRENT, version.encode())
    # Old snapshots and abandoned temp folders are garbage once CURRENT has moved on.
    for child in directory.iterdir():
        if child.is_dir() and child.name != version and child.name.startswith(("v-", ".v-")):
            shutil.rmtree(child, ignore_errors=True)
    return version


@dataclass(frozen=True)
class Snapshot:
    directory: Path
    version: str
    manifest: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.directory / self.version / name


def read_snapshot(directory: Path) -> Snapshot:
    """The current snapshot with every file checked against its manifest checksum."""
    directory = Path(directory)
    if not directory.is_dir():
        raise VectorIndexError(f"no sidecar at {directory} (directory missing); run `dsr ingest` first")
    version = current_version(directory)
    if version is None:
        raise VectorIndexError(f"no sidecar at {directory} ({CURRENT} missing); run `dsr ingest` first")
    manifest_path = directory / version / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise VectorIndexError(f"sidecar {directory}: snapshot {version} has no manifest") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise VectorIndexError(f"sidecar {directory}: manifest of {version} is corrupt: {e}") from e
    if manifest.get("format_version") != FORMAT_VERSION:
        raise VectorIndexError(
            f"sidecar {directory}: format version {manifest.get('format_version')!r} is not supported "
            f"(expected {FORMAT_VERSION})"
        )
    for name, entry in manifest.get("files", {}).items():
        path = directory / version / name
        if not path.exists():
            raise VectorIndexError(f"sidecar {directory}: file {version}/{name} is missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise VectorIndexError(
                f"sidecar {directory}: file {version}/{name} is truncated or altered "
                f"({size} bytes, manifest says {entry['bytes']})"
            )
        if sha256_file(path) != entry["sha256"]:
            raise VectorIndexError(f"sidecar {directory}: file {version}/{name} is corrupt (sha256 mismatch)")
    return Snapshot(directory, version, manifest)


# ---------------------------------------------------------------------------------------------- journal


@dataclass(frozen=True)
class JournalRecord:
    op: str  # "upsert" or "delete"
    ids: list[str]
    vectors: np.ndarray | None


class JournalCorruptError(VectorIndexError):
    """A complete journal record, or the journal's header, is damaged: dropping it would lose acknowledged items.

    `offset` is where the damage starts; everything from there on is unusable (records are found by
    walking the lengths in their headers). `set_aside_damaged_journal` cuts the journal there.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"sidecar journal {path} is corrupt at byte {offset} ({reason}); the batches recorded from there on "
            "were acknowledged, so the sidecar is not loaded without them. Run `dsr verify --index INDEX --repair "
            "--model MODEL` (it sets the damaged part aside and re-adds what it held from the cluster), or delete "
            f"{path.parent} and run the ingest again with --force")


def reset_journal(directory: Path, base_version: str) -> None:
    """Start an empty journal whose records apply on top of snapshot `base_version`."""
    header = _JOURNAL_MAGIC + json.dumps({"base": base_version}).encode() + b"\n"
    atomic_write_bytes(directory / JOURNAL, header)


class JournalWriter:
    """Appends one checksummed record per change and fsyncs it before returning.

    Opening it cuts off a torn tail (with a warning) and refuses a corrupt journal, as loading does.
    """

    def __init__(self, directory: Path, base_version: str) -> None:
        path = directory / JOURNAL
        good_end = _valid_prefix_length(path, base_version)
        if good_end is None:
            reset_journal(directory, base_version)
            good_end = path.stat().st_size
        self._file = path.open("r+b")
        if self._file.seek(0, os.SEEK_END) > good_end:
            log.warning("sidecar journal %s: cut off the incomplete last record at byte %d (%d bytes; a write a "
                        "crash interrupted, never acknowledged)", path, good_end, self._file.tell() - good_end)
            self._file.truncate(good_end)
            os.fsync(self._file.fileno())
        self._file.seek(good_end)

    def append(self, op: str, ids: list[str], vectors: np.ndarray | None = None) -> None:
        id_bytes = json.dumps(ids).encode("utf-8")
        vec_bytes = b"" if vectors is None else np.ascontiguousarray(vectors, dtype="<f4").tobytes()
        dim = 0 if vectors is None else int(vectors.shape[1])
        crc = zlib.crc32(vec_bytes, zlib.crc32(id_bytes))
        head = _RECORD_V1.pack(_RECORD_MAGIC, 1 if op == "upsert" else 2, len(ids), dim, len(id_bytes), crc)
        self._file.write(head + struct.pack("<I", zlib.crc32(head)) + id_bytes + vec_bytes)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _read_header(f: Any, path: Path) -> str:
    """The snapshot the journal's records apply to; a header that is not one is corruption."""
    if f.read(len(_JOURNAL_MAGIC)) != _JOURNAL_MAGIC:
        raise JournalCorruptError(path, 0, "not a dsr journal header")
    line = f.readline()
    try:
        return str(json.loads(line)["base"])
    except (ValueError, KeyError, TypeError):
        raise JournalCorruptError(path, 0, "unreadable journal header") from None


def _zeros_to_end(f: Any, start: int, size: int) -> bool:
    f.seek(start)
    while chunk := f.read(min(1 << 20, size - f.tell())):
        if chunk.strip(b"\0"):
            return False
    return True


def _read_record(f: Any, path: Path, start: int, size: int, decode: bool) -> JournalRecord | None:
    """The record at `start`, or None for a torn tail; raises `JournalCorruptError` for damage."""
    magic = f.read(4)
    if magic[:1] == b"\0" and _zeros_to_end(f, start, size):
        return None  # the file grew but the data never reached the disk
    if len(magic) < 4 and (_RECORD_MAGIC.startswith(magic) or _RECORD_MAGIC_V1.startswith(magic)):
        return None
    layout = {_RECORD_MAGIC: _RECORD, _RECORD_MAGIC_V1: _RECORD_V1}.get(magic)
    if layout is None:
        raise JournalCorruptError(path, start, "no record header there")
    rest = f.read(layout.size - 4)
    if len(rest) < layout.size - 4:
        return None
    fields = layout.unpack(magic + rest)
    _, op, n, dim, ids_len, body_crc = fields[:6]
    if layout is _RECORD and zlib.crc32(magic + rest[:-4]) != fields[6]:
        raise JournalCorruptError(path, start, "the record header fails its checksum")
    if op not in _OPS or (op == 1) != (dim > 0):
        raise JournalCorruptError(path, start, f"the record header is damaged (operation {op}, dimension {dim})")
    body_len = ids_len + n * dim * 4
    if body_len > size - f.tell():
        return None  # fewer bytes than the header promises: the append never finished
    body = f.read(body_len)
    if zlib.crc32(body) != body_crc:
        raise JournalCorruptError(path, start, "a complete record fails its checksum")
    try:
        ids = json.loads(body[:ids_len].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise JournalCorruptError(path, start, "unreadable ids") from None
    if not isinstance(ids, list) or len(ids) != n:
        raise JournalCorruptError(path, start, "the ids do not match the record header")
    vectors = None
    if op == 1 and decode:
        vectors = np.frombuffer(body[ids_len:], dtype="<f4").reshape(n, dim).astype(np.float32)
    return JournalRecord(_OPS[op], ids, vectors)


def _iter_records(f: Any, path: Path, *, decode: bool = True) -> Iterator[tuple[JournalRecord | None, int]]:
    """Each record with the offset it starts at; a torn tail comes last as (None, its offset)."""
    size = os.fstat(f.fileno()).st_size
    while (start := f.tell()) < size:
        record = _read_record(f, path, start, size, decode)
        yield record, start
        if record is None:
            return


def _valid_prefix_length(path: Path, base_version: str) -> int | None:
    """Bytes of the journal that hold whole records for `base_version`; None when it must be reset."""
    if not path.exists():
        return None
    with path.open("rb") as f:
        if _read_header(f, path) != base_version:
            return None
        end = f.tell()
        for record, start in _iter_records(f, path, decode=False):
            end = f.tell() if record is not None else start
        return end


def read_journal(directory: Path, base_version: str) -> list[JournalRecord]:
    """Records to replay on top of `base_version` (none when the journal belongs to an older snapshot).

    A torn tail is ignored with a warning; corruption raises `JournalCorruptError`.
    """
    path = directory / JOURNAL
    if not path.exists():
        return []
    records = []
    with path.open("rb") as f:
        if _read_header(f, path) != base_version:
            return []  # written before the current snapshot, which already contains it
        for record, start in _iter_records(f, path):
            if record is None:
                log.warning("sidecar journal %s: ignoring the incomplete last record at byte %d (a write still "
                            "under way or cut off by a crash, not acknowledged)", path, start)
                break
            records.append(record)
    return records


def set_aside_damaged_journal(directory: Path) -> Path | None:
    """Move the damaged part of a corrupt journal into a file beside it, so the sidecar loads again.

    Returns that file, or None when the journal is sound. What the moved records held is missing from
    the sidecar afterwards: `dsr verify --repair` re-adds it from the cluster, the source of truth.
    """
    directory = Path(directory)
    path = directory / JOURNAL
    version = current_version(directory)
    if version is None or not path.exists():
        return None
    try:
        with path.open("rb") as f:
            if _read_header(f, path) != version:
                return None
            for _ in _iter_records(f, path, decode=False):
                pass
        return None
    except JournalCorruptError as e:
        offset = e.offset
    data = path.read_bytes()
    aside = directory / f"{JOURNAL}.damaged-{offset}"
    n = 1
    while aside.exists():
        aside, n = directory / f"{JOURNAL}.damaged-{offset}.{n}", n + 1
    atomic_write_bytes(aside, data[offset:] if offset else data)
    if offset:
        with path.open("r+b") as f:
            f.truncate(offset)
            os.fsync(f.fileno())
    else:
        reset_journal(directory, version)
    log.warning("sidecar journal %s was corrupt at byte %d: moved the %d bytes from there on to %s; what they held "
                "is missing from the sidecar until it is re-added", path, offset, len(data) - offset, aside)
    return aside
