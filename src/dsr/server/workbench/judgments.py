"""The workbench's judgments: a file loaded at start, overlaid by the grades given in the page.

Two layers, so the file a team shares is never rewritten behind its back: `loaded` is read once from
`dsr serve --judgments FILE` (any format `dsr eval` reads, through `dsr.eval.judgments.read_judgments`)
and `given` holds what was graded in the page, kept in `DATA_DIR/workbench/judgments.tsv` and written
again (atomically) after every change. A grade given in the page wins over the file's for the same
query and item; taking it back lets the file's grade show again. The export is both layers together
as `query<TAB>item_id<TAB>grade` with a header: the file `dsr eval --judgments` and
`dsr train ranker --judgments` read, and the format of the store itself.

Queries are kept as typed, trimmed at both ends: `dsr eval` searches the query text of a judgment
exactly as written, so two spellings are two queries here too.
"""

from __future__ import annotations

import csv
import io
import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dsr.errors import UsageError
from dsr.eval.judgments import Rejected, read_judgments

HEADER = ("query", "item_id", "grade")
MAX_GRADE = 100.0  # far above any scale in use (0-3 in the page, 1-3 or 1-4 in the public sets)
MAX_FIELD_CHARS = 4096

LOADED = "file"
GIVEN = "page"
"""Where a grade came from, as the API names it."""


@dataclass(frozen=True)
class Judgment:
    """One grade of one item for one query, and which layer it comes from."""

    query: str
    item_id: str
    grade: float
    origin: str  # LOADED or GIVEN

    def to_json(self) -> dict[str, object]:
        return {"query": self.query, "item_id": self.item_id, "grade": self.grade, "origin": self.origin}


def clean_query(text: str) -> str:
    return text.strip()


def check_judgment(query: object, item_id: object, grade: object) -> tuple[str, str, float | None]:
    """The query, item id and grade of a judgment given through the API; None as grade takes it back.

    Raises `UsageError` naming what is wrong: the store is a tsv file, so neither text may hold a
    tab or a line break, and a grade is a finite number from 0 to `MAX_GRADE`.
    """
    if not isinstance(query, str) or not clean_query(query):
        raise UsageError("[query] must be a non-empty string")
    if not isinstance(item_id, str) or not item_id.strip():
        raise UsageError("[item_id] must be a non-empty string")
    for name, text in (("query", query), ("item_id", item_id)):
        if any(c in text for c in "\t\r\n"):
            raise UsageError(f"[{name}] may not hold tabs or line breaks (judgments are stored as tsv)")
        if len(text) > MAX_FIELD_CHARS:
            raise UsageError(f"[{name}] is longer than {MAX_FIELD_CHARS} characters")
    if grade is None:
        return clean_query(query), item_id.strip(), None
    if isinstance(grade, bool) or not isinstance(grade, int | float) or not math.isfinite(grade):
        raise UsageError(f"[grade] must be a number or null, got {grade!r}")
    if not 0 <= grade <= MAX_GRADE:
        raise UsageError(f"[grade] must be from 0 to {MAX_GRADE:g}, got {grade!r}")
    return clean_query(query), item_id.strip(), float(grade)


def format_grade(grade: float) -> str:
    return str(int(grade)) if float(grade).is_integer() else repr(float(grade))


def judgments_tsv(rows: Iterable[tuple[str, str, float]]) -> str:
    """`rows` as the tsv `dsr eval` reads: a header, then one `query, item_id, grade` per line."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(HEADER)
    for query, item_id, grade in rows:
        writer.writerow([query, item_id, format_grade(grade)])
    return out.getvalue()


def _read(path: Path) -> tuple[dict[tuple[str, str], float], list[Rejected]]:
    rows, rejected = read_judgments(path)
    grades: dict[tuple[str, str], float] = {}
    for row in rows:  # a later line wins, as `dsr eval` reads a file
        grades[(clean_query(row.query), row.item_id)] = row.grade
    return grades, rejected


def _has_rows(path: Path) -> bool:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip()) > 1  # more than the header


class JudgmentStore:
    """The judgments the workbench scores with, and the page's own grades persisted under the data dir.

    Args:
        store: the file the page's grades are kept in (`DATA_DIR/workbench/judgments.tsv`); read at
            start when it exists.
        loaded: the `--judgments` file; None when dsr serve was started without one.
    """

    def __init__(self, store: Path, loaded: Path | None = None) -> None:
        self.store = Path(store)
        self.loaded_from = Path(loaded) if loaded is not None else None
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], float] = {}
        self.rejected: list[Rejected] = []
        if self.loaded_from is not None:
            self._loaded, self.rejected = _read(self.loaded_from)
        self._given: dict[tuple[str, str], float] = {}
        if self.store.is_file() and _has_rows(self.store):
            self._given, _ = _read(self.store)

    # -- reading ---------------------------------------------------------------------------
    def judgments(self, query: str | None = None) -> list[Judgment]:
        """Every judgment in force (of `query` only, when given), by query then item id."""
        with self._lock:
            merged = {**{k: (g, LOADED) for k, g in self._loaded.items()},
                      **{k: (g, GIVEN) for k, g in self._given.items()}}
        wanted = None if query is None else clean_query(query)
        return [Judgment(q, i, g, origin) for (q, i), (g, origin) in sorted(merged.items())
                if wanted is None or q == wanted]

    def grades(self, query: str) -> dict[str, float]:
        """item id -> grade for `query`."""
        return {j.item_id: j.grade for j in self.judgments(query)}

    def all_grades(self) -> dict[str, dict[str, float]]:
        """query -> item id -> grade, every judged query."""
        out: dict[str, dict[str, float]] = {}
        for j in self.judgments():
            out.setdefault(j.query, {})[j.item_id] = j.grade
        return out

    def queries(self) -> list[str]:
        return sorted({j.query for j in self.judgments()})

    def counts(self) -> Mapping[str, int]:
        with self._lock:
            given, loaded = len(self._given), len(self._loaded)
        return {"judgments": len(self.judgments()), "queries": len(self.queries()), "given": given,
                "loaded": loaded, "rejected": len(self.rejected)}

    def export(self) -> str:
        """Every judgment in force as the tsv `dsr eval` and `dsr train ranker` read."""
        return judgments_tsv((j.query, j.item_id, j.grade) for j in self.judgments())

    # -- grading ---------------------------------------------------------------------------
    def set(self, query: str, item_id: str, grade: float | None) -> Judgment | None:
        """Grade `item_id` for `query` in the page (None takes the page's grade back); the store is rewritten.

        Returns the judgment in force afterwards: the page's, the file's, or None.
        """
        self.set_many([(query, item_id, grade)])
        found = [j for j in self.judgments(query) if j.item_id == item_id]
        return found[0] if found else None

    def set_many(self, changes: Iterable[tuple[str, str, float | None]]) -> None:
        with self._lock:
            for query, item_id, grade in changes:
                key = (clean_query(query), item_id)
                if grade is None:
                    self._given.pop(key, None)
                else:
                    self._given[key] = float(grade)
            self._write()

    def _write(self) -> None:
        """The page's grades to the store, whole: a temporary file moved into place, never half written."""
        self.store.parent.mkdir(parents=True, exist_ok=True)
        text = judgments_tsv((q, i, g) for (q, i), g in sorted(self._given.items()))
        tmp = self.store.with_name(f".{self.store.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.store)
