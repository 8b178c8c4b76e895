"""A deterministic, dependency-free `Encoder` for tests and smoke runs.

Like haystack's mock embedder it needs no model: each unigram and bigram is hashed to a signed
bucket, so texts that share words get similar vectors and the same text always gets the same vector
in every process. It is a bag of words, not a semantic model; never use it to judge quality.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dsr.catalog import Item, item_text
from dsr.encoders.base import UserContext, l2_normalise
from dsr.text import ngrams, stable_hash, tokenize


class HashingEncoder:
    def __init__(self, dim: int = 64, *, bigrams: bool = True) -> None:
        if dim < 2:
            raise ValueError("HashingEncoder needs dim >= 2")
        self.dim = dim
        self.bigrams = bigrams

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for term in ngrams(tokenize(text), bigrams=self.bigrams):
                bucket = stable_hash(term, self.dim + 1) - 1
                sign = 1.0 if stable_hash(term, 3, salt="sign") == 1 else -1.0
                out[row, bucket] += sign
        return l2_normalise(out)

    def encode_queries(
        self, texts: Sequence[str], users: Sequence[UserContext | None] | None = None
    ) -> np.ndarray:
        return self._encode(list(texts))

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        return self._encode([item_text(it) for it in items])
