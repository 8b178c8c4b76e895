"""OpenSearch dialect: `knn_vector` (k-NN plugin, Lucene HNSW) and the `knn` query clause."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import opensearchpy
from opensearchpy import helpers

from dsr.backends.base import IndexSpec
from dsr.backends.client_options import ClientOptions
from dsr.backends.cluster import REQUEST_RETRIES, REQUEST_TIMEOUT_S, ClusterBackend
from dsr.errors import EngineAuthError, EngineError, EngineUnavailable, IndexNotFound
from dsr.settings import ConnectionSettings

SPACE_TYPES = {"dot_product": "innerproduct", "cosine": "cosinesimil", "l2_norm": "l2"}


class OpenSearchBackend(ClusterBackend):
    flavor = "opensearch"

    @classmethod
    def connect(cls, settings: ConnectionSettings) -> OpenSearchBackend:
        assert settings.engine_url
        options = ClientOptions.from_settings(settings).opensearch_kwargs()
        client = opensearchpy.OpenSearch([settings.engine_url], timeout=REQUEST_TIMEOUT_S, retry_on_timeout=True,
                                         max_retries=REQUEST_RETRIES, **options)
        # bulk writes: a client without the transport's retries under streaming_bulk's own (opensearch-py
        # has no per-request override of them)
        bulk_client = opensearchpy.OpenSearch([settings.engine_url], timeout=REQUEST_TIMEOUT_S,
                                              retry_on_timeout=False, max_retries=0, **options)
        return cls(client, settings.engine_url, helpers, bulk_client=bulk_client)

    def _vector_mapping(self, spec: IndexSpec) -> dict[str, Any]:
        return {"type": "knn_vector", "dimension": spec.dims, "method": {
            "name": "hnsw", "engine": "lucene", "space_type": SPACE_TYPES.get(spec.similarity, spec.similarity),
            "parameters": {"m": 16, "ef_construction": 100}}}

    def _index_settings(self, spec: IndexSpec) -> dict[str, Any]:
        settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0}
        if spec.dims:
            settings["index.knn"] = True
        return settings

    def _knn_body(self, field: str, vector: list[float], k: int, num_candidates: int,
                  clauses: list[dict[str, Any]]) -> dict[str, Any]:
        # OpenSearch's `k` is the candidate count of the graph search (Elasticsearch's num_candidates):
        # the page is cut to k by `size`, so the two engines search equally deep
        clause: dict[str, Any] = {"vector": vector, "k": max(k, num_candidates)}
        if clauses:
            clause["filter"] = {"bool": {"filter": clauses}}
        return {"size": k, "query": {"knn": {field: clause}}}

    def _similarity(self, score: float) -> float:
        # Lucene's maximum-inner-product scaling: dot >= 0 -> dot + 1, dot < 0 -> 1 / (1 - dot)
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score if score > 0 else -1.0

    @contextmanager
    def _translated_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except opensearchpy.NotFoundError as e:
            raise IndexNotFound(f"{self.url}: {what}: not found ({e.error})") from None
        except (opensearchpy.AuthenticationException, opensearchpy.AuthorizationException) as e:
            raise EngineAuthError(
                f"{self.url}: {what}: the cluster refused the credentials ({e.status_code})") from None
        except opensearchpy.ConnectionError as e:
            raise EngineUnavailable(f"{self.url}: {what}: cannot reach the cluster ({e.error})") from None
        except opensearchpy.TransportError as e:
            raise EngineError(f"{self.url}: {what}: {e.status_code} {e.error}: {e.info}") from None
