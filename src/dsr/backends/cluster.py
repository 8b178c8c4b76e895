"""What Elasticsearch and OpenSearch share: the query DSL, bulk writes, mget, scans.

The two engines differ only in their client library, their exception classes, the vector field
mapping and the kNN clause; those are the hooks a subclass fills in. Nothing here imports either
client, so the dialect differences stay in `elasticsearch.py` and `opensearch.py`.

Retries: a single request (a search, an mget, a scroll page) is retried by the engine client itself,
`REQUEST_RETRIES` times, on connection failures, timeouts and gateway errors (`RETRY_ON_STATUS`). A
429 is not retried there: the client would re-send at once, adding to the load that made the cluster
refuse; it is raised (`EngineOverloaded`, with the cluster's status and error) for the caller to back
off, as `dsr serve` tells its own callers to with a 429. Bulk writes have one retry layer only,
`streaming_bulk`'s: the documents the cluster refused with 429 (too many requests) are sent again
after an exponential backoff. They go through a `bulk_client` without the client's own retries, so
the layers never multiply; a connection failure mid-bulk is raised (as `EngineUnavailable`) for the
caller to handle, which for ingest means stopping before the checkpoint moves, so a re-run redoes
the batch.

Callers' credentials: besides dsr's own client, a backend holds a `caller_client` on the same URL and
TLS settings with no credentials at all, made once at connect. `for_caller` returns a view whose
requests go through it with the caller's headers added per request, by each client's own per-request
option (`_with_headers`): so a caller's search carries the caller's `Authorization` / `Cookie` and
never dsr's, and no client is built per search. The view shares the backend's caches of what it
learnt about an index (its embedding field, whether its mapping keeps the vector out of `_source`);
those say nothing about any document.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from dsr.backends import filters as filter_lang
from dsr.backends.aliases import ResolvedTarget, resolved_target
from dsr.backends.base import DSR_META_KEY, BulkFailure, BulkResult, Caller, Filters, Hit, IndexInfo, IndexSpec
from dsr.backends.documents import DEFAULT_KEEP_ALIVE, PIT_DIALECTS, Cursor, DocumentPage, read_cluster_pages
from dsr.catalog import TEXT_FIELD_BOOSTS
from dsr.errors import (
    EngineAuthError,
    EngineError,
    EngineOverloaded,
    EngineRequestError,
    EngineUnavailable,
    IndexNotFound,
    UsageError,
)

KEYWORD_TEXT_FIELDS = ("brand", "category")  # keyword fields, searched through their `.text` sub-field
REQUEST_TIMEOUT_S = 30
REQUEST_RETRIES = 3  # the client's own retries of one request; bulk writes use a client without them
RETRY_ON_STATUS = (502, 503, 504)  # statuses the client retries (opensearch-py's default; not 429)
BULK_CHUNK = 500
UPDATE_RETRY_ON_CONFLICT = 3  # a partial update re-read and re-applied when the shop's own write raced it
KNN_SIMILARITY_CHUNK = 1000  # ids per similarity query (within both engines' k limits)
BULK_MAX_CHUNK_BYTES = 20 * 1024 * 1024
BULK_RETRIES = 5  # streaming_bulk's re-sends of documents refused with 429
BULK_INITIAL_BACKOFF_S = 0.5
BULK_MAX_BACKOFF_S = 10


REJECTION_TYPES = ("es_rejected_execution_exception", "rejected_execution_exception")
TRANSIENT_RETRY_AFTER_S = 1  # what a 429 answers as Retry-After when the cluster says only that it is transient


def error_object(body: Any) -> dict[str, Any] | None:
    """The `error` object of a cluster's error answer (`{"error": {...}, "status": N}`), if it has one."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        return dict(error)
    if isinstance(error, str):  # a few answers (a 404 of some APIs, old versions) carry only a string
        return {"type": error, "reason": str(body.get("reason") or error)}
    return None


def cluster_error(url: str, what: str, status: int, body: Any,
                  headers: Mapping[str, str] | None = None) -> EngineError:
    """The dsr error for the cluster's error answer: its status and `error` object kept on it.

    A 429 is `EngineOverloaded`, 404 `IndexNotFound`, any other 4xx `EngineRequestError` (the caller's
    request is at fault); 5xx and anything else stay a plain `EngineError`.
    """
    error = error_object(body)
    summary = f"{error.get('type')}: {error.get('reason')}" if error else str(body)[:1000]
    message = f"{url}: {what}: {status} {summary}"
    if status == 429:
        return EngineOverloaded(message, status=status, error=error, retry_after=_retry_after(headers, error))
    if status == 404:
        return IndexNotFound(message, status=status, error=error)
    if 400 <= status < 500:
        return EngineRequestError(message, status=status, error=error)
    return EngineError(message, status=status, error=error)


def _retry_after(headers: Mapping[str, str] | None, error: Mapping[str, Any] | None) -> int | None:
    """The cluster's own Retry-After, else a short one when the refusal is one that passes (a full
    queue, a breaker tripped by memory that other requests hold); none for a request too large ever to fit."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after" and str(value).strip().isdigit():
            return int(str(value).strip())
    causes = [error or {}, *((error or {}).get("root_cause") or [])]
    for cause in causes:
        if not isinstance(cause, Mapping):
            continue
        if cause.get("type") in REJECTION_TYPES or cause.get("durability") == "TRANSIENT":
            return TRANSIENT_RETRY_AFTER_S
    return None


def multi_match_fields(boosts: Mapping[str, float] = TEXT_FIELD_BOOSTS) -> list[str]:
    """The catalog's text fields in `multi_match` form: `title^3`, `brand.text^2`, ..., `description`."""
    out = []
    for name, boost in boosts.items():
        path = f"{name}.text" if name in KEYWORD_TEXT_FIELDS else name
        out.append(path if boost == 1 else f"{path}^{boost:g}")
    return out


MULTI_MATCH_FIELDS = tuple(multi_match_fields())


def catalog_properties(spec: IndexSpec, vector_mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """Mappings for the catalog fields; unknown fields are still indexed dynamically."""
    text = {"type": "text", "analyzer": "standard"}
    keyword_with_text = {"type": "keyword", "ignore_above": 512, "fields": {"text": text}}
    props: dict[str, Any] = {
        "id": {"type": "keyword"},
        "title": {**text, "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
        "description": text,
        **{name: keyword_with_text for name in KEYWORD_TEXT_FIELDS},
        "price": {"type": "double"},
        "attributes": {"type": "object", "dynamic": True},
    }
    if vector_mapping is not None:
        props[spec.embedding_field] = dict(vector_mapping)
    return props


def dsr_marker(spec: IndexSpec) -> dict[str, Any]:
    """The mapping `_meta` entry that says dsr created an index (and with which vector field)."""
    return {DSR_META_KEY: {"created_by": "dsr", "vector_field": spec.embedding_field, "dims": spec.dims}}


def has_dsr_catalog_mapping(properties: Mapping[str, Any]) -> bool:
    """Whether the catalog fields are mapped exactly as dsr maps them in the indexes it creates.

    How an index created by a dsr older than the `_meta` marker is told from a shop's own: the
    keyword-with-text-sub-field mapping of brand and category (and the rest, down to `ignore_above`)
    is dsr's, and a shop's index matching it on every one of these fields would be a copy of dsr's.
    """
    expected = catalog_properties(IndexSpec("any"), None)
    return all(properties.get(name) == expected[name]
               for name in ("id", "title", "description", *KEYWORD_TEXT_FIELDS, "price"))


def term_query(text: str, filters: Filters | None, query: Mapping[str, Any] | None) -> dict[str, Any]:
    must = dict(query) if query is not None else {
        "multi_match": {"query": text, "fields": list(MULTI_MATCH_FIELDS), "type": "best_fields", "tie_breaker": 0.3}
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

    def __init__(self, client: Any, url: str, helpers: Any, *, bulk_client: Any = None,
                 caller_client: Any = None) -> None:
        self.client = client
        self.url = url
        self._helpers = helpers
        self._bulk_client = client if bulk_client is None else bulk_client
        self._caller_client = caller_client  # no credentials of its own; callers' views add theirs
        self._view = False
        self._embedding_fields: dict[str, str] = {}
        self._stored_without_vector: dict[str, bool] = {}  # index -> its mapping keeps the vector out of _source
        self._mapping_refused: set[str] = set()  # indexes whose mapping a caller's view was refused
        self._security: dict[str, bool] = {}  # "hides": whether the cluster refuses requests without credentials

    # -- dialect hooks ---------------------------------------------------------------------
    @abstractmethod
    def _vector_mapping(self, spec: IndexSpec) -> dict[str, Any]: ...

    @abstractmethod
    def _index_settings(self, spec: IndexSpec) -> dict[str, Any]: ...

    @abstractmethod
    def _vector_dims(self, mapping: Mapping[str, Any]) -> int | None:
        """The dimension of a field mapped as this engine's kNN vector type; None for any other mapping."""

    @abstractmethod
    def _knn_unavailable(self, index: str, settings: Mapping[str, Any]) -> str | None:
        """Why a kNN vector field cannot be added to an existing index with these settings; None when it can."""

    @abstractmethod
    def _knn_body(self, field: str, vector: list[float], k: int, num_candidates: int,
                  clauses: list[dict[str, Any]]) -> dict[str, Any]: ...

    @abstractmethod
    def _raw_search(self, index: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        """`POST /{index}/_search` with `body` and URL `params` as given, the answer's JSON."""

    @abstractmethod
    def _similarity(self, score: float) -> float:
        """The engine's kNN score turned back into the dot product of the two unit vectors."""

    @abstractmethod
    def _with_headers(self, client: Any, headers: Mapping[str, str]) -> Any:
        """`client` sending `headers` with every request, sharing its connections (no new client)."""

    @abstractmethod
    @contextmanager
    def _translated_errors(self, what: str) -> Iterator[None]:
        """Turn the client's exceptions into dsr's own (EngineUnavailable, EngineAuthError, ...)."""
        yield

    # -- SearchBackend ---------------------------------------------------------------------
    def hides_from_callers(self) -> bool:
        """Whether the cluster has security: it refuses a request without credentials (401/403).

        Asked once per process with the callers' client (a `GET /` without any credentials, dsr's or
        a caller's) and remembered; while the cluster cannot be reached the answer is yes, and it is
        asked again later. A cluster that answers anonymous requests is taken as one without security.
        """
        known = self._security.get("hides")
        if known is not None:
            return known
        if self._caller_client is None:
            return True
        try:
            with self._translated_errors("check whether the cluster asks for credentials"):
                self._caller_client.info()
            hides = False
        except EngineAuthError:
            hides = True
        except EngineUnavailable:
            return True
        except EngineError:  # an answer, and not a refusal (Elasticsearch's integ-test build has no GET /)
            hides = False
        self._security["hides"] = hides
        return hides

    def for_caller(self, caller: Caller) -> ClusterBackend:
        if self._caller_client is None:
            raise EngineError(f"{self.url}: this backend has no client for callers' credentials")
        view = copy.copy(self)  # the caches (dicts, set) stay shared with this backend
        view.client = self._with_headers(self._caller_client, caller.headers)
        view._bulk_client = view.client
        view._view = True
        return view

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
        mappings["_meta"] = dsr_marker(spec)
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

    def resolve_index(self, target: str) -> ResolvedTarget:
        """The concrete indexes a search on `target` (an index, alias, comma list or pattern) reaches.

        Read with `GET /<target>/_alias`, which both engines resolve as a search does; a name that
        matches nothing is an empty result rather than an error.
        """
        try:
            with self._translated_errors(f"resolve {target}"):
                answer = self.client.indices.get_alias(index=target)
        except IndexNotFound:
            return ResolvedTarget(target, ())
        return resolved_target(target, dict(answer))

    def delete_index(self, index: str) -> None:
        with self._translated_errors(f"delete index {index}"):
            if self.client.indices.exists(index=index):
                self.client.indices.delete(index=index)

    def _write_index(self, index: str) -> str:
        """The concrete index behind `index`: itself, or the write index of the alias it names."""
        if not self.client.indices.exists_alias(name=index):
            return index
        aliased = dict(self.client.indices.get_alias(name=index))
        if len(aliased) == 1:
            return str(next(iter(aliased)))
        writers = [name for name, entry in aliased.items()
                   if ((entry.get("aliases") or {}).get(index) or {}).get("is_write_index")]
        if len(writers) != 1:
            raise UsageError(f"{self.url}: the alias {index!r} points to {len(aliased)} indexes "
                             f"({', '.join(sorted(aliased))}) and none is its write index; name one index")
        return str(writers[0])

    def index_info(self, index: str, embedding_field: str | None = None) -> IndexInfo | None:
        field = embedding_field or self.embedding_field_default
        with self._translated_errors(f"read the mapping of {index}"):
            if not self.client.indices.exists(index=index):
                return None
            name = self._write_index(index)
            mappings = dict(self.client.indices.get_mapping(index=name))[name].get("mappings") or {}
            settings = dict(self.client.indices.get_settings(index=name))[name].get("settings") or {}
        properties = mappings.get("properties") or {}
        marker = (mappings.get("_meta") or {}).get(DSR_META_KEY) or {}
        created = isinstance(marker, Mapping) and marker.get("created_by") == "dsr"
        vector = properties.get(field)
        source = mappings.get("_source") or {}
        stored = str(source.get("enabled", True)).lower() != "false"
        return IndexInfo(
            name=name, created_by_dsr=created, recognised_as_dsr=not created and has_dsr_catalog_mapping(properties),
            field_types={k: str(v.get("type", "object")) for k, v in properties.items() if isinstance(v, Mapping)},
            vector_field=field,
            vector_type=None if vector is None else str(vector.get("type", "object")),
            vector_dims=None if vector is None else self._vector_dims(vector),
            vector_in_source=stored and field not in (source.get("excludes") or ()),
            knn_unavailable=self._knn_unavailable(name, settings))

    def add_vector_mapping(self, index: str, spec: IndexSpec) -> None:
        body = {"properties": {spec.embedding_field: self._vector_mapping(spec)}}
        with self._translated_errors(f"add the vector field {spec.embedding_field} to {index}"):
            self.client.indices.put_mapping(index=index, body=body)
        self._embedding_fields[index] = spec.embedding_field
        self._stored_without_vector.pop(index, None)

    def bulk_partial_update(self, index: str, docs: Iterable[Mapping[str, Any]]) -> BulkResult:
        def actions() -> Iterator[dict[str, Any]]:
            for doc in docs:
                fields = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in doc.items() if k != "id"}
                # no upsert: a document the index lacks fails (404 document_missing_exception), it is not made
                yield {"_op_type": "update", "_index": index, "_id": str(doc["id"]), "doc": fields,
                       "retry_on_conflict": UPDATE_RETRY_ON_CONFLICT}

        return self._bulk(index, actions())

    def existing_ids(self, index: str, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), BULK_CHUNK):
            with self._translated_errors(f"mget from {index}"):
                resp = self.client.mget(index=index, body={"ids": unique[start:start + BULK_CHUNK]}, _source=False)
            found.update(str(d["_id"]) for d in resp["docs"] if d.get("found"))
        return found

    def _bulk(self, index: str, actions: Iterable[dict[str, Any]]) -> BulkResult:
        result = BulkResult()
        counter = _RetryCounter(self._bulk_client)
        with self._translated_errors(f"bulk write to {index}"):
            for ok, item in self._helpers.streaming_bulk(
                counter, counter.watch(actions), chunk_size=BULK_CHUNK, max_chunk_bytes=BULK_MAX_CHUNK_BYTES,
                raise_on_error=False, raise_on_exception=False, max_retries=BULK_RETRIES,
                initial_backoff=BULK_INITIAL_BACKOFF_S, max_backoff=BULK_MAX_BACKOFF_S,
            ):
                op, info = next(iter(item.items()))
                status = info.get("status", 0)
                if not isinstance(status, int) and isinstance(info.get("exception"), Exception):
                    # opensearch-py reports a request that never reached the cluster (status "N/A") per
                    # document; it is a connection failure, not a refusal of these documents
                    raise info["exception"]
                doc_id = str(info.get("_id"))
                status = int(status or 0)
                if ok or (op == "delete" and status == 404):
                    result.succeeded.append(doc_id)
                else:
                    error = info.get("error", info.get("exception", "unknown error"))
                    if isinstance(error, Mapping):
                        error = f"{error.get('type')}: {error.get('reason')}"
                    result.failed.append(BulkFailure(doc_id, status, str(error)))
        result.retries = counter.retries
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
        if self._view and index in self._mapping_refused:
            return None
        try:
            with self._translated_errors(f"read mapping of {index}"):
                resp = self.client.indices.get_mapping(index=index)
        except EngineAuthError:
            # A caller whose rights stop at reading documents (the usual reader role of both engines)
            # may not read mappings: the filter stays for callers' searches (always correct), without
            # asking again on every search, until a read with the rights to it (dsr's own) succeeds.
            if self._view:
                self._mapping_refused.add(index)
            return None
        except EngineError:
            return None
        mappings = [m.get("mappings", {}) for m in dict(resp).values()]
        return bool(mappings) and all(field in (m.get("_source") or {}).get("excludes", ()) for m in mappings)

    def _source_filter(self, index: str) -> dict[str, Any] | bool:
        excludes = self._source_excludes(index)
        return {"excludes": excludes} if excludes else True

    def term_search(self, index: str, text: str, *, size: int = 10, filters: Filters | None = None,
                    query: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> list[Hit]:
        # No total: callers read the hits only, and an exact count (10,000 by default) keeps the
        # engine from skipping non-competitive documents (block-max WAND) on common terms.
        # The query first: the cluster's parse errors name a line and column of the body, and so they are
        # those of a caller's compact body that starts with the same query, as sent to the cluster directly
        body = {"query": term_query(text, filters, query), "size": size, "_source": self._source_filter(index),
                "track_total_hits": False, **dict(extra or {})}
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

    def knn_similarities(self, index: str, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        # A kNN query restricted to the ids, k = their number: a filter that matches at most k documents
        # makes both engines search exactly rather than through the graph, so every id that has a vector
        # comes back with its exact score, converted back to the dot product as knn_search does.
        field = self._embedding_fields.get(index, self.embedding_field_default)
        vec = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        unique = list(dict.fromkeys(str(i) for i in ids))
        out: dict[str, float] = {}
        for start in range(0, len(unique), KNN_SIMILARITY_CHUNK):
            chunk = unique[start:start + KNN_SIMILARITY_CHUNK]
            body = self._knn_body(field, vec, len(chunk), len(chunk), [{"ids": {"values": chunk}}])
            body["_source"] = False
            with self._translated_errors(f"kNN similarity {index}"):
                response = self.client.search(index=index, body=body)
            out.update({h.id: h.score for h in self._hits(response, self._similarity)})
        return out

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        excludes = self._source_excludes(index)
        with self._translated_errors(f"mget from {index}"):
            resp = self.client.mget(index=index, body={"ids": [str(i) for i in ids]},
                                    **({"_source_excludes": excludes} if excludes else {}))
        return {str(d["_id"]): d.get("_source") or {} for d in resp["docs"] if d.get("found")}

    def raw_search(self, index: str, body: Mapping[str, Any],
                   params: Mapping[str, str | bool] | None = None) -> dict[str, Any]:
        with self._translated_errors(f"search {index}"):
            return self._raw_search(index, dict(body), {k: _param(v) for k, v in (params or {}).items()})

    def matching(self, index: str, ids: Sequence[str], query: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        unique = list(dict.fromkeys(str(i) for i in ids))
        if not unique:
            return {}
        body = {"query": {"bool": {"filter": [{"ids": {"values": unique}}, dict(query)]}},
                "size": len(unique), "_source": self._source_filter(index), "track_total_hits": False,
                **dict(extra or {})}
        with self._translated_errors(f"filter neighbours in {index}"):
            response = self.client.search(index=index, body=body)
        return {h.id: dict(h.source) for h in self._hits(response)}

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

    def iter_documents(self, index: str, *, batch: int = 500, after: Cursor | None = None,
                       keep_alive: str = DEFAULT_KEEP_ALIVE) -> Iterator[DocumentPage]:
        """Every document of `index`, page by page, resumable from any page's cursor (`dsr.backends.documents`)."""
        return read_cluster_pages(self, PIT_DIALECTS[self.flavor], index, batch=batch, after=after,
                                  keep_alive=keep_alive)

    def close(self) -> None:
        if self._view:  # the connections are the backend's
            return
        self.client.close()
        if self._caller_client is not None:
            self._caller_client.close()
        if self._bulk_client is not self.client:
            self._bulk_client.close()


class _RetryCounter:
    """The bulk client as `streaming_bulk` sees it, counting the bulk requests that were retries.

    streaming_bulk reads the actions lazily, one chunk at a time: it sends a chunk, and re-sends the
    part the cluster refused with 429 (after its backoff) before it reads any further action. A bulk
    request sent without an action read (or the end of the actions reached) since the previous one
    is therefore a retry. Everything but `bulk` and `options` passes through to the client.
    """

    def __init__(self, client: Any, state: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_state", state if state is not None else {"retries": 0, "fresh": False})

    @property
    def retries(self) -> int:
        return int(self._state["retries"])

    def watch(self, actions: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        state = self._state
        for action in actions:
            state["fresh"] = True
            yield action
        state["fresh"] = True

    def bulk(self, *args: Any, **kwargs: Any) -> Any:
        state = self._state
        if not state["fresh"]:
            state["retries"] += 1
        state["fresh"] = False
        return self._client.bulk(*args, **kwargs)

    def options(self, **kwargs: Any) -> _RetryCounter:  # elasticsearch-py's helpers copy the client first
        return _RetryCounter(self._client.options(**kwargs), self._state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._client, name, value)


def _param(value: str | bool) -> str:
    """A URL parameter as the search API reads it (`true`, not Python's `True`)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
