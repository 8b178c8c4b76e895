"""`RemoteVectorIndex`: the client of `dsr sidecar serve`, a read-only `VectorIndex` over HTTP.

One persistent `httpx.Client` keeps the connection open, so a query costs one round trip on an
established socket. It reads what the in-process sidecar reads (neighbours, and the similarity of given
items for term-only candidates), so a search answers alike with the sidecar in or out of process.
Writes go through the sidecar directory (`dsr ingest`), then `reload()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from dsr.errors import VectorIndexError
from dsr.sidecar.base import SIDECAR, Neighbours, neighbours_of

_WRITE_HINT = "ingest into its directory, then reload"


class RemoteVectorIndex:
    origin = SIDECAR
    applies_filters = False

    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(base_url=self.url, timeout=timeout)
        self._dim: int | None = None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise VectorIndexError(f"vector sidecar at {self.url} is unreachable: {e}") from e
        if response.status_code >= 400:
            try:
                reason = response.json().get("error", response.text)
            except ValueError:
                reason = response.text
            raise VectorIndexError(f"vector sidecar at {self.url} answered {response.status_code}: {reason}")
        return response.json()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.health()["dim"])
        return self._dim

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def __len__(self) -> int:
        return int(self.health()["count"])

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        body = self._call("POST", "/knn", json={"vectors": vectors.tolist(), "k": k})
        scores = np.full((len(vectors), k), -np.inf, np.float32)
        for i, row in enumerate(body["scores"]):
            scores[i, : len(row)] = row
        return scores, [list(row) for row in body["ids"]]

    def neighbours(self, query: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> Neighbours:
        if filters:
            raise VectorIndexError(f"the sidecar {self.url} holds no document fields to filter on")
        scores, ids = self.search(query, k)
        return neighbours_of(scores[0], ids[0])

    def similarities(self, query: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        if not ids:
            return {}
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        body = self._call("POST", "/similarity", json={"vector": vector.tolist(), "ids": list(ids)})
        return {str(i): float(s) for i, s in body["scores"].items()}

    def reload(self) -> int:
        """Ask the server to re-read its directory; returns the new count."""
        return int(self._call("POST", "/reload")["count"])

    def ids(self) -> list[str]:
        raise VectorIndexError(f"the remote sidecar {self.url} does not list ids; open its directory")

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        raise VectorIndexError(f"the remote sidecar {self.url} is read-only; {_WRITE_HINT}")

    def delete(self, ids: Sequence[str]) -> int:
        raise VectorIndexError(f"the remote sidecar {self.url} is read-only; {_WRITE_HINT}")

    def save(self, directory: Path) -> None:
        raise VectorIndexError(f"the remote sidecar {self.url} cannot be saved from the client")

    def close(self) -> None:
        self._client.close()
