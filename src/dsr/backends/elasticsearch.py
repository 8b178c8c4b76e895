"""Elasticsearch dialect: `dense_vector` with HNSW, the top-level `knn` search option."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import elasticsearch
from elasticsearch import helpers

from dsr.backends.base import IndexSpec
from dsr.backends.cluster import ClusterBackend
from dsr.errors import EngineAuthError, EngineError, EngineUnavailable, IndexNotFound
from dsr.settings import ConnectionSettings


class ElasticsearchBackend(ClusterBackend):
    flavor = "elasticsearch"

    @classmethod
    def connect(cls, settings: ConnectionSettings) -> ElasticsearchBackend:
        assert settings.engine_url
        kwargs: dict[str, Any] = {"request_timeout": 30, "retry_on_timeout": True, "max_retries": 3,
                                  "verify_certs": settings.verify_certs}
        if settings.username:
            kwargs["basic_auth"] = (settings.username, settings.password or "")
        if settings.api_key:
            kwargs["api_key"] = settings.api_key
        if settings.ca_cert:
            kwargs["ca_certs"] = settings.ca_cert
        if not settings.verify_certs:
            kwargs["ssl_show_warn"] = False
        return cls(elasticsearch.Elasticsearch(settings.engine_url, **kwargs), settings.engine_url, helpers)

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
        except elasticsearch.ConnectionError as e:
            raise EngineUnavailable(f"{self.url}: {what}: cannot reach the cluster ({e})") from None
        except elasticsearch.ApiError as e:
            raise EngineError(f"{self.url}: {what}: {e.meta.status} {e.message}: {e.info}") from None
