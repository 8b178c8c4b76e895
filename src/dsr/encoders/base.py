"""The `Encoder` protocol: the two towers as the rest of dsr sees them.

Ingest calls `encode_items`, the query path calls `encode_queries`; both return float32 rows that are
L2-normalised, so a dot product is the relevance score. A trained two-tower model, the untuned
MiniLM backbone and the deterministic hashing encoder used in tests all fit it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dsr.catalog import Item

UserContext = Mapping[str, Any]
"""Optional personalisation input: `{"user_id": ..., "segment": ..., "recent_clicks": [item ids]}`."""


@runtime_checkable
class Encoder(Protocol):
    @property
    def dim(self) -> int:
        """The width of every vector this encoder returns."""
        ...

    def encode_queries(
        self, texts: Sequence[str], users: Sequence[UserContext | None] | None = None
    ) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""
        ...

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        """(len(items), dim) float32, L2-normalised."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32, copy=False)
