"""`HybridSearcher`'s branches on real parts: embedded (tantivy) index, FAISS sidecar, hashing query tower,
item records and a transparent ranker. Expected orders are computed independently from the same parts."""

from __future__ import annotations

import numpy as np
import pytest

from dsr.backends import filters as filter_lang
from dsr.encoders.hashing import HashingEncoder
from dsr.search.engine_vectors import EngineVectors
from dsr.search.fusion import fuse
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchRequest
from dsr.sidecar.faiss_index import FaissIndex

from ...support.shoes import BrokenRanker, CheapestFirst, MgetCounting, TitlePriceRanker, catalog, records
from .conftest import DIM, INDEX, exact_sidecar

ENCODER = HashingEncoder(DIM)


def qvec(text: str) -> np.ndarray:
    return ENCODER.encode_queries([text])[0]


def item_vectors() -> dict[str, np.ndarray]:
    rows = catalog()
    return dict(zip([r["id"] for r in rows], ENCODER.encode_items(rows), strict=True))


def expected_fusion(backend, sidecar, text, term_k, knn_k):
    term = [(h.id, h.score) for h in backend.term_search(INDEX, text, size=term_k)] if term_k else []
    scores, ids = sidecar.search(qvec(text), knn_k)
    return fuse({"term": term, "vector": list(zip(ids[0], scores[0].tolist(), strict=False))})


@pytest.fixture
def searchers():
    made = []

    def make(*args, **kwargs) -> HybridSearcher:
        made.append(HybridSearcher(*args, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


# -------------------------------------------------------------------------------------- the two sides

def test_both_sides_are_fused_and_every_hit_keeps_its_stage_scores(backend, sidecar, searchers):
    searcher = searchers(backend, INDEX, ENCODER, sidecar)
    result = searcher.run(SearchRequest("red sneakers", size=90, term_k=20, knn_k=20))
    want = expected_fusion(backend, sidecar, "red sneakers", 20, 20)
    assert [h.id for h in result.hits] == [f.id for f in want]
    assert [h.score for h in result.hits] == pytest.approx([f.score for f in want])
    assert (result.pool, result.term_hits, result.vector_hits) == (len(want), 20, 20)
    assert result.vector_source == "sidecar" and not result.degraded and result.reranked == 0
    assert any(h.term is None for h in result.hits) and any(h.vector is None for h in result.hits)
    for rank, (h, f) in enumerate(zip(result.hits, want, strict=True), start=1):
        assert h.rank == h.fused.rank == rank
        assert (h.term and h.term.score) == f.stage_scores.get("term")
        assert h.source["title"] and "embedding" not in h.source  # neighbours got their sources
    assert set(result.timings_ms) >= {"term", "encode", "vector", "mget", "fuse", "rerank", "total"}


def test_without_a_query_tower_the_search_is_term_only(backend, searchers):
    result = searchers(backend, INDEX).run(SearchRequest("blue boots", size=10, term_k=10))
    assert result.vector_source == "none" and result.vector_hits == 0 and not result.degraded
    assert [h.id for h in result.hits] == [h.id for h in backend.term_search(INDEX, "blue boots", size=10)]
    assert all(h.term is not None and h.vector is None for h in result.hits)


def test_term_k_zero_is_a_vector_only_search(backend, sidecar, searchers):
    result = searchers(backend, INDEX, ENCODER, sidecar).run(SearchRequest("blue boots", size=10, term_k=0))
    _, ids = sidecar.search(qvec("blue boots"), 10)
    assert result.term_hits == 0 and [h.id for h in result.hits] == ids[0]
    assert all(h.term is None and h.vector is not None and h.source["title"] for h in result.hits)


def test_filters_apply_to_both_sides_and_sidecar_neighbours_are_over_fetched(backend, sidecar, searchers):
    flt = {"brand": "acme", "price": {"lte": 90}}
    searcher = searchers(backend, INDEX, ENCODER, sidecar)
    result = searcher.run(SearchRequest("red sneakers", size=40, term_k=20, knn_k=10, filters=flt, rerank=False))
    assert result.hits and all(filter_lang.matches(h.source, flt) for h in result.hits)
    term = backend.term_search(INDEX, "red sneakers", size=20, filters=flt)
    assert sorted((h.term.rank, h.id) for h in result.hits if h.term) == [(r, t.id) for r, t in
                                                                         enumerate(term, start=1)]
    # the sidecar cannot filter: it was asked for 5 x 10 neighbours, the first 10 that pass were kept
    _, ids = sidecar.search(qvec("red sneakers"), 50)
    sources = backend.mget(INDEX, ids[0])
    passing = [i for i in ids[0] if filter_lang.matches(sources[i], flt)][:10]
    assert sorted((h.vector.rank, h.id) for h in result.hits if h.vector) == list(enumerate(passing, start=1))
    assert result.vector_hits == 10


def test_the_engine_applies_filters_to_its_own_neighbours(backend, searchers):
    flt = {"brand": "zenit"}
    searcher = searchers(backend, INDEX, ENCODER, EngineVectors(backend, INDEX))
    result = searcher.run(SearchRequest("red sneakers", size=40, term_k=10, knn_k=10, filters=flt, rerank=False))
    want = backend.knn_search(INDEX, qvec("red sneakers"), k=10, filters=flt)
    assert result.vector_source == "engine" and not result.degraded
    assert sorted((h.vector.rank, h.id) for h in result.hits if h.vector) == [(r, w.id) for r, w in
                                                                             enumerate(want, start=1)]
    assert all(h.source["brand"] == "zenit" for h in result.hits)


# -------------------------------------------------------------------------------------- paging and ranking

@pytest.mark.parametrize("with_records", [False, True], ids=["mget", "records"])
def test_a_page_is_its_slice_of_the_whole_final_order(backend, sidecar, tmp_path, searchers, with_records):
    spy = MgetCounting(backend)
    searcher = searchers(spy, INDEX, ENCODER, sidecar, TitlePriceRanker(),
                         item_records=records(tmp_path) if with_records else None)
    full = searcher.search("green sandals", size=40, term_k=20, knn_k=20)
    spy.mget_ids.clear()
    page = searcher.search("green sandals", size=5, offset=5, term_k=20, knn_k=20)
    assert [(h.id, h.rank, h.score) for h in page] == [(h.id, h.rank, h.score) for h in full[5:10]]
    assert [h.rank for h in page] == [6, 7, 8, 9, 10]
    assert [h.source for h in page] == [h.source for h in full[5:10]]
    if with_records:  # the ranker read records: only the page's neighbours were fetched
        assert spy.mget_ids and all(set(ids) <= {h.id for h in page} for ids in spy.mget_ids)


def test_the_ranker_reorders_the_head_of_the_fused_pool_and_the_tail_keeps_fused_order(backend, sidecar,
                                                                                       searchers):
    ranker = CheapestFirst()
    searcher = searchers(backend, INDEX, ENCODER, sidecar, ranker)
    fused = searcher.search("black running shoes", size=40, term_k=20, knn_k=20, rerank=False)
    assert ranker.calls == 0 and all(h.rerank is None and h.score == h.fused.score for h in fused)

    result = searcher.run(SearchRequest("black running shoes", size=40, term_k=20, knn_k=20, rerank_top=5))
    assert result.reranked == 5 and ranker.calls == 1
    assert [c.item["id"] for c in ranker.seen] == [h.id for h in fused[:5]]  # the fused head, in fused order
    assert [c.fused_rank for c in ranker.seen] == [0, 1, 2, 3, 4]
    head, tail = result.hits[:5], result.hits[5:]
    assert {h.id for h in head} == {h.id for h in fused[:5]}
    assert [h.source["price"] for h in head] == sorted(h.source["price"] for h in head)
    assert [h.rerank.rank for h in head] == [1, 2, 3, 4, 5]
    assert [h.id for h in tail] == [h.id for h in fused[5:]] and all(h.rerank is None for h in tail)


def test_the_ranker_reads_every_candidates_fields_and_scores(backend, sidecar, searchers):
    ranker = CheapestFirst()
    result = searchers(backend, INDEX, ENCODER, sidecar, ranker).run(
        SearchRequest("blue boots", size=10, term_k=20, knn_k=10, rerank_top=40))
    vecs, q = item_vectors(), qvec("blue boots")
    term_ids = {h.id: h.score for h in backend.term_search(INDEX, "blue boots", size=20)}
    neighbour_ids = set(sidecar.search(q, 10)[1][0])
    seen = {c.item["id"] for c in ranker.seen}
    assert len(ranker.seen) == result.reranked == result.pool
    assert seen - neighbour_ids and seen - set(term_ids)  # term-only and vector-only candidates
    for c in ranker.seen:
        assert c.item["title"] and "embedding" not in c.item
        assert c.bm25 == term_ids.get(c.item["id"])
        # term-only candidates included: the DSR similarity is the query . item dot product
        assert c.dsr == pytest.approx(float(q @ vecs[c.item["id"]]), abs=1e-5)


def test_records_and_mget_feed_the_ranker_the_same_and_give_the_same_hits(backend, sidecar, tmp_path,
                                                                          searchers):
    with_records, with_mget = TitlePriceRanker(), TitlePriceRanker()
    a = searchers(backend, INDEX, ENCODER, sidecar, with_records, item_records=records(tmp_path))
    b = searchers(backend, INDEX, ENCODER, sidecar, with_mget)
    for text in ("zzqx", "red sneakers", "hiking boots"):
        ra = a.run(SearchRequest(text, size=10, term_k=30, knn_k=40, rerank_top=40))
        rb = b.run(SearchRequest(text, size=10, term_k=30, knn_k=40, rerank_top=40))
        assert ra.hits == rb.hits and (ra.pool, ra.reranked) == (rb.pool, rb.reranked)
        seen = [(c.item["id"], c.item["title"], c.item["price"], c.bm25, c.dsr, c.fused_rank)
                for c in with_records.seen]
        assert seen == [(c.item["id"], c.item["title"], c.item["price"], c.bm25, c.dsr, c.fused_rank)
                        for c in with_mget.seen]


# -------------------------------------------------------------------------------------- failures

@pytest.mark.parametrize("found_by", ["early fetch", "page fetch", "after re-ranking by records"])
def test_a_neighbour_gone_from_the_index_is_dropped_warned_about_and_the_pool_refused(backend, tmp_path, searchers,
                                                                                      found_by):
    ghost = qvec("purple unicorn slippers")  # the nearest neighbour of the query, never written to the index
    sidecar = exact_sidecar({"ghost-1": ghost})
    ranker, recs = CheapestFirst(), None
    if found_by == "after re-ranking by records":  # the ranker puts it first (the cheapest), then its page has it
        ranker, recs = TitlePriceRanker(), records(tmp_path, [*catalog(), {"id": "ghost-1", "title": "x", "price": 0}])
    result = searchers(backend, INDEX, ENCODER, sidecar, ranker, item_records=recs).run(
        SearchRequest("purple unicorn slippers", size=40, term_k=10, knn_k=10, rerank=found_by != "page fetch"))
    assert "ghost-1" not in [h.id for h in result.hits]
    assert result.warnings == ("1 vector neighbour(s) not found in index 'products' (sidecar out of sync); "
                               "skipped",)
    assert not result.degraded and result.vector_hits == 9
    assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    assert sorted(h.fused.rank for h in result.hits) == list(range(1, result.pool + 1))  # fused without it
    if found_by == "after re-ranking by records":  # re-ranked again without it
        assert ranker.calls == 2 and "ghost-1" not in [c.item["id"] for c in ranker.seen]


def _neighbours_in_this_order(ids: list[str], text: str) -> FaissIndex:
    """A sidecar whose neighbours of `text` are exactly `ids`, best first."""
    q = qvec(text)
    other = np.zeros(DIM, np.float32)
    other[int(np.argmin(np.abs(q)))] = 1.0  # a direction orthogonal to the query's (hashing is sparse)
    angles = 0.02 * np.arange(1, len(ids) + 1)
    vectors = np.cos(angles)[:, None] * q[None, :] + np.sin(angles)[:, None] * other[None, :]
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert(ids, vectors.astype(np.float32))
    return sidecar


def test_neighbours_gone_round_after_round_are_retried_a_bounded_number_of_times(backend, searchers):
    # no term matches; the early fetch covers 6 neighbours, and each re-fusion lifts 4 more gone ones
    # into the re-rank head of 10
    real = [f"p{i:03d}" for i in range(18)]
    ghosts = [f"ghost-{i:02d}" for i in range(12)]
    order = real[:6] + ghosts + real[6:]
    spy, ranker = MgetCounting(backend), CheapestFirst()
    searcher = searchers(spy, INDEX, ENCODER, _neighbours_in_this_order(order, "zzqx"), ranker)
    result = searcher.run(SearchRequest("zzqx", size=3, rerank_top=10))
    assert spy.mget_ids == [real[:6], ghosts[:4], ghosts[4:8], ghosts[8:]]  # early fetch + 3 rounds, no more
    assert result.warnings == ("12 vector neighbour(s) not found in index 'products' (sidecar out of sync); "
                               "skipped",)
    # the last round leaves the gone ones out instead of starting over
    assert ranker.calls == 1 and [c.item["id"] for c in ranker.seen] == real[:6] and result.reranked == 6
    assert {h.id for h in result.hits} <= set(real[:6]) and len(result.hits) == 3
    assert (result.pool, result.vector_hits) == (18, 18) and not result.degraded


def test_a_failing_vector_side_degrades_to_term_only(backend, searchers):
    wrong_width = FaissIndex(DIM // 2, kind="flat", device="cpu")  # the sidecar refuses the query vector
    wrong_width.upsert(["p000"], np.eye(1, DIM // 2, dtype=np.float32))
    ranker = CheapestFirst()
    result = searchers(backend, INDEX, ENCODER, wrong_width, ranker).run(
        SearchRequest("red sneakers", size=10, term_k=10))
    assert result.degraded and result.vector_hits == 0
    assert result.warnings[0].startswith("vector search unavailable (VectorIndexError")
    assert {h.id for h in result.hits} == {h.id for h in backend.term_search(INDEX, "red sneakers", size=10)}
    assert all(c.dsr is None for c in ranker.seen)  # no query vector: no similarity either


def test_a_failing_ranker_leaves_the_fused_order(backend, sidecar, searchers):
    searcher = searchers(backend, INDEX, ENCODER, sidecar, BrokenRanker())
    fused = searcher.search("blue boots", size=5, term_k=10, knn_k=10, rerank=False)
    result = searcher.run(SearchRequest("blue boots", size=5, term_k=10, knn_k=10))
    assert result.degraded and result.warnings == ("re-ranking unavailable (RuntimeError: ranker weights not "
                                                   "loaded); fused order",)
    assert result.reranked == 0 and result.hits == fused


# -------------------------------------------------------------------------------------- requests

def test_unset_depths_come_from_the_searchers_defaults_and_a_request_overrides_them(backend, sidecar,
                                                                                    searchers):
    ranker = CheapestFirst()
    searcher = searchers(backend, INDEX, ENCODER, sidecar, ranker, term_k=7, knn_k=5, rerank_top=4)
    result = searcher.run(SearchRequest("red sneakers", size=3))
    assert (result.term_hits, result.vector_hits, result.reranked, len(ranker.seen)) == (7, 5, 4, 4)
    plan = searcher.plan(SearchRequest("red sneakers", size=3))
    assert (plan.request.term_k, plan.request.knn_k, plan.request.rerank_top) == (7, 5, 4)
    result = searcher.run(SearchRequest("red sneakers", size=3, term_k=2, knn_k=0, rerank_top=1))
    assert (result.term_hits, result.vector_hits, result.reranked) == (2, 0, 1)


def test_search_is_run_with_a_request_built_from_its_options(backend, sidecar, searchers):
    searcher = searchers(backend, INDEX, ENCODER, sidecar)
    assert searcher.search("green", size=4, term_k=5) == searcher.run(SearchRequest("green", size=4, term_k=5)).hits


# -------------------------------------------------------------------------------------- vector sources

@pytest.fixture(scope="module")
def distinct(tmp_path_factory):
    """The catalog with random unit item vectors (no two neighbours tie), in an embedded index and a sidecar."""
    from dsr.backends.base import IndexSpec
    from dsr.backends.embedded import EmbeddedBackend

    rows = catalog()
    vectors = np.random.default_rng(7).normal(size=(len(rows), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    backend = EmbeddedBackend(tmp_path_factory.mktemp("distinct"))
    backend.ensure_index(IndexSpec(INDEX, dims=DIM))
    assert backend.bulk_upsert(INDEX, [{**r, "embedding": v} for r, v in zip(rows, vectors, strict=True)]).ok
    backend.refresh(INDEX)
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in rows], vectors)
    yield backend, sidecar
    backend.close()


@pytest.mark.parametrize("text", ["red sneakers", "blue boots", "acme hiking boots"])
def test_the_engines_vectors_and_the_sidecar_give_the_ranker_the_same_candidates(distinct, searchers, text):
    backend, sidecar = distinct
    by_sidecar, by_engine = CheapestFirst(), CheapestFirst()
    a = searchers(backend, INDEX, ENCODER, sidecar, by_sidecar)
    b = searchers(backend, INDEX, ENCODER, EngineVectors(backend, INDEX), by_engine)
    ra = a.run(SearchRequest(text, size=10, term_k=15, knn_k=15, rerank_top=40))
    rb = b.run(SearchRequest(text, size=10, term_k=15, knn_k=15, rerank_top=40))
    assert (ra.vector_source, rb.vector_source) == ("sidecar", "engine")
    assert [h.id for h in ra.hits] == [h.id for h in rb.hits] and ra.reranked == rb.reranked > 15

    def features(ranker: CheapestFirst) -> list[tuple]:
        return [(c.item, c.bm25, c.fused_rank) for c in ranker.seen]

    assert features(by_sidecar) == features(by_engine)
    assert all(c.dsr is not None for c in by_sidecar.seen + by_engine.seen)
    assert [c.dsr for c in by_engine.seen] == pytest.approx([c.dsr for c in by_sidecar.seen], abs=1e-5)


def test_the_engine_adapter_answers_neighbours_with_sources_and_similarities_of_given_ids(distinct):
    backend, sidecar = distinct
    engine = EngineVectors(backend, INDEX)
    q = qvec("red sneakers")
    got = engine.neighbours(q, 5)
    scores, ids = sidecar.search(q, 5)
    assert list(got.ids) == ids[0] and got.scores == pytest.approx(scores[0].tolist(), abs=1e-5)
    assert set(got.sources) == set(got.ids) and all(s["title"] for s in got.sources.values())
    wanted = ["p010", "p020", "ghost"]
    assert engine.similarities(q, wanted) == pytest.approx(sidecar.similarities(q, wanted), abs=1e-5)
    assert set(engine.similarities(q, wanted)) == {"p010", "p020"} and engine.similarities(q, []) == {}
