"""Ranking groups from graded judgments or click sessions, with candidates from the product's own first stage.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dsr.catalog import Item
from dsr.logs.records import Session
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


class FirstStage:
    """The product's hybrid first stage over a private copy of the catalog, query -> the ranker's candidates.

    An embedded (tantivy) index of the catalog for BM25 and, with a DSR model, an exact FAISS sidecar
    of its item vectors; a recording ranker captures the candidates exactly as the real ranker would
    receive them. The candidates of a query are cached: many sessions ask the same query.
    """

    def __init__(self, catalog: Mapping[str, Item], *, model_dir: Path | None = None, top_k: int = 100,
                 cache_dir: Path | None = None, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        from dsr.backends.base import IndexSpec
        from dsr.backends.embedded import EmbeddedBackend
        from dsr.search.hybrid import HybridSearcher

        say = log or (lambda _m: None)
        items = list(catalog.values())
        self._tmp = tempfile.TemporaryDirectory(prefix="dsr-judged-")
        self._backend = EmbeddedBackend(Path(self._tmp.name))
        self._backend.ensure_index(IndexSpec(INDEX))
        for start in range(0, len(items), 5000):
            result = self._backend.bulk_upsert(INDEX, items[start:start + 5000])
            if result.failed:
                say(f"{len(result.failed)} catalog rows could not be indexed for the first stage "
                    f"(first: {result.failed[0].id}: {result.failed[0].reason})")
        self._backend.refresh(INDEX)
        encoder, sidecar = _vector_side(model_dir, items, cache_dir, progress) if model_dir else (None, None)
        self._queries = PreEncodedQueries(encoder) if encoder is not None else None
        self._recorder = CandidateRecorder()
        self._searcher = HybridSearcher(self._backend, INDEX, self._queries, sidecar, self._recorder, term_k=top_k,
                                        knn_k=top_k, rerank_top=top_k)
        self._cache: dict[Any, list[Candidate]] = {}

    def prime(self, queries: Sequence[str]) -> None:
        """Encode the queries to come in batches: one at a time, the query tower is most of the first stage."""
        if self._queries is not None:
            self._queries.prime(queries)

    def __call__(self, query: str, user: Mapping[str, Any] | None = None) -> list[Candidate]:
        """The ranker's candidates for `query`; with `user`, as a personalised (DPSR) query tower sees them."""
        key: Any = query if user is None else (query, str(user.get("user_id")), tuple(user.get("recent_clicks", ())))
        if key not in self._cache:
            self._recorder.seen = []
            self._searcher.search(query, size=0, user=user)  # no page: the recorder keeps what the ranker was given
            self._cache[key] = self._recorder.seen
        return self._cache[key]

    def close(self) -> None:
        self._searcher.close()
        self._backend.close()
        self._tmp.cleanup()

    def __enter__(self) -> FirstStage:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class PreEncodedQueries:
    """An encoder whose query vectors for known texts were computed beforehand, in batches.

    Everything else (item encoding, a query with a user, an unseen text) goes to the wrapped encoder.
    """

    def __init__(self, encoder: Any, *, batch_size: int = 256) -> None:
        self._encoder = encoder
        self._batch_size = batch_size
        self._vectors: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def prime(self, texts: Sequence[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        for start in range(0, len(todo), self._batch_size):
            chunk = todo[start:start + self._batch_size]
            for text, vector in zip(chunk, np.asarray(self._encoder.encode_queries(chunk), dtype=np.float32),
                                    strict=True):
                self._vectors[text] = vector

    def encode_queries(self, texts: Sequence[str], users: Sequence[Any] | None = None) -> np.ndarray:
        if (users is None or all(u is None for u in users)) and all(t in self._vectors for t in texts):
            return np.stack([self._vectors[t] for t in texts]) if texts else self._encoder.encode_queries(texts)
        return self._encoder.encode_queries(texts, users)

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        return self._encoder.encode_items(items)


@contextmanager
def _counted(catalog: Mapping[str, Item], queries: Sequence[str], *, model_dir: Path | None, top_k: int,
             cache_dir: Path | None, progress: bool, log: Callable[[str], None], unit: str
             ) -> Iterator[Callable[[str], list[Candidate]]]:
    """The first stage for `queries` (encoded beforehand in batches), behind a progress bar."""
    from tqdm.auto import tqdm

    with (FirstStage(catalog, model_dir=model_dir, top_k=top_k, cache_dir=cache_dir, progress=progress,
                     log=log) as stage,
          tqdm(total=len(queries), desc="first stage", unit=unit, disable=not progress) as bar):
        stage.prime(queries)

        def first_stage(query: str) -> list[Candidate]:
            bar.update(1)
            return stage(query)

        yield first_stage


def lowest_grade(judgments: Mapping[str, Mapping[str, float]]) -> float:
    return min((g for grades in judgments.values() for g in grades.values()), default=0.0)


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
    say = log or (lambda _m: None)
    low = unjudged_grade if unjudged_grade is not None else lowest_grade(judgments)
    with _counted(catalog, list(judgments), model_dir=model_dir, top_k=top_k, cache_dir=cache_dir,
                  progress=progress, log=say, unit="q") as first_stage:
        groups, skipped = groups_from_judgments(
            judgments, catalog, first_stage=first_stage, top_k=top_k,
            add_missed_judged=False, unjudged_label=low, max_pairs=max_pairs, seed=seed)
    say(f"judged groups: {len(groups)} queries with pairs, skipped {dict(skipped) or 'none'}")
    return groups, skipped


def click_session_groups(
    sessions: Sequence[Session],
    catalog: Mapping[str, Item],
    *,
    model_dir: Path | None = None,
    depth: int = 5,
    personal: bool = True,
    histories: Mapping[str, tuple[str, ...]] | None = None,
    top_k: int = 100,
    max_pairs: int | None = 60,
    cache_dir: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    seed: int = 0,
) -> tuple[list[RankGroup], dict[str, int]]:
    """Training groups from a click log without impressions: one per session, the user's view of it.

    Each session's query goes through the first stage; its clicked (carted, ordered) items are the
    preferred candidates, the other candidates were not chosen. With `personal`, the group carries
    the user and the `depth` items they clicked before the session (never in or after it), so the
    ranker's click-stream features learn from the log itself; `histories` gives them when they come
    from a larger log than `sessions` (`click_histories` of the whole log).
    """
    from dsr.reranker.groups import click_histories, groups_from_events

    say = log or (lambda _m: None)
    if histories is None:
        histories = click_histories(sessions, depth=depth) if personal else {}
    with _counted(catalog, [s.query for s in sessions], model_dir=model_dir, top_k=top_k, cache_dir=cache_dir,
                  progress=progress, log=say, unit="session") as first_stage:
        groups, skipped = groups_from_events(sessions, first_stage, histories=histories if personal else None,
                                             top_k=top_k, max_pairs=max_pairs, seed=seed)
    say(f"click-session groups: {len(groups)} sessions with pairs, skipped {dict(skipped) or 'none'}")
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

