"""Text normalisation and hashed n-gram ids shared by the towers and the ranker.

Hashing (rather than a vocabulary) keeps models fixed-size and lets unseen words at query time map
to stable ids; a stable hash (not Python's salted `hash`) keeps ids the same across processes.
"""

from __future__ import annotations

import itertools
import re
import zlib

_TOKEN = re.compile(r"[0-9a-z]+(?:[.'][0-9a-z]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens; punctuation splits, so "4x8" stays one token."""
    return _TOKEN.findall(text.lower())


def ngrams(tokens: list[str], *, bigrams: bool = True) -> list[str]:
    out = list(tokens)
    if bigrams:
        out += [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
    return out


def stable_hash(term: str, buckets: int, *, salt: str = "") -> int:
    """A bucket in [1, buckets) for `term`; 0 is reserved for padding."""
    return 1 + zlib.crc32((salt + term).encode("utf-8")) % (buckets - 1)


def hashed_ngram_ids(text: str, buckets: int, *, bigrams: bool = True, salt: str = "") -> list[int]:
    return [stable_hash(t, buckets, salt=salt) for t in ngrams(tokenize(text), bigrams=bigrams)]


def term_overlap(query: str, text: str) -> float:
    """Share of the query's tokens that occur in `text` (0 when the query has none)."""
    q = set(tokenize(query))
    if not q:
        return 0.0
    return len(q & set(tokenize(text))) / len(q)
