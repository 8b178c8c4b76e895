"""What Elasticsearch and OpenSearch share: the query DSL, bulk writes, mget, scans.

The two engines differ only in their client library, their exception classes, the vector field
mapping and the kNN clause; those are the hooks a subclass fills in. Nothing here imports either
client, so the dialect differences stay in `elasticsearch.py` and `opensearch.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from dsr.backends import filters as filter_lang
from dsr.backends.base import BulkFailure, BulkResult, Filters, Hit, IndexSpec
from dsr.errors import EngineError

TEXT_FIELDS = ("title^3", "brand.text^2", "category.text^1.5", "description")
BULK_CHUNK = 500


def catalog_properties(spec: IndexSpec, vector_mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """Mappings for the catalog fields; unknown fields are still indexed dynamically."""
    text = {"type": "text", "analyzer": "standard"}
    keyword_with_text = {"type": "keyword", "ignore_above": 512, "fields": {"text": text}}
    props: dict[str, Any] = {
        "id": {"type": "keyword"},
        "title": {**text, "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
        "description": text,
        "brand": keyword_with_text,
        "category": keyword_with_text,
        "price": {"type": "double"},
        "attributes": {"type": "object", "dynamic": True},
    }
    if vector_mapping is not None:
        props[spec.embedding_field] = dict(vector_mapping)
    return props


def term_query(text: str, filters: Filters | None, query: Mapping[str, Any] | None) -> dict[str, Any]:
    must = dict(query) if query is not None else {
        "multi_match": {"query": text, "fields": list(TEXT_FIELDS), "type": "best_fields", "tie_breaker": 0.3}
    }
    clauses = filter_lang.to_query_clauses(filters)
    if not clauses:
        return must
    return {"bool": {"must": [must], "filter": clauses}}


class ClusterBackend(ABC):
    """A `SearchBackend` over a real cluster; subclasses supply the client and the dialect."""

    flavor: str
    url: str
    embedding_field_default = "embedding"

    def __init__(self, client: Any, url: str, helpers: Any) -> None:
        self.client = client
        self.url = url
        self._helpers = helpers
        self._embedding_fields: dict[str, str] = {}
        self._stored_without_vector: dict[str, bool] = {}  # index -> its mapping keeps the vector out of _source

    # -- dialect hooks ---------------------------------------------------------------------
    @abstractmethod
    def _vector_mapping(self, spec: IndexSpec) -> dict[str, Any]: ...

    @abstractmethod
    def _index_settings(self, spec: IndexSpec) -> dict[str, Any]: ...

    @abstractmethod
    def _knn_body(self, field: str, vector: list[float], k: int, num_candidates: int,
                  clauses: list[dict[str, Any]]) -> dict[str, Any]: ...

    @abstractmethod
    def _similarity(self, score: float) -> float:
        """The engine's kNN score turned back into the dot product of the two unit vectors."""

    @abstractmethod
    @contextmanager
    def _translated_errors(self, what: str) -> Iterator[None]:
        """Turn the client's exceptions into dsr's own (EngineUnavailable, EngineAuthError, ...)."""
        yield

    # -- SearchBackend ---------------------------------------------------------------------
    def ensure_index(self, spec: IndexSpec) -> bool:
        self._embedding_fields[spec.name] = spec.embedding_field
        if self.index_exists(spec.name):
            return False
        mappings: dict[str, Any] = {"dynamic": True, "properties": catalog_properties(
            spec, self._vector_mapping(spec) if spec.dims else None)}
        if spec.dims:
            # The vector is indexed for kNN but kept out of the stored _source, as both engines' kNN
            # tuning guides advise: every hit and mget would otherwise load and re-filter it (about
            # 20% of a 100-hit fetch at dim 64, far more at 384), and dsr never reads it back.
            mappings["_source"] = {"excludes": [spec.embedding_field]}
        self._stored_without_vector.pop(spec.name, None)
        body = {"settings": self._index_settings(spec), "mappings": mappings}
        with self._translated_errors(f"create index {spec.name}"):
            try:
                self.client.indices.create(index=spec.name, body=body)
            except Exception as e:  # a concurrent create is fine
                if "resource_already_exists_exception" in str(e):
                    return False
                raise
        return True

    def index_exists(self, index: str) -> bool:
        with self._translated_errors(f"check index {index}"):
            return bool(self.client.indices.exists(index=index))

    def delete_index(self, index: str) -> None:
        with self._translated_errors(f"delete index {index}"):
            if self.client.indices.exists(index=index):
                self.client.indices.delete(index=index)

    def _bulk(self, index: str, actions: Iterable[dict[str, Any]]) -> BulkResult:
        result = BulkResult()
        with self._translated_errors(f"bulk write to {index}"):
            for ok, item in self._helpers.streaming_bulk(
                self.client, actions, chunk_size=BULK_CHUNK, max_chunk_bytes=20 * 1024 * 1024,
                raise_on_error=False, raise_on_exception=False, max_retries=5,
                initial_backoff=0.5, max_backoff=10,
            ):
                op, info = next(iter(item.items()))
                doc_id = str(info.get("_id"))
                status = int(info.get("status", 0) or 0)
                if ok or (op == "delete" and status == 404):
                    result.succeeded.append(doc_id)
                else:
                    error = info.get("error", info.get("exception", "unknown error"))
                    if isinstance(error, Mapping):
                        error = f"{error.get('type')}: {error.get('reason')}"
                    result.failed.append(BulkFailure(doc_id, status, str(error)))
        return result

    def bulk_upsert(self, index: str, docs: Iterable[Mapping[str, Any]]) -> BulkResult:
        def actions() -> Iterator[dict[str, Any]]:
            for doc in docs:
                source = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in doc.items()}
                yield {"_op_type": "index", "_index": index, "_id": str(doc["id"]), "_source": source}

        return self._bulk(index, actions())

    def delete(self, index: str, ids: Sequence[str]) -> BulkResult:
        return self._bulk(index, ({"_op_type": "delete", "_index": index, "_id": str(i)} for i in ids))

    def _hits(self, response: Mapping[str, Any], convert: Callable[[float], float] | None = None) -> list[Hit]:
        out = []
        for h in response["hits"]["hits"]:
            score = float(h.get("_score") or 0.0)
            out.append(Hit(str(h["_id"]), convert(score) if convert else score, h.get("_source") or {}))
        return out

    def _source_excludes(self, index: str) -> list[str]:
        """The fields to strip from returned sources: the vector, unless the index never stores it.

        A query-time `_source` filter makes the engine parse and re-serialise every returned source;
        indexes dsr creates keep the vector out of the stored `_source` already, so for them the
        filter is pure cost (most of a 100-hit fetch's CPU on a small catalog document). Whether an
        index is such an index is read from its mapping once per process; if the mapping cannot be
        read the filter stays, which is always correct.
        """
        field = self._embedding_fields.get(index, self.embedding_field_default)
        known = self._stored_without_vector.get(index)
        if known is None:
            known = self._mapping_excludes(index, field)
            if known is not None:
                self._stored_without_vector[index] = known
        return [] if known else [field]

    def _mapping_excludes(self, index: str, field: str) -> bool | None:
        """Whether every index behind `index` keeps `field` out of `_source`; None when unknown yet."""
        try:
            with self._translated_errors(f"read mapping of {index}"):
                resp = self.client.indices.get_mapping(index=index)
        except EngineError:
            return None
        mappings = [m.get("mappings", {}) for m in dict(resp).values()]
        return bool(mappings) and all(field in (m.get("_source") or {}).get("excludes", ()) for m in mappings)

    def _source_filter(self, index: str) -> dict[str, Any] | bool:
        excludes = self._source_excludes(index)
        return {"excludes": excludes} if excludes else True

    def term_search(self, index: str, text: str, *, size: int = 10, filters: Filters | None = None,
                    query: Mapping[str, Any] | None = None) -> list[Hit]:
        # No total: callers read the hits only, and an exact count (10,000 by default) keeps the
        # engine from skipping non-competitive documents (block-max WAND) on common terms.
        body = {"size": size, "query": term_query(text, filters, query), "_source": self._source_filter(index),
                "track_total_hits": False}
        with self._translated_errors(f"search {index}"):
            return self._hits(self.client.search(index=index, body=body))

    def knn_search(self, index: str, vector: np.ndarray, *, k: int = 10, num_candidates: int | None = None,
                   filters: Filters | None = None) -> list[Hit]:
        field = self._embedding_fields.get(index, self.embedding_field_default)
        vec = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        body = self._knn_body(field, vec, k, max(num_candidates or 0, k * 10),
                              filter_lang.to_query_clauses(filters))
        body["_source"] = self._source_filter(index)
        with self._translated_errors(f"kNN search {index}"):
            return self._hits(self.client.search(index=index, body=body), self._similarity)

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        excludes = self._source_excludes(index)
        with self._translated_errors(f"mget from {index}"):
            resp = self.client.mget(index=index, body={"ids": [str(i) for i in ids]},
                                    **({"_source_excludes": excludes} if excludes else {}))
        return {str(d["_id"]): d.get("_source") or {} for d in resp["docs"] if d.get("found")}

    def count(self, index: str) -> int:
        with self._translated_errors(f"count {index}"):
            return int(self.client.count(index=index)["count"])

    def refresh(self, index: str) -> None:
        with self._translated_errors(f"refresh {index}"):
            self.client.indices.refresh(index=index)

    def iter_ids(self, index: str) -> Iterator[str]:
        with self._translated_errors(f"scan {index}"):
            for hit in self._helpers.scan(self.client, index=index, query={"query": {"match_all": {}}},
                                          _source=False, size=1000):
                yield str(hit["_id"])

    def close(self) -> None:
        self.client.close()


def raise_engine_error(what: str, url: str, exc: Exception) -> EngineError:
    return EngineError(f"{url}: {what} failed: {exc}")
