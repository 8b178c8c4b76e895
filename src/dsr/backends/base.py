"""The `SearchBackend` protocol: the only way the rest of dsr talks to a search engine.

Elasticsearch, OpenSearch and the embedded (tantivy) index each implement it; engine client types
and exceptions never leak past it. Filters use one small language for every backend (see
`dsr.backends.filters`).

Whose rights a request has: a backend made by `connect` acts with dsr's own credentials (from
`ConnectionSettings`), which are for dsr's own jobs: ingest, verify, training and evaluation. A search
made for someone else (a caller of `dsr serve`) goes through `backend.for_caller(caller)`, a view of
the same backend that sends the caller's own credential headers, and nothing of dsr's, with every
request it makes, so the cluster's security (index, document and field level) decides what the
caller gets; a caller without credentials reaches the cluster without any. A view shares the
backend's connections and caches: it costs no client of its own. The embedded index has no security
of its own, so its view is the backend itself. `hides_from_callers` says whether the engine may keep
documents from a caller at all (a cluster that refuses requests without credentials).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dsr.catalog import EMBEDDING_FIELD

Filters = Mapping[str, Any]
"""`{"brand": "acme"}` (term), `{"brand": ["a", "b"]}` (any of), `{"price": {"gte": 1, "lt": 9}}` (range)."""


CALLER_HEADERS = ("authorization", "cookie")
"""The request headers that carry a caller's credentials, as `dsr serve` forwards them to the cluster."""


@dataclass(frozen=True)
class Caller:
    """Who a search is made for: the credential headers of their request, sent to the cluster as they came.

    `headers` holds only `CALLER_HEADERS` (names in lower case); empty when the caller sent none, in
    which case the cluster sees a request without credentials and its security answers it (a 401 on
    a secured cluster, the search itself on one without security).
    """

    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, str]]) -> Caller:
        """The caller of a request with these headers (repeated cookies are joined as HTTP joins them)."""
        kept: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            if key in CALLER_HEADERS:
                kept[key] = f"{kept[key]}; {value}" if key in kept and key == "cookie" else value
        return cls(kept)

    def __repr__(self) -> str:  # never print credentials
        return f"Caller(headers=[{', '.join(sorted(self.headers))}])"


@dataclass(frozen=True)
class Hit:
    """One search result. `score` is the engine's own score for the stage that produced it."""

    id: str
    score: float
    source: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexSpec:
    """What an index must hold: the text/keyword/numeric fields of a catalog and an embedding."""

    name: str
    dims: int | None = None
    similarity: str = "dot_product"  # embeddings are L2-normalised, so dot product == cosine
    embedding_field: str = EMBEDDING_FIELD


DSR_META_KEY = "dsr"
"""The key of dsr's marker in the mapping `_meta` of an index dsr created (`{"created_by": "dsr", ...}`)."""


@dataclass(frozen=True)
class IndexInfo:
    """What dsr reads of an existing index before it writes anything to it.

    An index dsr created carries dsr's marker in its mapping `_meta`; one created by an older dsr has
    no marker but a mapping that is dsr's own (its catalog fields mapped exactly as dsr maps them).
    Any other index is the shop's: dsr adds its vector field to it and never replaces its documents
    unless asked to. `name` is the index writes go to: an alias resolved to its write index.
    """

    name: str
    created_by_dsr: bool
    recognised_as_dsr: bool  # no marker, but the mapping is the one dsr gives the indexes it creates
    field_types: Mapping[str, str]  # top-level field -> its mapped type ("object" for an object)
    vector_field: str
    vector_type: str | None = None  # how `vector_field` is mapped now; None while it is not mapped
    vector_dims: int | None = None  # set when `vector_field` is the engine's kNN vector type
    vector_in_source: bool = False  # whether the documents' stored `_source` would keep the vector
    knn_unavailable: str | None = None  # why no kNN vector field can be added to this index

    @property
    def owned_by_dsr(self) -> bool:
        return self.created_by_dsr or self.recognised_as_dsr


@dataclass(frozen=True)
class BulkFailure:
    id: str
    status: int
    reason: str


@dataclass
class BulkResult:
    """Outcome of a bulk write: what succeeded and, per document, what failed and why.

    `retries`: the bulk requests that re-sent documents the cluster had refused for the moment
    (429), made by the backend's one retry layer (0 for the embedded backend, which has none).
    """

    succeeded: list[str] = field(default_factory=list)
    failed: list[BulkFailure] = field(default_factory=list)
    retries: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


@runtime_checkable
class SearchBackend(Protocol):
    flavor: str  # "elasticsearch", "opensearch" or "embedded"
    url: str

    def ensure_index(self, spec: IndexSpec) -> bool:
        """Create the index if missing; True when it was created."""
        ...

    def delete_index(self, index: str) -> None: ...

    def index_exists(self, index: str) -> bool: ...

    def bulk_upsert(self, index: str, docs: Iterable[Mapping[str, Any]]) -> BulkResult:
        """Index (create or replace) each document by its `id` field."""
        ...

    def delete(self, index: str, ids: Sequence[str]) -> BulkResult: ...

    def index_info(self, index: str, embedding_field: str | None = None) -> IndexInfo | None:
        """Whose index `index` is and how it maps `embedding_field` (default: dsr's); None when there is none.

        An alias is resolved to its write index; one with several indexes and no write index is a
        `UsageError` (a write could not go anywhere).
        """
        ...

    def add_vector_mapping(self, index: str, spec: IndexSpec) -> None:
        """Map `spec.embedding_field` for the engine's kNN on an existing index (a mapping update)."""
        ...

    def bulk_partial_update(self, index: str, docs: Iterable[Mapping[str, Any]]) -> BulkResult:
        """Add the fields of each document (by its `id`) to the stored one, keeping every other field.

        A document that is not in the index is not created: it fails with status 404.
        """
        ...

    def existing_ids(self, index: str, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` that the index holds (read without their sources)."""
        ...

    def term_search(
        self,
        index: str,
        text: str,
        *,
        size: int = 10,
        filters: Filters | None = None,
        query: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """BM25 over the catalog's text fields; `query` replaces the default query (engine DSL).

        `extra` are search body keys beside the query (`runtime_mappings`, `timeout`, `_source`: False
        for hits without their sources; engine DSL too).
        """
        ...

    def knn_search(
        self,
        index: str,
        vector: np.ndarray,
        *,
        k: int = 10,
        num_candidates: int | None = None,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """The engine's own nearest-neighbour search on the embedding field."""
        ...

    def knn_similarities(self, index: str, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        """The dot product of `vector` and the embedding of each of `ids`, as `knn_search` scores it.

        What the ranker needs of the term side's hits when the engine's kNN is the vector side; ids
        without an embedding (or not in the index) are absent.
        """
        ...

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Sources of the ids that exist (missing ids are absent from the result)."""
        ...

    def raw_search(self, index: str, body: Mapping[str, Any],
                   params: Mapping[str, str | bool] | None = None) -> dict[str, Any]:
        """The cluster's own answer to a search body in its query DSL, unchanged.

        For the shop's own search requests, whose aggregations, highlights, sorts, collapse and
        pages the cluster computes; `params` are URL parameters of the search API (`typed_keys`,
        `rest_total_hits_as_int`, ...). The embedded index has no query DSL and refuses it.
        """
        ...

    def matching(self, index: str, ids: Sequence[str], query: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """The sources of those of `ids` that match `query` (engine DSL, in filter context).

        How vector neighbours are held to a shop's own filters: the cluster decides whether its
        filter matches a document, so any filter it understands works. `extra` are body keys the
        query may need (`runtime_mappings`), or `_source`: False when only the ids are needed.
        """
        ...

    def count(self, index: str) -> int: ...

    def refresh(self, index: str) -> None: ...

    def iter_ids(self, index: str) -> Iterator[str]:
        """Every document id in the index (for drift checks)."""
        ...

    def hides_from_callers(self) -> bool:
        """Whether the engine may keep documents from a caller (a cluster with security; not the embedded index).

        On one that may, a document a caller's search does not get back may exist and be hidden from
        them; the searcher then says nothing of it and ranks only what the cluster returned.
        """
        ...

    def for_caller(self, caller: Caller) -> SearchBackend:
        """This backend acting with `caller`'s credentials instead of dsr's own, for one search.

        Every request of the view carries the caller's headers and none of dsr's credentials; it shares
        this backend's connections, so it is cheap to make per request. Closing it closes nothing.
        """
        ...

    def close(self) -> None: ...
