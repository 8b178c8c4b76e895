"""Elasticsearch dialect: `dense_vector` with HNSW, the top-level `knn` search option."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import elasticsearch
from elasticsearch import helpers

from dsr.backends.base import IndexSpec
from dsr.backends.client_options import ClientOptions
from dsr.backends.cluster import REQUEST_RETRIES, REQUEST_TIMEOUT_S, ClusterBackend
from dsr.errors import EngineAuthError, EngineError, EngineUnavailable, IndexNotFound
from dsr.settings import ConnectionSettings


class ElasticsearchBackend(ClusterBackend):
    flavor = "elasticsearch"

    @classmethod
    def connect(cls, settings: ConnectionSettings) -> ElasticsearchBackend:
        assert settings.engine_url
        client = elasticsearch.Elasticsearch(
            settings.engine_url, request_timeout=REQUEST_TIMEOUT_S, retry_on_timeout=True,
            max_retries=REQUEST_RETRIES, **ClientOptions.from_settings(settings).elasticsearch_kwargs())
        # bulk writes: the same connections, without the client's retries under streaming_bulk's own
        bulk_client = client.options(max_retries=0, retry_on_timeout=False)
        return cls(client, settings.engine_url, helpers, bulk_client=bulk_client)

    def _vector_mapping(self, spec: IndexSpec) -> dict[str, Any]:
        return {"type": "dense_vector", "dims": spec.dims, "index": True, "similarity": spec.similarity,
                "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100}}

    def _index_settings(self, spec: IndexSpec) -> dict[str, Any]:
        return {"number_of_shards": 1, "number_of_replicas": 0}

    def _knn_body(self, field: str, vector: list[float], k: int, num_candidates: int,
                  clauses: list[dict[str, Any]]) -> dict[str, Any]:
        knn: dict[str, Any] = {"field": field, "query_vector": vector, "k": k, "num_candidates": num_candidates}
        if clauses:
            knn["filter"] = clauses
        return {"knn": knn, "size": k}

    def _similarity(self, score: float) -> float:
        return 2.0 * score - 1.0  # dot_product similarity scores (1 + dot) / 2

    @contextmanager
    def _translated_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except elasticsearch.NotFoundError as e:
            raise IndexNotFound(f"{self.url}: {what}: not found ({e.message})") from None
        except (elasticsearch.AuthenticationException, elasticsearch.AuthorizationException) as e:
            raise EngineAuthError(
                f"{self.url}: {what}: the cluster refused the credentials ({e.meta.status})") from None
        except (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout) as e:
            raise EngineUnavailable(f"{self.url}: {what}: cannot reach the cluster ({e})") from None
        except elasticsearch.ApiError as e:
            raise EngineError(f"{self.url}: {what}: {e.meta.status} {e.message}: {e.info}") from None
