"""The workbench's columns: a named pipeline, or a configuration edited in the page, as one hybrid search.

A column is the `ext.dsr` object of a search (`k`, `term_k`, `fusion`, `rrf_k`, `normalization`,
`weights`, `rerank`, `rerank_top`), started from one of `PIPELINES` (the names `dsr eval` gives the
same pipelines) and changed key by key. It is checked by `dsr.server.dsr_request.parse_dsr_request`,
the very parser of `ext.dsr` searches, so a column can ask for nothing an `ext.dsr` search could not,
within the same `dsr serve` limits, and refusals read the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dsr.errors import UsageError
from dsr.search.request import SearchRequest
from dsr.server.dsr_request import Limits, parse_dsr_request
from dsr.server.errors import RequestError

MAX_COLUMNS = 3
DEPTH = 100  # places of each column's ranking that are scored (recall@100) and compared
CUSTOM = "custom"

PIPELINES: Mapping[str, Mapping[str, Any]] = {
    "bm25": {"k": 0, "rerank": False},
    "knn": {"term_k": 0, "rerank": False},
    "hybrid-rrf": {"fusion": "rrf", "rerank": False},
    "hybrid-linear": {"fusion": "linear", "rerank": False},
    "hybrid+rerank": {"fusion": "rrf", "rerank": True},
}
"""Each pipeline as the `ext.dsr` keys it sets; what it leaves out takes the `ext.dsr` defaults."""

COLUMN_KEYS = ("k", "term_k", "fusion", "rrf_k", "normalization", "weights", "rerank", "rerank_top")
"""The `ext.dsr` keys a column may set (the query text, user and filters are the page's, for every column)."""


@dataclass(frozen=True)
class Column:
    """One column: its name in the page, the pipeline it started from, and its `ext.dsr` keys."""

    name: str
    pipeline: str
    ext: Mapping[str, Any]

    def request(self, text: str, *, user: Mapping[str, Any] | None, filters: Mapping[str, Any] | None,
                limits: Limits, depth: int = DEPTH) -> SearchRequest:
        """The search of this column for `text`: its first `depth` places (fewer if its pool is smaller)."""
        ext: dict[str, Any] = {**self.ext, "text": text}
        if user:
            ext["user"] = dict(user)
        if filters:
            ext["filters"] = dict(filters)
        try:
            search = parse_dsr_request({"size": 1, "ext": {"dsr": ext}}, {}, limits).search
        except RequestError as e:
            raise UsageError(f"column [{self.name}]: {e.reason}") from None
        pool = (search.knn_k or 0) + (search.term_k or 0)
        return replace(search, size=max(1, min(depth, limits.max_size, pool)))

    def config(self, limits: Limits) -> dict[str, Any]:
        """Every `ext.dsr` key of this column, the defaults filled in (what the page shows and edits)."""
        req = self.request("config", user=None, filters=None, limits=limits)
        assert req.fusion is not None
        return {"name": self.name, "pipeline": self.pipeline, "k": req.knn_k, "term_k": req.term_k,
                "fusion": req.fusion.mode.value, "rrf_k": req.fusion.rrf_k,
                "normalization": req.fusion.normalization.value,
                "weights": {"term": req.fusion.weight("term"), "vector": req.fusion.weight("vector")},
                "rerank": req.rerank, "rerank_top": req.rerank_top}


def parse_column(raw: Any, limits: Limits, position: int = 0) -> Column:
    """A column from the page's JSON: `{"pipeline": "bm25"}`, or a pipeline and keys changed, or keys alone."""
    if isinstance(raw, str):
        raw = {"pipeline": raw}
    if not isinstance(raw, Mapping):
        raise UsageError(f"[columns[{position}]] must be an object or a pipeline name")
    unknown = set(raw) - {"name", "pipeline", *COLUMN_KEYS}
    if unknown:
        raise UsageError(f"[columns[{position}]] unknown key(s) {sorted(unknown)}; known: "
                         f"name, pipeline, {', '.join(COLUMN_KEYS)}")
    pipeline = raw.get("pipeline") or CUSTOM
    if pipeline != CUSTOM and pipeline not in PIPELINES:
        raise UsageError(f"[columns[{position}].pipeline] must be one of {[*PIPELINES, CUSTOM]}, got {pipeline!r}")
    ext = {**PIPELINES.get(pipeline, {}), **{k: raw[k] for k in COLUMN_KEYS if k in raw and raw[k] is not None}}
    name = raw.get("name") or pipeline
    if not isinstance(name, str) or len(name) > 100:
        raise UsageError(f"[columns[{position}].name] must be a string of at most 100 characters")
    column = Column(name, pipeline, ext)
    column.request("check", user=None, filters=None, limits=limits)  # refused now, not at the first search
    return column


def parse_columns(raw: Any, limits: Limits) -> list[Column]:
    """One to `MAX_COLUMNS` columns, their names made unique (`bm25`, `bm25 (2)`) so the page can tell them apart."""
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise UsageError(f"[columns] must be a list of 1 to {MAX_COLUMNS} columns")
    if len(raw) > MAX_COLUMNS:
        raise UsageError(f"[columns] holds {len(raw)} columns; at most {MAX_COLUMNS}")
    columns = [parse_column(c, limits, n) for n, c in enumerate(raw)]
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        seen[c.name] = seen.get(c.name, 0) + 1
        out.append(c if seen[c.name] == 1 else Column(f"{c.name} ({seen[c.name]})", c.pipeline, c.ext))
    return out
