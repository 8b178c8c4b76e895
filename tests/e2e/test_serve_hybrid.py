"""`ext.dsr` searches through `dsr serve` on real engines: fused, re-ranked, explained; errors as specified.

A small synthetic catalog is indexed in each backend (Elasticsearch, OpenSearch, embedded) with its
DSR vectors in an in-process FAISS sidecar; the query tower is the deterministic hashing encoder and
the ranker a transparent one (cheapest first), so the expected order can be checked exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.engines import free_port
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchRequest
from dsr.server import ServeSettings, create_app
from dsr.server.dsr_request import Limits
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.remote import RemoteVectorIndex

from ..support.shoes import BrokenRanker, CheapestFirst, MgetCounting, TitlePriceRanker, catalog, records

DIM = 64


@dataclass
class Served:
    url: str
    backend: SearchBackend
    index: str
    sidecar: FaissIndex


@pytest.fixture
def indexed(any_backend) -> Iterator[tuple[SearchBackend, str, FaissIndex]]:
    backend = any_backend
    index = f"dsr-e2e-hybrid-{uuid.uuid4().hex[:8]}"
    rows = catalog()
    encoder = HashingEncoder(DIM)
    vectors = encoder.encode_items(rows)
    backend.ensure_index(IndexSpec(index, dims=DIM))
    result = backend.bulk_upsert(index, [{**r, "embedding": v.tolist()} for r, v in zip(rows, vectors,
                                                                                        strict=True)])
    assert result.ok, result.failed[:3]
    backend.refresh(index)
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in rows], vectors)
    try:
        yield backend, index, sidecar
    finally:
        backend.delete_index(index)


def make_app(backend: SearchBackend, index: str, vectors: Any, *, ranker: Any = None, **settings: Any):
    conn = ConnectionSettings(None if backend.flavor == "embedded" else backend.url)
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), vectors, ranker or CheapestFirst())
    return create_app(ServeSettings(conn, index=index, **settings), searcher=searcher)


@pytest.fixture
def served(indexed, serve_thread) -> Iterator[Served]:
    backend, index, sidecar = indexed
    with serve_thread(make_app(backend, index, sidecar, limits=Limits(max_k=200))) as url:
        yield Served(url, backend, index, sidecar)


def dsr_search(s: Served, body: dict[str, Any], **params: Any) -> httpx.Response:
    return httpx.post(f"{s.url}/{s.index}/_search", json=body, params=params, timeout=30)


def test_hybrid_search_is_fused_reranked_and_explained(served):
    r = dsr_search(served, {"size": 10, "explain": True,
                            "ext": {"dsr": {"text": "red sneakers", "k": 20, "term_k": 20}}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= {"took", "timed_out", "_shards", "hits", "ext"}
    assert out["timed_out"] is False and out["ext"]["dsr"]["degraded"] is False
    hits = out["hits"]["hits"]
    assert len(hits) == 10
    assert out["hits"]["max_score"] == hits[0]["_score"]
    # the ranker (cheapest first) ordered the fused pool
    prices = [h["_source"]["price"] for h in hits]
    assert prices == sorted(prices)
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)
    for h in hits:
        assert h["_index"] == served.index and h["_source"]["title"]
        assert "embedding" not in h["_source"]
        stages = [d["description"].split(":")[0] for d in h["_explanation"]["details"]]
        assert stages[-2:] == ["fused", "rerank"]
    # both sides contributed to the pool; vector-only hits got their source by mget
    ext = out["ext"]["dsr"]
    assert ext["term_hits"] > 0 and ext["vector_hits"] == 20 and ext["reranked"] == ext["pool"]
    pool = dsr_search(served, {"size": ext["pool"], "explain": True,
                               "ext": {"dsr": {"text": "red sneakers", "k": 20, "term_k": 20}}}).json()
    descriptions = [[d["description"] for d in h["_explanation"]["details"]] for h in pool["hits"]["hits"]]
    assert any(d[0].startswith("term: not among") for d in descriptions)  # a vector-only hit
    assert any(d[1].startswith("vector: not among") for d in descriptions)  # a term-only hit


def test_without_rerank_the_order_is_the_fusion_order(served):
    body = {"size": 5, "explain": True, "ext": {"dsr": {"text": "blue boots", "k": 10, "term_k": 10,
                                                        "rerank": False}}}
    out = dsr_search(served, body).json()
    ranks = [h["_explanation"]["details"][-1] for h in out["hits"]["hits"]]
    assert all(d["description"].startswith("fused") for d in ranks)
    assert [h["_score"] for h in out["hits"]["hits"]] == [d["value"] for d in ranks]
    assert out["ext"]["dsr"]["reranked"] == 0


def test_paging_source_filtering_and_filters(served):
    ext = {"text": "green sandals", "k": 30, "term_k": 30}
    full = dsr_search(served, {"size": 10, "ext": {"dsr": ext}}).json()["hits"]["hits"]
    page = dsr_search(served, {"size": 5, "from": 5, "ext": {"dsr": ext}}).json()["hits"]["hits"]
    assert [h["_id"] for h in page] == [h["_id"] for h in full[5:10]]

    only = dsr_search(served, {"size": 3, "_source": ["title"], "ext": {"dsr": ext}}).json()["hits"]["hits"]
    assert all(set(h["_source"]) == {"title"} for h in only)
    none = dsr_search(served, {"size": 3, "ext": {"dsr": ext}}, _source="false").json()["hits"]["hits"]
    assert all("_source" not in h for h in none)

    filtered = dsr_search(served, {"size": 20, "ext": {"dsr": {**ext, "filters": {"brand": "zenit",
                                                                                  "price": {"lte": 90}}}}})
    hits = filtered.json()["hits"]["hits"]
    assert hits and all(h["_source"]["brand"] == "zenit" and h["_source"]["price"] <= 90 for h in hits)


def test_linear_fusion_and_the_callers_own_term_query(served):
    body = {"size": 20, "explain": True, "query": {"match": {"brand": "orbit"}},
            "ext": {"dsr": {"text": "white slippers", "fusion": "linear", "normalization": "z_score",
                            "weights": {"term": 0.5, "vector": 1.0}, "rerank": False, "k": 10,
                            "term_k": 10}}}
    out = dsr_search(served, body)
    if served.backend.flavor == "embedded":
        assert out.status_code == 400 and "query DSL" in out.json()["error"]["reason"]
        return
    assert out.status_code == 200, out.text
    assert out.json()["ext"]["dsr"]["fusion"] == {"mode": "linear", "rrf_k": 60, "normalization": "z_score",
                                                  "weights": {"term": 0.5, "vector": 1.0}}
    term_hits = [h for h in out.json()["hits"]["hits"]
                 if h["_explanation"]["details"][0]["description"].startswith("term: BM25")]
    assert len(term_hits) == 10  # the caller's query ran on the term side ...
    assert all(h["_source"]["brand"] == "orbit" for h in term_hits)  # ... instead of multi_match


@pytest.mark.parametrize(("body", "needle"), [
    ({"ext": {"dsr": {"text": "red", "kk": 1}}}, "unknown key(s) ['kk']"),
    ({"ext": {"dsr": {"text": "red", "k": "ten"}}}, "[ext.dsr.k] must be an integer"),
    ({"ext": {"dsr": {"text": "red", "k": 201}}}, "configured maximum"),
    ({"size": 30, "from": 15, "ext": {"dsr": {"text": "red", "k": 20, "term_k": 20}}}, "candidate pool"),
    ({"rescore": {"window_size": 5, "query": {"rescore_query": {"match_all": {}}}}, "ext": {"dsr": {"text": "red"}}},
     "cannot honour ['rescore']"),
    ({"ext": {"dsr": {"k": 5}}}, "[ext.dsr.text] is required"),
])
def test_invalid_ext_dsr_is_a_400_in_the_elasticsearch_error_shape(served, body, needle):
    r = dsr_search(served, body)
    assert r.status_code == 400
    err = r.json()
    assert err["status"] == 400 and err["error"]["type"] == "illegal_argument_exception"
    assert needle in err["error"]["reason"]
    assert err["error"]["root_cause"][0]["reason"] == err["error"]["reason"]


def test_the_official_client_runs_dsr_searches(served):
    if served.backend.flavor == "embedded":
        pytest.skip("no official client talks to the embedded backend")
    body = {"size": 5, "explain": True, "ext": {"dsr": {"text": "black running shoes", "k": 20}}}
    if served.backend.flavor == "elasticsearch":
        from elasticsearch import BadRequestError, Elasticsearch

        client: Any = Elasticsearch(served.url)
        resp = client.search(index=served.index, body=body)
        with pytest.raises(BadRequestError):
            client.search(index=served.index, body={"ext": {"dsr": {"text": "x", "k": -1}}})
    else:
        from opensearchpy import OpenSearch, RequestError

        client = OpenSearch(served.url)
        resp = client.search(index=served.index, body=body)
        with pytest.raises(RequestError):
            client.search(index=served.index, body={"ext": {"dsr": {"text": "x", "k": -1}}})
    assert len(resp["hits"]["hits"]) == 5
    assert all("_explanation" in h for h in resp["hits"]["hits"])


def test_sidecar_down_degrades_to_term_only_with_a_warning(indexed, serve_thread):
    backend, index, _ = indexed
    dead = RemoteVectorIndex(f"http://127.0.0.1:{free_port()}", timeout=2.0)
    with serve_thread(make_app(backend, index, dead)) as url:
        r = httpx.post(f"{url}/{index}/_search", json={"size": 5, "explain": True,
                                                       "ext": {"dsr": {"text": "red sneakers"}}})
    assert r.status_code == 200, r.text
    assert r.headers["warning"].startswith('299 dsr "vector search unavailable')
    out = r.json()
    assert out["ext"]["dsr"]["degraded"] is True and out["ext"]["dsr"]["vector_hits"] == 0
    assert out["hits"]["hits"]
    for h in out["hits"]["hits"]:
        assert h["_explanation"]["details"][0]["description"].startswith("term: BM25")
        assert "red" in h["_source"]["title"] or "sneakers" in h["_source"]["title"]


def test_wrong_index_and_body_size_limit(indexed, serve_thread):
    backend, index, sidecar = indexed
    with serve_thread(make_app(backend, index, sidecar, max_body_bytes=2000)) as url:
        wrong = httpx.post(f"{url}/other-index/_search", json={"ext": {"dsr": {"text": "red"}}})
        big = httpx.post(f"{url}/{index}/_search", json={"ext": {"dsr": {"text": "red " * 1000}}})
        big_put = httpx.put(f"{url}/{index}/_doc/zz", content=b'{"title": "' + b"x" * 5000 + b'"}',
                            headers={"content-type": "application/json"})
    assert wrong.status_code == 400 and "served for index" in wrong.json()["error"]["reason"]
    assert big.status_code == 413 and big.json()["status"] == 413
    assert big_put.status_code in (413, 501)


def test_a_sidecar_neighbour_missing_from_the_index_is_skipped_with_a_warning(indexed, serve_thread):
    backend, index, sidecar = indexed
    ghost = HashingEncoder(DIM).encode_queries(["purple unicorn slippers"])
    sidecar.upsert(["ghost-1"], ghost)  # in the sidecar, never written to the index
    with serve_thread(make_app(backend, index, sidecar)) as url:
        r = httpx.post(f"{url}/{index}/_search",
                       json={"size": 5, "ext": {"dsr": {"text": "purple unicorn slippers", "k": 10}}})
    assert r.status_code == 200, r.text
    assert "ghost-1" not in [h["_id"] for h in r.json()["hits"]["hits"]]
    assert "not found in index" in r.headers["warning"]
    assert r.json()["ext"]["dsr"]["degraded"] is False


def test_the_engines_own_knn_can_be_the_vector_side(indexed):
    backend, index, _ = indexed
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), None, CheapestFirst(), engine_knn=True)
    try:
        result = searcher.run(SearchRequest("red sneakers", size=5, term_k=20, knn_k=20, filters={"brand": "acme"}))
    finally:
        searcher.close()
    assert result.vector_source == "engine" and not result.degraded, result.warnings
    assert result.vector_hits > 0
    assert all(h.source["brand"] == "acme" for h in result.hits)
    assert any(h.vector is not None for h in result.hits)
    assert [h.source["price"] for h in result.hits] == sorted(h.source["price"] for h in result.hits)


def test_a_failing_ranker_degrades_to_the_fused_order(indexed):
    backend, index, sidecar = indexed
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), sidecar, BrokenRanker())
    try:
        result = searcher.run(SearchRequest("blue boots", size=5, term_k=10, knn_k=10))
    finally:
        searcher.close()
    assert result.degraded and "re-ranking unavailable" in result.warnings[0]
    assert result.reranked == 0 and all(h.rerank is None for h in result.hits)
    assert [h.fused.rank for h in result.hits] == [1, 2, 3, 4, 5]


def test_every_candidate_the_ranker_reads_has_its_source_even_deep_vector_neighbours(indexed):
    # no term matches: the whole re-rank head is sidecar neighbours, most beyond the early fetch
    backend, index, sidecar = indexed
    ranker = CheapestFirst()
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), sidecar, ranker)
    try:
        result = searcher.run(SearchRequest("zzqx", size=10, term_k=50, knn_k=80, rerank_top=80))
    finally:
        searcher.close()
    assert result.term_hits == 0 and result.vector_hits == 80 and result.reranked == 80
    assert len(ranker.seen) == 80
    assert all(c.item.get("title") and "price" in c.item for c in ranker.seen)
    assert [h.source["price"] for h in result.hits] == sorted(h.source["price"] for h in result.hits)


def test_item_records_feed_the_ranker_and_only_the_page_is_fetched_from_the_cluster(indexed, tmp_path):
    # no term matches: every candidate is a sidecar neighbour, and none has a source yet
    backend, index, sidecar = indexed
    spy, ranker = MgetCounting(backend), TitlePriceRanker()
    searcher = HybridSearcher(spy, index, HashingEncoder(DIM), sidecar, ranker,  # type: ignore[arg-type]
                              item_records=records(tmp_path))
    try:
        result = searcher.run(SearchRequest("zzqx", size=10, term_k=50, knn_k=80, rerank_top=80))
    finally:
        searcher.close()
    assert result.reranked == 80 and not result.warnings
    assert all(set(c.item) == {"id", "title", "price"} for c in ranker.seen)  # the records, not the sources
    assert spy.mget_ids == [[h.id for h in result.hits]]  # one mget: the page
    assert all(h.source["description"] and "embedding" not in h.source for h in result.hits)
    assert [h.source["price"] for h in result.hits] == sorted(h.source["price"] for h in result.hits)


def test_a_recorded_neighbour_gone_from_the_index_leaves_the_page_with_a_warning(indexed, tmp_path):
    backend, index, sidecar = indexed
    sidecar.upsert(["ghost-1"], HashingEncoder(DIM).encode_queries(["purple unicorn slippers"]))
    rows = [*catalog(), {"id": "ghost-1", "title": "purple unicorn slippers", "price": 0.0}]  # the cheapest
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), sidecar, TitlePriceRanker(),
                              item_records=records(tmp_path, rows))
    try:
        result = searcher.run(SearchRequest("purple unicorn slippers", size=5, term_k=10, knn_k=10))
    finally:
        searcher.close()
    assert len(result.hits) == 5 and "ghost-1" not in [h.id for h in result.hits]
    assert any("not found in index" in w for w in result.warnings) and not result.degraded
    assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]


def test_records_missing_a_field_the_ranker_reads_are_not_used(indexed, tmp_path):
    backend, index, sidecar = indexed
    ranker = TitlePriceRanker()
    ranker.item_fields = ("title", "price", "description")  # type: ignore[misc]
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), sidecar, ranker,
                              item_records=records(tmp_path))
    try:
        result = searcher.run(SearchRequest("zzqx", size=10, term_k=50, knn_k=40, rerank_top=40))
    finally:
        searcher.close()
    assert result.reranked == 40 and all(c.item.get("description") for c in ranker.seen)
