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
rewriting a snapshot of a million vectors; a record torn by a crash is detected by its checksum and
dropped (its batch was never acknowledged, so the ingest re-processes it).
"""

from __future__ import annotations

import hashlib
import json
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

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
JOURNAL = "journal.log"
_JOURNAL_MAGIC = b"DSRJOURNAL1\n"
_RECORD = struct.Struct("<4sBIIII")  # magic, op, n, dim, ids_len, crc32
_RECORD_MAGIC = b"REC1"


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


def reset_journal(directory: Path, base_version: str) -> None:
    """Start an empty journal whose records apply on top of snapshot `base_version`."""
    header = _JOURNAL_MAGIC + json.dumps({"base": base_version}).encode() + b"\n"
    atomic_write_bytes(directory / JOURNAL, header)


class JournalWriter:
    """Appends one checksummed record per change and fsyncs it before returning."""

    def __init__(self, directory: Path, base_version: str) -> None:
        path = directory / JOURNAL
        good_end = _valid_prefix_length(path, base_version)
        if good_end is None:
            reset_journal(directory, base_version)
            good_end = path.stat().st_size
        self._file = path.open("r+b")
        self._file.truncate(good_end)  # drop a torn tail left by a crash
        self._file.seek(good_end)

    def append(self, op: str, ids: list[str], vectors: np.ndarray | None = None) -> None:
        id_bytes = json.dumps(ids).encode("utf-8")
        vec_bytes = b"" if vectors is None else np.ascontiguousarray(vectors, dtype="<f4").tobytes()
        dim = 0 if vectors is None else int(vectors.shape[1])
        crc = zlib.crc32(vec_bytes, zlib.crc32(id_bytes))
        head = _RECORD.pack(_RECORD_MAGIC, 1 if op == "upsert" else 2, len(ids), dim, len(id_bytes), crc)
        self._file.write(head + id_bytes + vec_bytes)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _read_header(f: Any) -> str | None:
    if f.read(len(_JOURNAL_MAGIC)) != _JOURNAL_MAGIC:
        return None
    line = f.readline()
    try:
        return str(json.loads(line)["base"])
    except (ValueError, KeyError):
        return None


def _iter_records(f: Any, path: Path) -> Iterator[tuple[JournalRecord, int]]:
    """Records and the file offset after each; stops quietly at a torn tail, raises on damage inside."""
    file_size = path.stat().st_size
    while True:
        start = f.tell()
        head = f.read(_RECORD.size)
        if not head:
            return
        if len(head) < _RECORD.size:
            return  # torn tail
        magic, op, n, dim, ids_len, crc = _RECORD.unpack(head)
        body_len = ids_len + n * dim * 4
        if magic != _RECORD_MAGIC:
            raise VectorIndexError(f"sidecar journal {path} is corrupt at byte {start}")
        body = f.read(body_len)
        if len(body) < body_len:
            return  # torn tail
        if zlib.crc32(body) != crc:
            if f.tell() == file_size:
                return  # the last record was torn mid-write
            raise VectorIndexError(f"sidecar journal {path} is corrupt at byte {start} (checksum mismatch)")
        ids = json.loads(body[:ids_len].decode("utf-8"))
        vectors = None
        if op == 1:
            vectors = np.frombuffer(body[ids_len:], dtype="<f4").reshape(n, dim).astype(np.float32)
        yield JournalRecord("upsert" if op == 1 else "delete", ids, vectors), f.tell()


def _valid_prefix_length(path: Path, base_version: str) -> int | None:
    """Bytes of the journal that hold whole records for `base_version`; None when it must be reset."""
    if not path.exists():
        return None
    with path.open("rb") as f:
        if _read_header(f) != base_version:
            return None
        end = f.tell()
        for _, record_end in _iter_records(f, path):
            end = record_end
        return end


def read_journal(directory: Path, base_version: str) -> list[JournalRecord]:
    """Records to replay on top of `base_version` (none when the journal belongs to an older snapshot)."""
    path = directory / JOURNAL
    if not path.exists():
        return []
    with path.open("rb") as f:
        if _read_header(f) != base_version:
            return []  # written before the current snapshot, which already contains it
        return [record for record, _ in _iter_records(f, path)]
