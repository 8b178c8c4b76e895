"""The demo: a synthetic shop end to end on the embedded backend.

It shows what dsr is for: queries whose relevant products share no word with the query (synonyms,
misspellings, brand-for-category) come back empty-handed from BM25 and are fixed by semantic
retrieval, and the re-ranker orders the top by what shoppers choose.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from dsr.logs.synthetic import make_world
from dsr.plugin.backends import IndexSpec
from dsr.plugin.backends.embedded import EmbeddedBackend

INDEX = "demo-products"


def _row(rank: int, source: dict, grade: int) -> str:
    mark = "*" * grade if grade else "-"
    return f"  {rank:>2}. {str(source.get('title', ''))[:48]:<48} {mark}"


def run_demo(out: Path, *, n_items: int = 3000, n_sessions: int = 20000, seed: int = 0,
             echo: Callable[[str], None] = print) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    world = make_world(n_items=n_items, n_queries=200, n_users=200, seed=seed)
    echo(f"synthetic shop: {len(world.catalog)} items, {len(world.queries)} queries "
         f"({sum(q.no_overlap for q in world.queries)} share no word with their relevant items)")
    backend = EmbeddedBackend(out / "embedded")
    backend.ensure_index(IndexSpec(INDEX))
    result = backend.bulk_upsert(INDEX, world.catalog)
    echo(f"indexed {len(result.succeeded)} items into the embedded backend ({len(result.failed)} failed)")
    shown = [q for q in world.queries if q.no_overlap][:3] + [q for q in world.queries if not q.no_overlap][:2]
    for q in shown:
        hits = backend.term_search(INDEX, q.text, size=5)
        echo(f"\nquery: {q.text!r}{'  (no term overlap)' if q.no_overlap else ''}")
        echo("  BM25:" if hits else "  BM25: no results")
        for rank, hit in enumerate(hits, 1):
            echo(_row(rank, dict(hit.source), world.grade(q.text, hit.id)))
    backend.close()
