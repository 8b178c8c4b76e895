"""The ranker's inputs do not depend on where the vectors live.

One catalog is indexed in real Elasticsearch and OpenSearch with its item vectors in the embedding
field, and the same vectors are in a FAISS sidecar. The same searches run in three deployments: the
sidecar in-process, the sidecar as its own `dsr sidecar serve` process over HTTP, and the engine's
own kNN. The candidates the ranker receives (ids, BM25, DSR similarity, fused rank, item fields) must
be the same in all three, and every term-only candidate must carry its DSR similarity.

Item vectors are random unit vectors (not the hashing tower's), so no two neighbours of a query tie,
and the engine's HNSW search keeps as many candidates as the index has documents, so it is exact: the
neighbours are then the same for FAISS and for the engines, and any difference in what the ranker
receives is the pipeline's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.reranker.base import Candidate
from dsr.search.engine_vectors import EngineVectors
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchRequest
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.remote import RemoteVectorIndex

from ...support.shoes import catalog
from ...support.sidecar_process import served_sidecar

DIM = 32
K = 10  # term_k and knn_k
QUERIES = ["red sneakers", "blue hiking boots", "acme sandals", "black running shoes", "zenit slippers"]
ENCODER = HashingEncoder(DIM)

ROWS = catalog(40)
VECTORS = np.random.default_rng(11).normal(size=(len(ROWS), DIM)).astype(np.float32)
VECTORS /= np.linalg.norm(VECTORS, axis=1, keepdims=True)


class Recorder:
    """A `Reranker` that keeps the candidates it was given and leaves their order alone."""

    def __init__(self) -> None:
        self.seen: list[Candidate] = []

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        self.seen = list(candidates)
        return -np.arange(len(candidates), dtype=np.float32)


@pytest.fixture(scope="module")
def local_sidecar() -> FaissIndex:
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in ROWS], VECTORS)
    return sidecar


@pytest.fixture(scope="module")
def sidecar_url(local_sidecar: FaissIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same sidecar served by `dsr sidecar serve` in its own process."""
    directory = tmp_path_factory.mktemp("sidecar") / "sc"
    local_sidecar.save(directory)
    with served_sidecar(directory) as url:
        yield url


@pytest.fixture(params=["elasticsearch", "opensearch"])
def indexed(request: pytest.FixtureRequest, index_name: str) -> Iterator[tuple[SearchBackend, str]]:
    backend: SearchBackend = request.getfixturevalue({"elasticsearch": "es_backend",
                                                      "opensearch": "os_backend"}[request.param])
    index = f"{index_name}-{uuid.uuid4().hex[:4]}"
    backend.ensure_index(IndexSpec(index, dims=DIM))
    result = backend.bulk_upsert(index, [{**r, "embedding": v.tolist()} for r, v in zip(ROWS, VECTORS, strict=True)])
    assert result.ok, result.failed[:3]
    backend.refresh(index)
    try:
        yield backend, index
    finally:
        backend.delete_index(index)


def test_the_queries_neighbours_do_not_tie():
    # the premise of comparing neighbour orders across FAISS and the engines' HNSW
    for text in QUERIES:
        top = np.sort(VECTORS @ ENCODER.encode_queries([text])[0])[::-1][:K + 1]
        assert np.min(-np.diff(top)) > 1e-3, text


def exact_engine(backend: SearchBackend, index: str) -> EngineVectors:
    # as many candidates as the catalog holds: the engine's HNSW search is then exhaustive
    return EngineVectors(backend, index, num_candidates=len(ROWS))


def _candidates(backend: SearchBackend, index: str, vectors: Any, text: str) -> list[Candidate]:
    ranker = Recorder()
    searcher = HybridSearcher(backend, index, ENCODER, vectors, ranker)
    try:
        result = searcher.run(SearchRequest(text, size=5, term_k=K, knn_k=K, rerank_top=4 * K))
    finally:
        searcher.close()
    assert not result.degraded and not result.warnings, result.warnings
    assert result.reranked == result.pool == len(ranker.seen)
    return ranker.seen


@pytest.mark.parametrize("text", QUERIES)
def test_local_sidecar_remote_sidecar_and_engine_knn_feed_the_ranker_the_same_candidates(
        indexed, local_sidecar, sidecar_url, text):
    backend, index = indexed
    remote = RemoteVectorIndex(sidecar_url)
    try:
        by = {"local sidecar": _candidates(backend, index, local_sidecar, text),
              "remote sidecar": _candidates(backend, index, remote, text),
              "engine kNN": _candidates(backend, index, exact_engine(backend, index), text)}
    finally:
        remote.close()

    local = by["local sidecar"]
    q = ENCODER.encode_queries([text])[0]
    exact = dict(zip([r["id"] for r in ROWS], (VECTORS @ q).tolist(), strict=True))
    neighbours = set(sorted(exact, key=lambda i: -exact[i])[:K])
    term_only = [c for c in local if c.bm25 is not None and c.item["id"] not in neighbours]
    assert term_only and any(c.bm25 is None for c in local)  # both kinds of one-sided candidates are there
    for deployment, candidates in by.items():
        assert [c.item["id"] for c in candidates] == [c.item["id"] for c in local], deployment
        assert [c.fused_rank for c in candidates] == list(range(len(local))), deployment
        assert [c.item for c in candidates] == [c.item for c in local], deployment
        assert [c.bm25 for c in candidates] == pytest.approx([c.bm25 for c in local], abs=1e-4), deployment
        # every candidate, term-only ones included, has its DSR similarity: the query . item dot product
        assert all(c.dsr is not None for c in candidates), deployment
        assert [c.dsr for c in candidates] == pytest.approx([exact[c.item["id"]] for c in candidates],
                                                            abs=1e-4), deployment
        assert all("embedding" not in c.item and c.item["title"] for c in candidates), deployment


def test_the_engine_scores_given_ids_as_the_dot_product(indexed):
    backend, index = indexed
    q = ENCODER.encode_queries(["red sneakers"])[0]
    wanted = ["p001", "p017", "p039", "never-indexed"]
    got = backend.knn_similarities(index, q, wanted)
    assert set(got) == {"p001", "p017", "p039"}
    for doc_id, score in got.items():
        assert score == pytest.approx(float(VECTORS[int(doc_id[1:])] @ q), abs=1e-4)
    assert backend.knn_similarities(index, q, []) == {}


def test_a_remote_sidecar_answers_similarities_like_the_local_one(local_sidecar, sidecar_url):
    remote = RemoteVectorIndex(sidecar_url)
    try:
        q = ENCODER.encode_queries(["acme sandals"])[0]
        ids = [r["id"] for r in ROWS[::3]] + ["never-indexed"]
        assert remote.similarities(q, ids) == pytest.approx(local_sidecar.similarities(q, ids), abs=1e-6)
    finally:
        remote.close()
