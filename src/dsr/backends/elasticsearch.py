"""Elasticsearch dialect: `dense_vector` with HNSW, the top-level `knn` search option."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import elasticsearch
from elasticsearch import helpers

from dsr.backends.base import IndexSpec
from dsr.backends.client_options import ClientOptions, url_without_credentials
from dsr.backends.cluster import (
    REQUEST_RETRIES,
    REQUEST_TIMEOUT_S,
    RETRY_ON_STATUS,
    ClusterBackend,
    cluster_error,
    error_object,
)
from dsr.errors import EngineAuthError, EngineTimeout, EngineUnavailable
from dsr.settings import ConnectionSettings

_JSON_HEADERS = {"accept": "application/vnd.elasticsearch+json; compatible-with=8",
                 "content-type": "application/vnd.elasticsearch+json; compatible-with=8"}


class ElasticsearchBackend(ClusterBackend):
    flavor = "elasticsearch"

    @classmethod
    def connect(cls, settings: ConnectionSettings) -> ElasticsearchBackend:
        assert settings.engine_url
        client = elasticsearch.Elasticsearch(
            settings.engine_url, request_timeout=REQUEST_TIMEOUT_S, retry_on_timeout=True,
            max_retries=REQUEST_RETRIES, retry_on_status=RETRY_ON_STATUS,
            **ClientOptions.from_settings(settings).elasticsearch_kwargs())
        # bulk writes: the same connections, without the client's retries under streaming_bulk's own
        bulk_client = client.options(max_retries=0, retry_on_timeout=False)
        # callers' searches: no credentials of dsr's (a URL's user:password would be on its transport)
        caller_options = ClientOptions.from_settings(settings).without_credentials()
        caller_client = elasticsearch.Elasticsearch(
            url_without_credentials(settings.engine_url), request_timeout=REQUEST_TIMEOUT_S,
            retry_on_timeout=True, max_retries=REQUEST_RETRIES, retry_on_status=RETRY_ON_STATUS,
            **caller_options.elasticsearch_kwargs())
        return cls(client, settings.engine_url, helpers, bulk_client=bulk_client, caller_client=caller_client)

    def _with_headers(self, client: Any, headers: Mapping[str, str]) -> Any:
        # a shallow copy of the client on the same transport (connection pool), as the client documents
        return client.options(headers=dict(headers)) if headers else client

    def _raw_search(self, index: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        # the generic request: the typed `search` method takes only the parameters it names
        response = self.client.perform_request("POST", f"/{quote(index, safe=',*')}/_search", params=params,
                                               headers=_JSON_HEADERS, body=body)
        return dict(response.body)

    def _vector_mapping(self, spec: IndexSpec) -> dict[str, Any]:
        return {"type": "dense_vector", "dims": spec.dims, "index": True, "similarity": spec.similarity,
                "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100}}

    def _index_settings(self, spec: IndexSpec) -> dict[str, Any]:
        return {"number_of_shards": 1, "number_of_replicas": 0}

    def _vector_dims(self, mapping: Mapping[str, Any]) -> int | None:
        dims = mapping.get("dims") if mapping.get("type") == "dense_vector" else None
        return int(dims) if dims is not None else None

    def _knn_unavailable(self, index: str, settings: Mapping[str, Any]) -> str | None:
        return None  # a dense_vector field can be added to any existing index

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
        except (elasticsearch.AuthenticationException, elasticsearch.AuthorizationException) as e:
            raise EngineAuthError(f"{self.url}: {what}: the cluster refused the credentials ({e.meta.status})",
                                  status=e.meta.status, error=error_object(e.body)) from None
        except elasticsearch.ConnectionTimeout as e:
            raise EngineTimeout(f"{self.url}: {what}: the cluster did not answer in time ({e})") from None
        except elasticsearch.ConnectionError as e:
            raise EngineUnavailable(f"{self.url}: {what}: cannot reach the cluster ({e})") from None
        except elasticsearch.ApiError as e:  # NotFoundError (404) included
            raise cluster_error(self.url, what, e.meta.status, e.body, e.meta.headers) from None
