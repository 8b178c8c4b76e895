"""OpenSearch dialect: `knn_vector` (k-NN plugin, Lucene HNSW) and the `knn` query clause."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import opensearchpy
from opensearchpy import helpers

from dsr.backends.base import IndexSpec
from dsr.backends.client_options import ClientOptions, url_without_credentials
from dsr.backends.cluster import REQUEST_RETRIES, REQUEST_TIMEOUT_S, ClusterBackend, cluster_error, error_object
from dsr.errors import EngineAuthError, EngineTimeout, EngineUnavailable
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
        # callers' searches: the same TLS settings, no credentials of dsr's; each request adds the caller's
        caller_options = ClientOptions.from_settings(settings).without_credentials().opensearch_kwargs()
        caller_client = opensearchpy.OpenSearch([url_without_credentials(settings.engine_url)],
                                                timeout=REQUEST_TIMEOUT_S, retry_on_timeout=True,
                                                max_retries=REQUEST_RETRIES, **caller_options)
        return cls(client, settings.engine_url, helpers, bulk_client=bulk_client, caller_client=caller_client)

    def _with_headers(self, client: Any, headers: Mapping[str, str]) -> Any:
        return _WithHeaders(client, dict(headers)) if headers else client

    def _raw_search(self, index: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        return dict(self.client.search(index=index, body=body, params=params))

    def _vector_mapping(self, spec: IndexSpec) -> dict[str, Any]:
        return {"type": "knn_vector", "dimension": spec.dims, "method": {
            "name": "hnsw", "engine": "lucene", "space_type": SPACE_TYPES.get(spec.similarity, spec.similarity),
            "parameters": {"m": 16, "ef_construction": 100}}}

    def _index_settings(self, spec: IndexSpec) -> dict[str, Any]:
        settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0}
        if spec.dims:
            settings["index.knn"] = True
        return settings

    def _vector_dims(self, mapping: Mapping[str, Any]) -> int | None:
        dims = mapping.get("dimension") if mapping.get("type") == "knn_vector" else None
        return int(dims) if dims is not None else None

    def _knn_unavailable(self, index: str, settings: Mapping[str, Any]) -> str | None:
        # the k-NN plugin maps a knn_vector only in an index created with index.knn: true, a static setting
        knn = (settings.get("index") or {}).get("knn", settings.get("index.knn"))
        if str(knn).lower() == "true":
            return None
        return (f"{index} was not created with the index setting index.knn: true, which OpenSearch's k-NN "
                "plugin needs for a knn_vector field and which cannot be set on an existing index")

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
        except (opensearchpy.AuthenticationException, opensearchpy.AuthorizationException) as e:
            raise EngineAuthError(f"{self.url}: {what}: the cluster refused the credentials ({e.status_code})",
                                  status=int(e.status_code), error=error_object(e.info)) from None
        except opensearchpy.ConnectionTimeout as e:  # a ConnectionError: caught first
            raise EngineTimeout(f"{self.url}: {what}: the cluster did not answer in time ({e.error})") from None
        except opensearchpy.ConnectionError as e:
            raise EngineUnavailable(f"{self.url}: {what}: cannot reach the cluster ({e.error})") from None
        except opensearchpy.TransportError as e:  # NotFoundError (404) included
            if not isinstance(e.status_code, int):  # "N/A": no answer came
                raise EngineUnavailable(f"{self.url}: {what}: no answer from the cluster ({e.error})") from None
            raise cluster_error(self.url, what, e.status_code, e.info) from None


class _WithHeaders:
    """An opensearch-py client (or one of its namespaces, `indices`) passing `headers=` to every API call.

    opensearch-py has no per-request copy of a client; every API method takes the request's extra
    headers as `headers=`, merged over the connection's own (which, on the callers' client, hold no
    credentials). Wrapping costs no connection and no client.
    """

    def __init__(self, target: Any, headers: dict[str, str]) -> None:
        self._target = target
        self._headers = headers

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if isinstance(attr, opensearchpy.client.utils.NamespacedClient):
            return _WithHeaders(attr, self._headers)
        if callable(attr) and not name.startswith("_"):
            headers = self._headers

            def call(*args: Any, **kwargs: Any) -> Any:
                kwargs["headers"] = {**headers, **(kwargs.get("headers") or {})}
                return attr(*args, **kwargs)

            return call
        return attr
