"""The engine's own hybrid search, where the running distribution offers it, and the labelled fallback.

* Elasticsearch: the `rrf` retriever (x-pack `rank-rrf` module; licence-gated to Enterprise/trial in the
  default distribution, and absent from the `integ-test-zip` distribution: the engine answers
  `unknown retriever [rrf]`).
* OpenSearch: the `hybrid` query with a `normalization-processor` search pipeline (the neural-search
  plugin; the `integ-test-zip` distribution ships without it).

Which one the cluster has is found by trying it once on the evaluation index (a probe), never assumed
from the version. When neither works, the engine-hybrid pipeline fuses the engine's own BM25 list and
its own kNN list with RRF (k=60, the engines' default constant) client-side, and the report says so.
These requests use plain HTTP because the `SearchBackend` protocol has no fusion operation: the
feature is engine-specific by nature, and this module is its only user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dsr.backends.client_options import ClientOptions
from dsr.settings import ConnectionSettings

PIPELINE_ID = "dsr-eval-hybrid"


@dataclass(frozen=True)
class FusionSupport:
    """What the probe found: `method` is the native feature used, or "client-rrf" with the reason."""

    method: str  # "es-rrf-retriever", "os-hybrid-query" or "client-rrf"
    reason: str

    @property
    def native(self) -> bool:
        return self.method != "client-rrf"


class _Http:
    def __init__(self, settings: ConnectionSettings) -> None:
        import httpx

        options = ClientOptions.from_settings(settings).httpx_kwargs()
        options["headers"] = {"content-type": "application/json", **options["headers"]}
        self.base = str(settings.engine_url).rstrip("/")
        self.client = httpx.Client(timeout=30.0, **options)

    def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        resp = self.client.request(method, f"{self.base}{path}", json=body, params=params)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, resp.text

    def close(self) -> None:
        self.client.close()


def _error_reason(payload: Any) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        err = payload["error"]
        return f"{err.get('type')}: {err.get('reason')}"
    return str(payload)[:200]


class EngineFusion:
    """Runs the engine's native hybrid search on one index (after `probe` found it supported)."""

    def __init__(
        self,
        settings: ConnectionSettings,
        flavor: str,
        index: str,
        *,
        embedding_field: str = "embedding",
        rank_constant: int = 60,
    ) -> None:
        self.flavor = flavor
        self.index = index
        self.embedding_field = embedding_field
        self.rank_constant = rank_constant
        self.http = _Http(settings)

    def _text_query(self, text: str) -> dict[str, Any]:
        """The same default query as the bm25 pipeline (the backend's own multi_match)."""
        from dsr.backends.cluster import term_query

        return term_query(text, None, None)

    def _es_body(self, text: str, vector: np.ndarray, k: int, num_candidates: int) -> dict[str, Any]:
        return {
            "size": k,
            "_source": False,
            "retriever": {
                "rrf": {
                    "retrievers": [
                        {"standard": {"query": self._text_query(text)}},
                        {
                            "knn": {
                                "field": self.embedding_field,
                                "query_vector": [float(x) for x in vector],
                                "k": k,
                                "num_candidates": num_candidates,
                            }
                        },
                    ],
                    "rank_window_size": k,
                    "rank_constant": self.rank_constant,
                }
            },
        }

    def _os_body(self, text: str, vector: np.ndarray, k: int) -> dict[str, Any]:
        return {
            "size": k,
            "_source": False,
            "query": {
                "hybrid": {
                    "queries": [
                        self._text_query(text),
                        {"knn": {self.embedding_field: {"vector": [float(x) for x in vector], "k": k}}},
                    ]
                }
            },
        }

    def probe(self, text: str, vector: np.ndarray) -> FusionSupport:
        """Try the native feature once; the engine's own error message is the reason when it fails."""
        if self.flavor == "elasticsearch":
            status, payload = self.http.call(
                "POST", f"/{self.index}/_search", self._es_body(text, vector, 10, 50)
            )
            if status == 200:
                return FusionSupport("es-rrf-retriever", "Elasticsearch rrf retriever")
            return FusionSupport(
                "client-rrf", f"Elasticsearch rrf retriever unavailable ({_error_reason(payload)})"
            )
        if self.flavor == "opensearch":
            status, plugins = self.http.call("GET", "/_cat/plugins", params={"format": "json"})
            names = (
                {p.get("component") for p in plugins}
                if status == 200 and isinstance(plugins, list)
                else set()
            )
            if "opensearch-neural-search" not in names:
                return FusionSupport(
                    "client-rrf",
                    "OpenSearch hybrid query unavailable (the neural-search plugin "
                    f"is not installed; plugins: {', '.join(sorted(names)) or 'none'})",
                )
            status, payload = self.http.call(
                "PUT",
                f"/_search/pipeline/{PIPELINE_ID}",
                {
                    "description": "dsr eval: min-max normalisation, arithmetic mean",
                    "phase_results_processors": [
                        {
                            "normalization-processor": {
                                "normalization": {"technique": "min_max"},
                                "combination": {
                                    "technique": "arithmetic_mean",
                                    "parameters": {"weights": [0.5, 0.5]},
                                },
                            }
                        }
                    ],
                },
            )
            if status != 200:
                return FusionSupport(
                    "client-rrf", f"OpenSearch search pipeline refused ({_error_reason(payload)})"
                )
            status, payload = self.http.call(
                "POST",
                f"/{self.index}/_search",
                self._os_body(text, vector, 10),
                params={"search_pipeline": PIPELINE_ID},
            )
            if status == 200:
                return FusionSupport("os-hybrid-query", "OpenSearch hybrid query + normalization-processor")
            return FusionSupport("client-rrf", f"OpenSearch hybrid query failed ({_error_reason(payload)})")
        return FusionSupport("client-rrf", f"the {self.flavor} backend has no native hybrid search")

    def search(
        self, support: FusionSupport, text: str, vector: np.ndarray, k: int, num_candidates: int
    ) -> dict[str, float]:
        if support.method == "es-rrf-retriever":
            status, payload = self.http.call(
                "POST", f"/{self.index}/_search", self._es_body(text, vector, k, num_candidates)
            )
        else:
            status, payload = self.http.call(
                "POST",
                f"/{self.index}/_search",
                self._os_body(text, vector, k),
                params={"search_pipeline": PIPELINE_ID},
            )
        if status != 200:
            from dsr.errors import EngineError

            raise EngineError(f"native hybrid search failed: {_error_reason(payload)}")
        return {h["_id"]: float(h.get("_score") or 0.0) for h in payload["hits"]["hits"]}

    def close(self) -> None:
        self.http.close()
