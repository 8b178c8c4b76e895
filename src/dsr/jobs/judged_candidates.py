"""Ranking groups from graded judgments, with candidates from the product's own first stage.

A ranker learns what it will be asked at serving time only if it trains on the candidates serving
hands it: the hybrid searcher's fused top-k with the same BM25 score, DSR similarity and fused rank.
So the judged queries are run through a `HybridSearcher` over a private embedded index of the
catalog (tantivy BM25) and, when a DSR model is given, an exact FAISS sidecar of its item vectors;
a recording ranker captures the candidates exactly as the real ranker would receive them.
Unjudged candidates take the lowest grade of the judgments' scale (a shop's judged "not relevant"
and a never-judged product are the same to a shopper), so pairs come from grade differences only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsr.catalog import Item
from dsr.reranker.base import Candidate
from dsr.reranker.groups import RankGroup, groups_from_judgments

INDEX = "catalog"


class CandidateRecorder:
    """A `Reranker` that keeps the candidates it is given and leaves their order alone."""

    def __init__(self) -> None:
        self.seen: list[Candidate] = []

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        self.seen = list(candidates)
        return -np.arange(len(candidates), dtype=np.float32)  # keep the fused order


def judged_groups(
    judgments: Mapping[str, Mapping[str, float]],
    catalog: Mapping[str, Item],
    *,
    model_dir: Path | None = None,
    top_k: int = 100,
    max_pairs: int | None = 60,
    cache_dir: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    seed: int = 0,
    unjudged_grade: float | None = None,
) -> tuple[list[RankGroup], dict[str, int]]:
    """Training groups: each judged query's first-stage top `top_k`, labelled with its grades.

    Unjudged candidates take `unjudged_grade`, by default the lowest grade in the judgments; click
    judgments (every listed item clicked) need a lower one, e.g. 0 = shown and not clicked."""
    from tqdm.auto import tqdm

    from dsr.backends.base import IndexSpec
    from dsr.backends.embedded import EmbeddedBackend
    from dsr.search.hybrid import HybridSearcher

    say = log or (lambda _m: None)
    items = list(catalog.values())
    low = unjudged_grade if unjudged_grade is not None else \
        min((g for grades in judgments.values() for g in grades.values()), default=0.0)
    with tempfile.TemporaryDirectory(prefix="dsr-judged-") as tmp:
        backend = EmbeddedBackend(Path(tmp))
        backend.ensure_index(IndexSpec(INDEX))
        for start in range(0, len(items), 5000):
            result = backend.bulk_upsert(INDEX, items[start:start + 5000])
            if result.failed:
                say(f"{len(result.failed)} catalog rows could not be indexed for the first stage "
                    f"(first: {result.failed[0].id}: {result.failed[0].reason})")
        backend.refresh(INDEX)
        encoder, sidecar = _vector_side(model_dir, items, cache_dir, progress) if model_dir else (None, None)
        recorder = CandidateRecorder()
        searcher = HybridSearcher(backend, INDEX, encoder, sidecar, recorder, term_k=top_k, knn_k=top_k,
                                  rerank_top=top_k)
        bar = tqdm(total=len(judgments), desc="first stage", unit="q", disable=not progress)

        def first_stage(query: str) -> list[Candidate]:
            recorder.seen = []
            searcher.search(query, size=0)  # no page: the recorder keeps what the ranker was given
            bar.update(1)
            return recorder.seen

        try:
            groups, skipped = groups_from_judgments(
                judgments, catalog, first_stage=first_stage, top_k=top_k,
                add_missed_judged=False, unjudged_label=low, max_pairs=max_pairs, seed=seed)
        finally:
            bar.close()
            searcher.close()
            backend.close()
    say(f"judged groups: {len(groups)} queries with pairs, skipped {dict(skipped) or 'none'}")
    return groups, skipped


def _vector_side(model_dir: Path, items: list[Item], cache_dir: Path | None, progress: bool) -> tuple[Any, Any]:
    from dsr.encoders.embed_cache import item_embeddings, model_dir_key
    from dsr.encoders.model import TwoTowerModel
    from dsr.eval.dataset import catalog_fingerprint
    from dsr.sidecar.faiss_index import FaissIndex

    model = TwoTowerModel.load(model_dir)
    catalog_key = catalog_fingerprint(items)
    vectors = item_embeddings(model, items, model_key=f"dsr-{model_dir_key(model_dir)}", catalog_key=catalog_key,
                              cache_dir=cache_dir, progress=progress, desc="DSR item vectors")
    index = FaissIndex(model.dim, kind="flat", device="cpu")
    index.upsert([str(it["id"]) for it in items], vectors)
    return model, index

