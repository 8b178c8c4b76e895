"""FaissIndex: string ids over FAISS, every kind checked against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from dsr.errors import VectorIndexError
from dsr.sidecar.base import VectorIndex, VectorReader
from dsr.sidecar.faiss_index import FaissIndex, IndexConfig


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Points around 100 centres: embeddings of a catalog cluster by product type, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, dim))
    x = centres[rng.integers(0, 100, n)] + 0.5 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> list[list[int]]:
    return np.argsort(-(q @ x.T), axis=1)[:, :k].tolist()


def test_it_is_a_vector_index():
    assert isinstance(FaissIndex(8, device="cpu"), VectorIndex)


def test_flat_search_is_exact_and_ids_are_the_catalog_ids():
    x = unit_rows(500, 16)
    ids = [f"sku-{i}" for i in range(500)]
    index = FaissIndex(16, kind="flat", device="cpu")
    index.upsert(ids, x)
    scores, got = index.search(x[:4], 5)
    want = exact_top(x, x[:4], 5)
    assert got == [[ids[j] for j in row] for row in want]
    assert scores.shape == (4, 5) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_kinds_have_high_recall_against_exact(kind):
    n, dim, k = 12_000, 32, 10
    x = clustered_rows(n + 50, dim)
    x, q = x[:n], x[n:]
    ids = [str(i) for i in range(n)]
    index = FaissIndex(dim, kind=kind, device="cpu", nlist=64, nprobe=16)
    index.upsert(ids, x)
    assert index.kind == kind
    _, got = index.search(q, k)
    want = exact_top(x, q, k)
    recall = np.mean([len({ids[j] for j in w} & set(g)) / k for w, g in zip(want, got, strict=True)])
    assert recall >= 0.9


def test_auto_picks_flat_when_small_and_hnsw_when_large():
    small = FaissIndex(8, device="cpu", flat_max=100)
    small.upsert([str(i) for i in range(50)], unit_rows(50, 8))
    assert small.kind == "flat"
    small.upsert([str(i) for i in range(50, 300)], unit_rows(250, 8, seed=2))
    assert small.kind == "hnsw"
    assert len(small) == 300


def test_explicit_kind_overrides_auto():
    index = FaissIndex(8, kind="hnsw", device="cpu")
    index.upsert(["a", "b"], unit_rows(2, 8))
    assert index.kind == "hnsw"


def test_ivfpq_with_too_few_vectors_to_train_stays_exact():
    index = FaissIndex(8, kind="ivfpq", device="cpu")
    index.upsert(["a", "b", "c"], unit_rows(3, 8))
    assert index.kind == "flat"
    assert index.search(unit_rows(3, 8)[:1], 1)[1] == [["a"]]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_upsert_replaces_and_delete_removes_even_from_hnsw(kind):
    x = unit_rows(200, 16)
    ids = [f"p{i}" for i in range(200)]
    index = FaissIndex(16, kind=kind, device="cpu")
    index.upsert(ids, x)
    index.upsert(["p0"], x[1:2])  # p0 now points the same way as p1
    assert len(index) == 200
    _, got = index.search(x[:1], 200)
    assert "p0" in got[0] and got[0].count("p0") == 1
    _, got = index.search(x[1:2], 2)
    assert set(got[0]) == {"p0", "p1"}
    assert index.delete(["p1", "missing"]) == 1
    _, got = index.search(x[1:2], 200)
    assert "p1" not in got[0]
    assert len(got[0]) == 199
    assert sorted(index.ids()) == sorted(set(ids) - {"p1"})


def test_reupserting_unchanged_vectors_leaves_no_tombstones():
    x = unit_rows(100, 8)
    ids = [str(i) for i in range(100)]
    index = FaissIndex(8, device="cpu")
    index.upsert(ids, x)
    index.upsert(ids, x)
    assert index.stats()["dead_rows"] == 0 and len(index) == 100


def test_many_replacements_trigger_compaction():
    x = unit_rows(100, 8)
    ids = [str(i) for i in range(100)]
    index = FaissIndex(8, kind="hnsw", device="cpu", compact_ratio=0.2)
    index.upsert(ids, x)
    index.upsert(ids[:50], unit_rows(50, 8, seed=9))
    stats = index.stats()
    assert stats["rows"] == 100 and stats["dead_rows"] == 0


def test_rows_shorter_than_k_are_padded_with_minus_infinity():
    index = FaissIndex(4, device="cpu")
    index.upsert(["a", "b"], unit_rows(2, 4))
    scores, got = index.search(unit_rows(1, 4), 5)
    assert len(got[0]) == 2
    assert np.isneginf(scores[0, 2:]).all() and np.isfinite(scores[0, :2]).all()


def test_empty_index_returns_empty_rows():
    scores, got = FaissIndex(4, device="cpu").search(unit_rows(3, 4), 2)
    assert got == [[], [], []] and np.isneginf(scores).all()


def test_bad_input_is_refused_with_a_clear_error():
    index = FaissIndex(4, device="cpu")
    with pytest.raises(VectorIndexError, match="shape"):
        index.upsert(["a"], np.ones((1, 5), np.float32))
    with pytest.raises(VectorIndexError, match="NaN"):
        index.upsert(["a"], np.full((1, 4), np.nan, np.float32))
    with pytest.raises(VectorIndexError, match="ids"):
        index.upsert(["a"], np.ones((2, 4), np.float32))
    with pytest.raises(VectorIndexError, match="kind"):
        FaissIndex(4, kind="annoy")


def test_config_round_trips():
    cfg = IndexConfig(dim=12, kind="hnsw", ef_search=99)
    assert IndexConfig.from_config(cfg.to_config()) == cfg


def test_it_reads_like_every_vector_source_neighbours_of_one_query_and_similarities_of_given_ids():
    x = unit_rows(50, 8)
    ids = [f"sku-{i}" for i in range(50)]
    index = FaissIndex(8, kind="hnsw", device="cpu")
    index.upsert(ids, x)
    index.delete(["sku-3"])
    assert isinstance(index, VectorReader) and index.origin == "sidecar" and not index.applies_filters
    found = index.neighbours(x[3], 4)
    scores, got = index.search(x[3:4], 4)
    assert list(found.ids) == got[0] and found.scores == pytest.approx(scores[0].tolist())
    assert "sku-3" not in found.ids and found.sources == {}
    sims = index.similarities(x[0], ["sku-1", "sku-3", "never", "sku-1"])
    assert sims == {"sku-1": pytest.approx(float(x[1] @ x[0]))}  # only ids held, once each
    assert index.similarities(x[0], []) == {}
    with pytest.raises(VectorIndexError, match="filter"):
        index.neighbours(x[0], 4, {"brand": "acme"})
    with pytest.raises(VectorIndexError, match="shape"):
        index.similarities(x[0, :4], ["sku-1"])
