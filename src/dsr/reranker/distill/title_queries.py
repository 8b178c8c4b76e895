"""Queries written from product titles: unlabelled queries for augmentation when the logs run out.

Distillation gains from many more unlabelled queries than there are labelled ones. A shop's own
logs are the best source; a small log (or a benchmark that gives every logged query to the teacher)
leaves too few. Shoppers mostly type a few consecutive words of what they want ("angle bracket",
"36 in vanity"), so a short span of a real title, sometimes without the brand that leads it, is a
plausible query whose BM25 and DSR candidates the teacher can label. The spans are drawn with a
seed, so the same catalog always gives the same queries.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from dsr.catalog import Item
from dsr.text import tokenize

MIN_WORDS = 2
MAX_WORDS = 4
CONNECTORS = frozenset({"with", "and", "for", "of", "the", "to", "or", "by", "x", "in", "a", "on"})


def queries_from_titles(
    items: Sequence[Item], n: int, *, seed: int = 0, exclude: Iterable[str] = (), max_tries: int = 20
) -> list[str]:
    """`n` distinct queries, each 2-4 consecutive words of one title, none of them in `exclude`.

    Fewer than `n` come back only when the catalog cannot give that many distinct spans.
    """
    rng = random.Random(seed)
    banned = {" ".join(tokenize(q)) for q in exclude}
    titled = [str(it.get("title") or "") for it in items]
    titled = [t for t in titled if len(tokenize(t)) >= MIN_WORDS]
    out: list[str] = []
    seen: set[str] = set()
    misses = 0
    while titled and len(out) < n and misses < max_tries * max(n, 1):
        words = tokenize(rng.choice(titled))
        start = 1 if len(words) > MAX_WORDS and rng.random() < 0.5 else 0  # often without the leading brand
        width = rng.randint(MIN_WORDS, min(MAX_WORDS, len(words) - start))
        offset = rng.randint(start, len(words) - width)
        query = " ".join(words[offset:offset + width])
        if query in seen or query in banned or not _reads_as_a_query(words[offset:offset + width]):
            misses += 1
            continue
        seen.add(query)
        out.append(query)
    return out


def _reads_as_a_query(words: Sequence[str]) -> bool:
    """No dangling connector at either end, and at least one real word (not only sizes and units)."""
    if words[0] in CONNECTORS or words[-1] in CONNECTORS:
        return False
    return any(len(w) >= 3 and w.isalpha() for w in words)


__all__ = ["queries_from_titles"]
