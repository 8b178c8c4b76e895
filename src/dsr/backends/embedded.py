"""The embedded backend: tantivy BM25 plus exact in-process vector search, in a local folder.

It lets dsr run on a bare machine (the demo, benchmarks' BM25 baseline, users trying it out) with
the same `SearchBackend` contract as a cluster. Each index is a folder holding a tantivy index for
the text fields and a SQLite file for the sources and embeddings, so several processes can read it
and a re-run of a write is an upsert.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tantivy

from dsr.backends import filters as filter_lang
from dsr.backends.base import (
    EMBEDDING_FIELD,
    BulkFailure,
    BulkResult,
    Caller,
    Filters,
    Hit,
    IndexInfo,
    IndexSpec,
)
from dsr.backends.documents import DEFAULT_KEEP_ALIVE, Cursor, Document, DocumentPage
from dsr.catalog import TEXT_FIELD_BOOSTS
from dsr.errors import IndexNotFound, UsageError

TANTIVY_NAMES = {"brand": "brand_text", "category": "category_text"}  # the rest keep the catalog's name
TANTIVY_FIELDS = {TANTIVY_NAMES.get(name, name): name for name in TEXT_FIELD_BOOSTS}  # tantivy -> catalog
TANTIVY_BOOSTS = {tantivy_name: TEXT_FIELD_BOOSTS[name] for tantivy_name, name in TANTIVY_FIELDS.items()}
_QUERY_UNSAFE = re.compile(r"[^0-9A-Za-z\u00C0-\uFFFF]+")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    for name in TANTIVY_FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name="default")
    return builder.build()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value)
    return str(value)


class _IndexFiles:
    """One embedded index: its tantivy index, its SQLite store and a cached embedding matrix."""

    def __init__(self, folder: Path, *, create: bool) -> None:
        self.folder = folder
        text_dir = folder / "text"
        if create:
            text_dir.mkdir(parents=True, exist_ok=True)
        self.text = tantivy.Index(_schema(), path=str(text_dir))
        self.db = sqlite3.connect(folder / "docs.sqlite", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, source TEXT NOT NULL, embedding BLOB)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.lock = threading.RLock()
        self._matrix_generation = -1
        self._matrix: np.ndarray | None = None
        self._matrix_ids: list[str] = []

    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def bump_generation(self) -> None:
        self.db.execute("INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
                        "DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def spec(self) -> dict[str, Any]:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
        return json.loads(row[0]) if row else {}

    def matrix(self) -> tuple[np.ndarray, list[str]]:
        with self.lock:
            gen = self.generation()
            if gen != self._matrix_generation or self._matrix is None:
                ids, rows = [], []
                for doc_id, blob in self.db.execute("SELECT id, embedding FROM docs WHERE embedding IS NOT NULL"):
                    ids.append(doc_id)
                    rows.append(np.frombuffer(blob, dtype=np.float32))
                dims = int(self.spec().get("dims") or (len(rows[0]) if rows else 0))
                self._matrix = np.vstack(rows) if rows else np.zeros((0, dims), dtype=np.float32)
                self._matrix_ids = ids
                self._matrix_generation = gen
            return self._matrix, self._matrix_ids


class EmbeddedBackend:
    """A `SearchBackend` stored under `root` (one sub-folder per index)."""

    flavor = "embedded"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.url = f"embedded://{self.root}"
        self._open: dict[str, _IndexFiles] = {}
        self._lock = threading.Lock()

    def _files(self, index: str, *, create: bool = False) -> _IndexFiles:
        with self._lock:
            if index not in self._open:
                folder = self.root / index
                if not (folder / "docs.sqlite").exists() and not create:
                    # the error object Elasticsearch answers with, so a server answers alike for every backend
                    reason = f"no such index [{index}]"
                    cause = {"type": "index_not_found_exception", "reason": reason, "index": index,
                             "resource.type": "index_or_alias", "resource.id": index}
                    raise IndexNotFound(f"{self.url}: no index named {index!r}", status=404,
                                        error={"root_cause": [cause], **cause})
                folder.mkdir(parents=True, exist_ok=True)
                self._open[index] = _IndexFiles(folder, create=True)
            return self._open[index]

    def ensure_index(self, spec: IndexSpec) -> bool:
        existed = self.index_exists(spec.name)
        files = self._files(spec.name, create=True)
        if not existed:
            files.db.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)", (json.dumps(
                {"dims": spec.dims, "similarity": spec.similarity, "embedding_field": spec.embedding_field}),))
        return not existed

    def index_exists(self, index: str) -> bool:
        return (self.root / index / "docs.sqlite").exists()

    def delete_index(self, index: str) -> None:
        import shutil

        with self._lock:
            files = self._open.pop(index, None)
        if files is not None:
            files.db.close()
        shutil.rmtree(self.root / index, ignore_errors=True)

    def _embedding_field(self, files: _IndexFiles) -> str:
        return str(files.spec().get("embedding_field") or EMBEDDING_FIELD)

    def bulk_upsert(self, index: str, docs: Iterable[Mapping[str, Any]]) -> BulkResult:
        files = self._files(index)
        field = self._embedding_field(files)
        dims = files.spec().get("dims")
        result = BulkResult()
        rows: list[tuple[str, str, bytes | None]] = []
        text_docs: list[tantivy.Document] = []
        for doc in docs:
            doc_id = str(doc.get("id", "")).strip()
            if not doc_id:
                result.failed.append(BulkFailure("", 400, "document has no id"))
                continue
            source = {k: v for k, v in doc.items() if k != field}
            blob = None
            if doc.get(field) is not None:
                vec = np.asarray(doc[field], dtype=np.float32).reshape(-1)
                if dims and vec.shape[0] != dims:
                    reason = f"embedding has {vec.shape[0]} dims, index has {dims}"
                    result.failed.append(BulkFailure(doc_id, 400, reason))
                    continue
                blob = vec.tobytes()
            try:
                encoded = json.dumps(source, ensure_ascii=False, default=_json_default)
            except (TypeError, ValueError) as e:
                result.failed.append(BulkFailure(doc_id, 400, f"source is not JSON-serialisable: {e}"))
                continue
            rows.append((doc_id, encoded, blob))
            text_docs.append(tantivy.Document(
                id=doc_id, **{tantivy_name: _text(doc.get(name)) for tantivy_name, name in TANTIVY_FIELDS.items()}))
            result.succeeded.append(doc_id)
        if rows:
            with files.lock:
                writer = files.text.writer(heap_size=64_000_000, num_threads=1)
                for doc_id, _, _ in rows:
                    writer.delete_documents_by_term("id", doc_id)
                for td in text_docs:
                    writer.add_document(td)
                writer.commit()
                writer.wait_merging_threads()
                files.db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", rows)
                files.bump_generation()
        return result

    def delete(self, index: str, ids: Sequence[str]) -> BulkResult:
        files = self._files(index)
        with files.lock:
            writer = files.text.writer(heap_size=16_000_000, num_threads=1)
            for doc_id in ids:
                writer.delete_documents_by_term("id", str(doc_id))
            writer.commit()
            writer.wait_merging_threads()
            files.db.executemany("DELETE FROM docs WHERE id = ?", [(str(i),) for i in ids])
            files.bump_generation()
        return BulkResult(succeeded=[str(i) for i in ids])

    def index_info(self, index: str, embedding_field: str | None = None) -> IndexInfo | None:
        """Every embedded index is dsr's: only dsr creates them (the folder holds dsr's own files)."""
        if not self.index_exists(index):
            return None
        files = self._files(index)
        field = embedding_field or self._embedding_field(files)
        dims = files.spec().get("dims") if field == self._embedding_field(files) else None
        return IndexInfo(name=index, created_by_dsr=True, recognised_as_dsr=False, field_types={},
                         vector_field=field, vector_type="vector" if dims else None,
                         vector_dims=int(dims) if dims else None)

    def add_vector_mapping(self, index: str, spec: IndexSpec) -> None:
        files = self._files(index)
        stored = {**files.spec(), "dims": spec.dims, "similarity": spec.similarity,
                  "embedding_field": spec.embedding_field}
        files.db.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)", (json.dumps(stored),))

    def bulk_partial_update(self, index: str, docs: Iterable[Mapping[str, Any]]) -> BulkResult:
        files = self._files(index)
        field = self._embedding_field(files)
        wanted = {str(doc.get("id", "")): doc for doc in docs}
        stored = self.mget(index, list(wanted))
        vectors = self.embeddings(index, list(stored))
        merged, missing = [], []
        for doc_id, doc in wanted.items():
            if doc_id not in stored:
                missing.append(BulkFailure(doc_id, 404, f"document_missing_exception: [{doc_id}]: document missing"))
                continue
            vector = doc.get(field, vectors.get(doc_id))
            merged.append({**stored[doc_id], **doc, "id": doc_id, **({field: vector} if vector is not None else {})})
        result = self.bulk_upsert(index, merged) if merged else BulkResult()
        result.failed.extend(missing)
        return result

    def existing_ids(self, index: str, ids: Sequence[str]) -> set[str]:
        return set(self.mget(index, ids))

    def term_search(self, index: str, text: str, *, size: int = 10, filters: Filters | None = None,
                    query: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> list[Hit]:
        if query is not None or extra:
            raise UsageError("the embedded backend does not run query DSL; pass plain text (and filters)")
        filter_lang.validate(filters)
        files = self._files(index)
        cleaned = _QUERY_UNSAFE.sub(" ", text).strip()
        if not cleaned or size <= 0:
            return []
        files.text.reload()
        searcher = files.text.searcher()
        parsed = files.text.parse_query(cleaned.lower(), list(TANTIVY_BOOSTS), field_boosts=TANTIVY_BOOSTS)
        fetch = size if not filters else size * 4
        while True:
            result = searcher.search(parsed, limit=fetch)
            scored = [(float(score), searcher.doc(addr)["id"][0]) for score, addr in result.hits]
            sources = self.mget(index, [doc_id for _, doc_id in scored])
            hits = [Hit(doc_id, score, sources[doc_id]) for score, doc_id in scored
                    if doc_id in sources and filter_lang.matches(sources[doc_id], filters)]
            if len(hits) >= size or len(scored) < fetch:
                return hits[:size]
            fetch *= 4

    def knn_search(self, index: str, vector: np.ndarray, *, k: int = 10, num_candidates: int | None = None,
                   filters: Filters | None = None) -> list[Hit]:
        filter_lang.validate(filters)
        matrix, ids = self._files(index).matrix()
        if not ids or k <= 0:
            return []
        scores = matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)
        order = np.argsort(-scores)
        hits: list[Hit] = []
        batch = k if not filters else k * 4
        start = 0
        while len(hits) < k and start < len(order):
            chunk = [ids[i] for i in order[start:start + batch]]
            sources = self.mget(index, chunk)
            for i in order[start:start + batch]:
                src = sources.get(ids[i])
                if src is not None and filter_lang.matches(src, filters):
                    hits.append(Hit(ids[i], float(scores[i]), src))
            start += batch
            batch *= 4
        return hits[:k]

    def knn_similarities(self, index: str, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return {doc_id: float(emb @ query) for doc_id, emb in self.embeddings(index, ids).items()}

    def raw_search(self, index: str, body: Mapping[str, Any],
                   params: Mapping[str, str | bool] | None = None) -> dict[str, Any]:
        raise UsageError("the embedded backend does not run query DSL: a shop's own search requests need a cluster")

    def matching(self, index: str, ids: Sequence[str], query: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        raise UsageError("the embedded backend does not run query DSL: a shop's own filters need a cluster")

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        files = self._files(index)
        out: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for doc_id, source in files.db.execute(f"SELECT id, source FROM docs WHERE id IN ({marks})", chunk):
                out[doc_id] = json.loads(source)
        return out

    def count(self, index: str) -> int:
        return int(self._files(index).db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def refresh(self, index: str) -> None:
        self._files(index).text.reload()

    def iter_ids(self, index: str) -> Iterator[str]:
        for (doc_id,) in self._files(index).db.execute("SELECT id FROM docs ORDER BY id"):
            yield doc_id

    def iter_documents(self, index: str, *, batch: int = 500, after: Cursor | None = None,
                       keep_alive: str = DEFAULT_KEEP_ALIVE) -> Iterator[DocumentPage]:
        """Every document by id order; the cursor is the last id, valid for ever (`keep_alive` is unused)."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        files = self._files(index)
        last = str(after.after[0]) if after is not None and after.after else None
        while True:
            query, args = ("SELECT id, source FROM docs ORDER BY id LIMIT ?", [batch]) if last is None else (
                "SELECT id, source FROM docs WHERE id > ? ORDER BY id LIMIT ?", [last, batch])
            rows = files.db.execute(query, args).fetchall()
            if not rows:
                return
            last = str(rows[-1][0])
            yield DocumentPage([Document(str(i), json.loads(src)) for i, src in rows], Cursor(after=[last]))
            if len(rows) < batch:
                return

    def embeddings(self, index: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings by id (the embedded backend keeps them out of the sources)."""
        files = self._files(index)
        out: dict[str, np.ndarray] = {}
        for doc_id in ids:
            row = files.db.execute("SELECT embedding FROM docs WHERE id = ?", (str(doc_id),)).fetchone()
            if row and row[0] is not None:
                out[str(doc_id)] = np.frombuffer(row[0], dtype=np.float32)
        return out

    def hides_from_callers(self) -> bool:
        return False

    def for_caller(self, caller: Caller) -> EmbeddedBackend:
        """Itself: the embedded index has no security of its own, so every caller reads all of it."""
        return self

    def close(self) -> None:
        with self._lock:
            for files in self._open.values():
                files.db.close()
            self._open.clear()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
