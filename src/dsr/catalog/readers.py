"""Streaming catalog readers: jsonl, csv and parquet, one row at a time, in constant memory.

Every physical row comes out as a `SourceRow`, including the ones that cannot be parsed (invalid
UTF-8, broken JSON, broken CSV quoting): those carry an `error` and their raw text so the pipeline
can put them in the rejects file. A reader never silently skips data; only blank lines are dropped.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dsr.catalog.fields import Item
from dsr.errors import InputError, UsageError

FORMATS = ("jsonl", "csv", "parquet")
_SURROGATE = re.compile("[\udc80-\udcff]")
csv.field_size_limit(1 << 30)  # over-long fields are the validator's call, with a proper reason


@dataclass(frozen=True)
class SourceRow:
    """One row as read. `line` is the 1-based line (csv/jsonl: where the record starts) or row number."""

    line: int
    raw: str
    data: dict[str, Any] | None
    error: str | None = None
    position: int = 0  # bytes (jsonl/csv) or rows (parquet) consumed so far, for progress


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise UsageError(f"unknown catalog format {fmt!r}: use one of {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise UsageError(f"cannot tell the format of {path} from its extension; pass --format jsonl|csv|parquet")


def progress_total(path: Path, fmt: str) -> int:
    """The unit `SourceRow.position` counts towards: file bytes, or parquet rows."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return path.stat().st_size


def read_catalog(path: Path, fmt: str | None = None) -> Iterator[SourceRow]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"catalog file not found: {path}")
    fmt = detect_format(path, fmt)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        return read_csv(path)
    return read_parquet(path)


def _raw_text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace").rstrip("\r\n")


def read_jsonl(path: Path) -> Iterator[SourceRow]:
    position = 0
    with path.open("rb") as f:
        for number, bline in enumerate(f, 1):
            position += len(bline)
            if not bline.strip():
                continue
            try:
                text = bline.decode("utf-8")
            except UnicodeDecodeError as e:
                yield SourceRow(number, _raw_text(bline), None, f"invalid UTF-8 at byte {e.start}", position)
                continue
            text = text.rstrip("\r\n")
            try:
                data = json.loads(text)
            except ValueError as e:
                yield SourceRow(number, text, None, f"invalid JSON: {e}", position)
                continue
            if not isinstance(data, dict):
                yield SourceRow(number, text, None, f"row is a JSON {type(data).__name__}, not an object", position)
                continue
            yield SourceRow(number, text, data, None, position)


class _Lines:
    """Numbered physical lines of a binary file with push-back, feeding `csv.reader` one line at a time.

    `taken` records the lines the reader pulled for the current record, so a broken record can be
    reported with its raw text and the lines it swallowed can be re-parsed.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._number = 0
        self._pushed: deque[tuple[int, str, int]] = deque()
        self.taken: list[tuple[int, str, int]] = []
        self.position = 0

    def next_line(self) -> tuple[int, str, int] | None:
        if self._pushed:
            return self._pushed.popleft()
        bline = self._f.readline()
        if not bline:
            return None
        self._number += 1
        self.position += len(bline)
        return self._number, bline.decode("utf-8", "surrogateescape"), self.position

    def push_back(self, lines: list[tuple[int, str, int]]) -> None:
        self._pushed.extendleft(reversed(lines))

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        item = self.next_line()
        if item is None:
            raise StopIteration
        self.taken.append(item)
        return item[1]


def read_csv(path: Path) -> Iterator[SourceRow]:
    """CSV with a header row. Values are strings; empty cells are absent; `attributes` may hold JSON."""
    with path.open("rb") as f:
        lines = _Lines(f)
        header: list[str] | None = None
        while header is None:
            first = lines.next_line()
            if first is None:
                raise InputError(f"{path} is empty: a CSV catalog needs a header row")
            if not first[1].strip():
                continue
            if _SURROGATE.search(first[1]):
                raise InputError(f"{path}: the header row is not valid UTF-8")
            header = [h.strip() for h in next(csv.reader([first[1]]))]
        if "id" not in header:
            raise InputError(f"{path}: the CSV header has no 'id' column (columns: {', '.join(header)})")
        if len(set(header)) != len(header):
            raise InputError(f"{path}: the CSV header repeats a column name")
        reader = csv.reader(lines, strict=True)
        while True:
            lines.taken = []
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield from _broken(lines, f"broken CSV quoting: {e}")
                continue
            taken = lines.taken
            if not taken:
                return
            raw = "".join(t[1] for t in taken).rstrip("\r\n")
            if not fields or (len(fields) == 1 and not fields[0].strip() and len(header) > 1):
                continue  # blank line
            if _SURROGATE.search(raw):
                yield SourceRow(taken[0][0], _visible(raw), None, "invalid UTF-8", taken[-1][2])
                continue
            if len(fields) != len(header):
                if len(taken) > 1:
                    yield from _broken(
                        lines, f"broken CSV quoting: a quoted field runs over {len(taken)} lines "
                        f"({len(fields)} fields, the header has {len(header)})"
                    )
                else:
                    yield SourceRow(taken[0][0], raw, None,
                                    f"wrong number of fields: {len(fields)}, the header has {len(header)}",
                                    taken[-1][2])
                continue
            data = {name: value for name, value in zip(header, fields, strict=True) if value != ""}
            yield SourceRow(taken[0][0], raw, _csv_values(data), None, taken[-1][2])


def _broken(lines: _Lines, reason: str) -> Iterator[SourceRow]:
    """Reject the first line of a broken record and re-parse the lines it swallowed."""
    taken = lines.taken
    if not taken:
        return
    first = taken[0]
    lines.push_back(taken[1:])
    yield SourceRow(first[0], _visible(first[1].rstrip("\r\n")), None, reason, first[2])


def _visible(text: str) -> str:
    """Undecodable bytes as \\xNN escapes, so the rejects file stays valid UTF-8."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _csv_values(data: dict[str, Any]) -> dict[str, Any]:
    attributes = data.get("attributes")
    if isinstance(attributes, str) and attributes.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):  # left as a string: the validator rejects it with a reason
            data["attributes"] = json.loads(attributes)
    return data


def read_parquet(path: Path, batch_rows: int = 2048) -> Iterator[SourceRow]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise InputError(f"{path} is not a readable parquet file: {e}") from e
    number = 0
    for batch in parquet.iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            number += 1
            try:
                data = json.loads(json.dumps(row, default=_jsonable, ensure_ascii=False))
            except UnicodeDecodeError as e:
                yield SourceRow(number, repr(row), None, f"invalid UTF-8 in a binary column: {e}", number)
                continue
            yield SourceRow(number, json.dumps(data, ensure_ascii=False), data, None, number)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def read_catalog_items(path: Path) -> tuple[list[Item], int]:
    """The usable rows of a catalog file (an id and a title, first of each id) and how many were not.

    Training and evaluation read a catalog this way; `dsr ingest` validates each row and writes a
    rejects file instead.
    """
    items: list[Item] = []
    rejected = 0
    seen: set[str] = set()
    for row in read_catalog(path):
        data = row.data
        if data is None or not str(data.get("id") or "").strip() or not data.get("title") or str(data["id"]) in seen:
            rejected += 1
            continue
        data = dict(data)
        data["id"] = str(data["id"])
        seen.add(data["id"])
        items.append(data)
    if not items:
        raise InputError(f"{path}: no usable catalog rows (each needs an id and a title)")
    return items, rejected
