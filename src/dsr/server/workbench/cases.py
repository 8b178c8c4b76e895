"""Cases: named sets of queries, scored together so a change of configuration shows its effect across them.

Kept in `DATA_DIR/workbench/cases.json` (`{"name": ["query", ...]}`), written whole after each change
through a temporary file, so a case survives restarts of `dsr serve` and is never half written.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dsr.errors import UsageError
from dsr.server.workbench.judgments import clean_query

MAX_CASE_QUERIES = 1000
MAX_NAME_CHARS = 100


def check_case(name: Any, queries: Any) -> tuple[str, list[str]]:
    """A case's name and its queries (trimmed, empty ones and repeats dropped), or a `UsageError` saying why not."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise UsageError(f"a case name must be a non-empty string of at most {MAX_NAME_CHARS} characters")
    if not isinstance(queries, Sequence) or isinstance(queries, str) or not all(isinstance(q, str) for q in queries):
        raise UsageError("[queries] must be a list of query strings")
    kept = list(dict.fromkeys(clean_query(q) for q in queries if clean_query(q)))
    if len(kept) > MAX_CASE_QUERIES:
        raise UsageError(f"a case holds at most {MAX_CASE_QUERIES} queries, got {len(kept)}")
    return name.strip(), kept


class CaseStore:
    """The cases, by name, persisted in `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cases: dict[str, list[str]] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise UsageError(f"{self.path}: not a readable cases file ({e})") from None
            if not isinstance(data, dict):
                raise UsageError(f"{self.path}: expected an object of case name -> list of queries")
            for name, queries in data.items():
                clean_name, kept = check_case(name, queries)
                self._cases[clean_name] = kept

    def all(self) -> dict[str, list[str]]:
        with self._lock:
            return {name: list(queries) for name, queries in sorted(self._cases.items())}

    def get(self, name: str) -> list[str] | None:
        with self._lock:
            found = self._cases.get(name)
            return list(found) if found is not None else None

    def put(self, name: str, queries: Any) -> list[str]:
        clean_name, kept = check_case(name, queries)
        with self._lock:
            self._cases[clean_name] = kept
            self._write()
        return kept

    def delete(self, name: str) -> bool:
        with self._lock:
            found = self._cases.pop(name, None) is not None
            if found:
                self._write()
        return found

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._cases, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)
