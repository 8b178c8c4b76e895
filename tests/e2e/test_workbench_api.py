"""The workbench's JSON API on real engines: columns with every stage, grades and NDCG, explanations, cases.

The shoe catalog (plus two items whose strings are hostile HTML) is indexed in Elasticsearch and
OpenSearch with hashing-encoder vectors in an in-process FAISS sidecar, the ranker is an XGBoost model
trained on the catalog's known grades, and `dsr serve` (uvicorn in a thread) starts with a judgments
file of two queries. Everything is asked over HTTP, as the page asks it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dsr.backends.base import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.eval.judgments import read_judgments
from dsr.reranker.load import load_reranker
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.server.workbench.metrics import column_metrics
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

from ..support.shoes import flat_sidecar, index_with_vectors
from ..support.workbench_shop import HOSTILE_TITLE, judgments, shop_catalog, train_ranker, write_judgments

DIM = 64
JUDGED = ["red sneakers", "blue boots"]
COLUMNS = ["bm25", "knn", "hybrid+rerank"]


@dataclass
class Bench:
    url: str
    backend: SearchBackend
    index: str
    sidecar: FaissIndex
    data_dir: Path
    file_grades: dict[str, dict[str, int]]

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/_dsr/api/{path}", json=body, timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}/_dsr/api/{path}", timeout=60, **kwargs)

    def search(self, text: str, columns: list[Any] = COLUMNS, **body: Any) -> dict[str, Any]:
        r = self.post("search", {"text": text, "columns": columns, **body})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def ranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_ranker(tmp_path_factory.mktemp("ranker") / "xgboost", shop_catalog())


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


def index_shop(backend: SearchBackend) -> tuple[str, FaissIndex]:
    index = f"dsr-e2e-bench-{uuid.uuid4().hex[:8]}"
    rows = shop_catalog()
    return index, flat_sidecar(rows, index_with_vectors(backend, index, rows, DIM), DIM)


@pytest.fixture
def bench(cluster: SearchBackend, ranker_dir: Path, tmp_path: Path, serve_thread: Any) -> Iterator[Bench]:
    index, sidecar = index_shop(cluster)
    file_grades = judgments(JUDGED, shop_catalog(), per_query=4)
    team = write_judgments(tmp_path / "team.tsv", file_grades)
    searcher = HybridSearcher(cluster, index, HashingEncoder(DIM), sidecar, load_reranker(ranker_dir))
    data_dir = tmp_path / "data"
    settings = ServeSettings(ConnectionSettings(engine_url=cluster.url, data_dir=data_dir), index=index,
                             judgments=team)
    try:
        with serve_thread(create_app(settings, searcher=searcher)) as url:
            yield Bench(url, cluster, index, sidecar, data_dir, file_grades)
    finally:
        cluster.delete_index(index)


def ranking(column: dict[str, Any]) -> list[str]:
    return column["ranking"]


def test_three_columns_show_each_hit_at_every_stage_it_went_through(bench):
    out = bench.search("red sneakers")
    bm25, knn, reranked = out["columns"]
    assert [c["name"] for c in out["columns"]] == COLUMNS
    assert all(len(c["hits"]) == 10 for c in out["columns"])
    for column in out["columns"]:
        assert [h["rank"] for h in column["hits"]] == list(range(1, 11))
        assert ranking(column)[:10] == [h["id"] for h in column["hits"]]
    # bm25: the term side alone, in its order; knn: the vector side alone, in its order
    assert all(h["stages"]["vector"] is None and h["stages"]["rerank"] is None for h in bm25["hits"])
    assert [h["stages"]["term"]["rank"] for h in bm25["hits"]] == list(range(1, 11))
    assert all(h["stages"]["term"] is None for h in knn["hits"])
    assert [h["stages"]["vector"]["rank"] for h in knn["hits"]] == list(range(1, 11))
    # hybrid + rerank: fused, then ordered by the ranker; both sides found the best hits
    assert [h["stages"]["rerank"]["rank"] for h in reranked["hits"]] == list(range(1, 11))
    assert reranked["reranked"] == reranked["pool"] and reranked["vector_source"] == "sidecar"
    assert any(h["stages"]["term"] and h["stages"]["vector"] for h in reranked["hits"])
    scores = [h["stages"]["rerank"]["score"] for h in reranked["hits"]]
    assert scores == sorted(scores, reverse=True) and [h["score"] for h in reranked["hits"]] == scores
    first = reranked["hits"][0]
    source = next(r for r in shop_catalog() if r["id"] == first["id"])
    assert (first["title"], first["brand"], first["price"]) == (source["title"], source["brand"], source["price"])


def test_the_pages_column_is_the_ext_dsr_search_of_the_same_configuration(bench):
    column = {"pipeline": "hybrid-linear", "weights": {"term": 0.4, "vector": 1.0}, "k": 30, "term_k": 30,
              "rerank": True, "rerank_top": 20}
    page = bench.search("blue boots", [column], size=20)["columns"][0]
    ext = {"text": "blue boots", "fusion": "linear", "weights": {"term": 0.4, "vector": 1.0}, "k": 30, "term_k": 30,
           "rerank": True, "rerank_top": 20}
    direct = httpx.post(f"{bench.url}/{bench.index}/_search", json={"size": 20, "ext": {"dsr": ext}}, timeout=30)
    assert direct.status_code == 200, direct.text
    assert [h["id"] for h in page["hits"]] == [h["_id"] for h in direct.json()["hits"]["hits"]]
    assert [h["score"] for h in page["hits"]] == pytest.approx([h["_score"] for h in direct.json()["hits"]["hits"]])
    assert page["config"]["fusion"] == "linear" and page["config"]["rerank_top"] == 20


def test_moves_and_only_here_compare_each_hit_with_the_other_columns(bench):
    out = bench.search("red sneakers", size=10)
    rankings = [ranking(c) for c in out["columns"]]
    for n, column in enumerate(out["columns"]):
        shown_elsewhere = {i for m, r in enumerate(rankings) if m != n for i in r[:10]}
        for place, hit in enumerate(column["hits"], start=1):
            assert hit["only_here"] == (hit["id"] not in shown_elsewhere)
            for move in hit["moves"]:
                other = rankings[move["column"]]
                if hit["id"] in other:
                    assert move["rank"] == other.index(hit["id"]) + 1
                    assert move["delta"] == move["rank"] - place
                else:
                    assert move["rank"] is None and move["delta"] is None
            assert sorted(m["column"] for m in hit["moves"]) == [m for m in range(3) if m != n]
    assert any(h["only_here"] for c in out["columns"] for h in c["hits"])


def test_metrics_are_those_of_the_judgments_file_at_start(bench):
    out = bench.search("red sneakers")
    grades = bench.file_grades["red sneakers"]
    for column in out["columns"]:
        assert column["metrics"] == column_metrics(ranking(column), grades).to_json()
        for hit in column["hits"]:
            assert hit["grade"] == grades.get(hit["id"])
    assert out["judged"] == len(grades) == 8
    unjudged = bench.search("green sandals")["columns"][0]["metrics"]
    assert unjudged["ndcg10"] is None and unjudged["unjudged10"] == 1.0 and unjudged["judged"] == 0


def test_a_grade_given_in_the_page_moves_ndcg_is_kept_and_exported(bench):
    out = bench.search("red sneakers")
    bm25 = out["columns"][0]
    top = bm25["hits"][0]
    assert top["grade"] == 3  # the file's grade
    rankings = [ranking(c) for c in out["columns"]]
    before = bench.post("metrics", {"text": "red sneakers", "rankings": rankings}).json()["metrics"]

    r = httpx.put(f"{bench.url}/_dsr/api/judgments", json={"query": "red sneakers", "item_id": top["id"], "grade": 0},
                  timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["judgments"] == [{"query": "red sneakers", "item_id": top["id"], "grade": 0.0}]
    after = bench.post("metrics", {"text": "red sneakers", "rankings": rankings}).json()["metrics"]
    assert after[0]["ndcg10"] < before[0]["ndcg10"]
    expected = {**bench.file_grades["red sneakers"], top["id"]: 0}
    assert after[0] == column_metrics(rankings[0], expected).to_json()
    again = bench.search("red sneakers")["columns"][0]
    assert again["hits"][0]["grade"] == 0 and again["metrics"]["ndcg10"] == after[0]["ndcg10"]

    listed = bench.get("judgments", params={"query": "red sneakers"}).json()["judgments"]
    assert {"query": "red sneakers", "item_id": top["id"], "grade": 0.0, "origin": "page"} in listed
    stored = bench.data_dir / "workbench" / "judgments.tsv"
    assert stored.read_text().splitlines() == ["query\titem_id\tgrade", f"red sneakers\t{top['id']}\t0"]

    export = bench.get("judgments/export")
    assert export.headers["content-type"].startswith("text/tab-separated-values")
    assert "attachment" in export.headers["content-disposition"]
    path = bench.data_dir / "exported.tsv"
    path.write_bytes(export.content)
    rows, rejected = read_judgments(path)
    assert not rejected
    exported = {(r.query, r.item_id): r.grade for r in rows}
    assert exported[("red sneakers", top["id"])] == 0
    assert len(exported) == sum(len(g) for g in bench.file_grades.values())

    taken_back = httpx.put(f"{bench.url}/_dsr/api/judgments",
                           json={"judgments": [{"query": "red sneakers", "item_id": top["id"], "grade": None}]},
                           timeout=30).json()
    assert taken_back["judgments"][0]["grade"] == 3  # the file's again


def test_explain_gives_the_clusters_explanation_the_dsr_similarity_and_the_rankers_inputs(bench):
    text = "red sneakers"
    column = {"pipeline": "hybrid+rerank", "k": 10}  # few neighbours: most term hits are term-only
    hits = bench.search(text, [column], size=40)["columns"][0]["hits"]
    both = next(h for h in hits if h["stages"]["term"] and h["stages"]["vector"])
    term_only = next(h for h in hits if h["stages"]["term"] and not h["stages"]["vector"])
    query = HashingEncoder(DIM).encode_queries([text])[0]
    for hit in (both, term_only):
        r = bench.post("explain", {"text": text, "column": column, "id": hit["id"]})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["hit"]["id"] == hit["id"]
        term = out["term"]
        assert term["matched"] and term["score"] == pytest.approx(hit["stages"]["term"]["score"], rel=1e-5)
        assert term["explanation"]["value"] == pytest.approx(hit["stages"]["term"]["score"], rel=1e-5)
        assert term["explanation"]["details"]  # the cluster's own tree, down to the terms
        assert "weight(" in str(term["explanation"])
        ranker = out["ranker"]
        assert ranker["ranker"] == "xgboost" and ranker["reproduced"]
        assert ranker["score"] == pytest.approx(hit["stages"]["rerank"]["score"], abs=1e-4)
        assert sum(i["effect"] for i in ranker["inputs"]) + ranker["bias"] == pytest.approx(ranker["score"], abs=1e-3)
        inputs = {i["name"]: i["value"] for i in ranker["inputs"]}
        assert inputs["bm25"] == pytest.approx(hit["stages"]["term"]["score"], rel=1e-5)
        expected = bench.sidecar.similarities(np.asarray(query), [hit["id"]])[hit["id"]]
        assert out["dsr"]["similarity"] == pytest.approx(expected, abs=1e-5)
        assert inputs["dsr"] == pytest.approx(expected, abs=1e-5) and inputs["has_dsr"] == 1.0
    assert bench.post("explain", {"text": text, "column": column, "id": both["id"]}).json()["dsr"]["source"] == \
        "vector side"
    assert bench.post("explain", {"text": text, "column": column, "id": term_only["id"]}).json()["dsr"]["source"] == \
        "looked up"


def test_explain_says_why_a_side_or_the_ranker_has_nothing_to_say(bench):
    knn = bench.search("red sneakers", ["knn"], size=50)["columns"][0]["hits"]
    vector_only = next(h for h in knn if not any(w in h["title"] for w in ("red", "sneakers")))
    out = bench.post("explain", {"text": "red sneakers", "column": "knn", "id": vector_only["id"]}).json()
    assert out["term"]["matched"] is False and "vector side alone" in out["term"]["note"]
    assert out["term"]["column_has_term_side"] is False
    assert out["ranker"] == {"note": "this column does not re-rank"}
    assert out["dsr"]["similarity"] == pytest.approx(vector_only["stages"]["vector"]["score"])
    beyond = bench.post("explain", {"text": "red sneakers", "column": {"pipeline": "hybrid+rerank", "rerank_top": 3},
                                    "id": knn[-1]["id"]}).json()
    assert "not among the 3 fused candidates" in beyond["ranker"]["note"]
    missing = bench.post("explain", {"text": "red sneakers", "column": "bm25", "id": vector_only["id"]})
    assert missing.status_code == 404 and "not among the first" in missing.json()["error"]["reason"]


def test_judged_queries_are_listed_worst_first_and_a_case_scores_a_set_of_queries(bench):
    columns = ["bm25", {"pipeline": "hybrid+rerank", "name": "mine"}]
    listed = bench.post("queries", {"columns": columns}).json()
    assert [c["name"] for c in listed["columns"]] == ["bm25", "mine"]
    assert sorted(q["query"] for q in listed["queries"]) == sorted(JUDGED) and not listed["truncated"]
    first = [q["metrics"][0]["ndcg10"] for q in listed["queries"]]
    assert first == sorted(first)
    for q in listed["queries"]:
        column = bench.search(q["query"], ["bm25"])["columns"][0]
        assert q["metrics"][0] == column["metrics"]
    means = listed["columns"][0]["means"]
    assert means["ndcg10"] == pytest.approx(sum(first) / 2) and means["scored"] == 2

    saved = httpx.put(f"{bench.url}/_dsr/api/cases/colours", json={"queries": ["red sneakers", "green sandals"]},
                      timeout=30)
    assert saved.status_code == 200 and saved.json()["queries"] == ["red sneakers", "green sandals"]
    assert bench.get("cases").json()["cases"] == {"colours": ["red sneakers", "green sandals"]}
    scored = bench.post("case", {"name": "colours", "columns": columns}).json()
    assert scored["name"] == "colours" and len(scored["queries"]) == 2
    assert scored["columns"][1]["means"]["queries"] == 2 and scored["columns"][1]["means"]["scored"] == 1
    assert scored["queries"][-1]["query"] == "green sandals"  # unscored last
    ad_hoc = bench.post("case", {"queries": ["red sneakers"], "columns": ["bm25"]}).json()
    assert ad_hoc["columns"][0]["means"]["ndcg10"] == scored["queries"][0]["metrics"][0]["ndcg10"]
    assert httpx.delete(f"{bench.url}/_dsr/api/cases/colours", timeout=30).status_code == 200
    assert bench.post("case", {"name": "colours", "columns": columns}).status_code == 404


def test_hostile_strings_come_back_as_the_data_they_are(bench):
    hits = bench.search("trail runner", ["bm25"])["columns"][0]["hits"]
    hostile = {h["id"]: h for h in hits}
    assert hostile["x-html"]["title"] == HOSTILE_TITLE
    assert hostile["x-html"]["image"] == "https://images.invalid/trail-runner.png"
    assert hostile["x-js"]["image"] is None  # a javascript: URL is never offered as a picture


def test_the_page_and_api_carry_the_restrictive_headers_and_answer_their_own_origin_only(bench):
    page = httpx.get(f"{bench.url}/_dsr/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/_dsr/static/workbench.js" defer></script>' in page.text
    for response in (page, httpx.get(f"{bench.url}/_dsr/static/workbench.js", timeout=30), bench.get("info")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{bench.url}/_dsr", timeout=30).headers["location"] == "/_dsr/"
    assert httpx.get(f"{bench.url}/_dsr/static/secrets.py", timeout=30).status_code == 404

    foreign = bench.post("search", {"text": "red", "columns": ["bm25"]}, headers={"Origin": "https://shop.example"})
    assert foreign.status_code == 403
    own = bench.post("search", {"text": "red", "columns": ["bm25"]}, headers={"Origin": bench.url})
    assert own.status_code == 200
    form = httpx.post(f"{bench.url}/_dsr/api/search", content=b'{"text": "red", "columns": ["bm25"]}',
                      headers={"Content-Type": "text/plain"}, timeout=30)
    assert form.status_code == 415
    bad = bench.post("search", {"text": "red", "columns": [{"pipeline": "bm25", "term_k": 5000}]})
    assert bad.status_code == 400 and "column [bm25]" in bad.json()["error"]["reason"]
    unknown = bench.get("nothing/here")
    assert unknown.status_code == 404 and "GET /_dsr/api lists them" in unknown.json()["error"]["reason"]
    listed = {(e["method"], e["path"]) for e in bench.get("").json()["endpoints"]}
    assert {("POST", "/_dsr/api/search"), ("GET", "/_dsr/api/judgments/export"), ("POST", "/_dsr/api/case")} <= listed
    info = bench.get("info").json()
    assert info["index"] == bench.index and info["ranker"] == "XGBoostRanker" and info["vector_source"] == "sidecar"
    assert info["judgments"]["loaded"] == 16 and info["judgments"]["loaded_from"] == "team.tsv"


def test_the_cluster_s_own_api_still_passes_through_beside_the_workbench(bench):
    count = httpx.get(f"{bench.url}/{bench.index}/_count", timeout=30)
    assert count.status_code == 200 and count.json()["count"] == len(shop_catalog())
    cat = httpx.get(f"{bench.url}/_cat/indices/{bench.index}", params={"format": "json"}, timeout=30)
    assert cat.status_code == 200 and cat.json()[0]["index"] == bench.index


def test_on_the_embedded_index_the_workbench_searches_and_says_what_it_cannot_explain(embedded_backend, tmp_path,
                                                                                      serve_thread):
    index, sidecar = index_shop(embedded_backend)
    searcher = HybridSearcher(embedded_backend, index, HashingEncoder(DIM), sidecar)
    settings = ServeSettings(ConnectionSettings(engine_url="embedded", data_dir=tmp_path), index=index)
    with serve_thread(create_app(settings, searcher=searcher)) as url:
        out = httpx.post(f"{url}/_dsr/api/search", json={"text": "red sneakers", "columns": ["bm25", "hybrid-rrf"]},
                         timeout=30).json()
        assert [len(c["hits"]) for c in out["columns"]] == [10, 10]
        explained = httpx.post(f"{url}/_dsr/api/explain", json={"text": "red sneakers", "column": "hybrid+rerank",
                                                                 "id": out["columns"][1]["hits"][0]["id"]},
                               timeout=30).json()
        assert "embedded index runs no query DSL" in explained["term"]["note"]
        assert explained["ranker"] == {"note": "no ranker is served (dsr serve --ranker)"}
        assert math.isfinite(explained["dsr"]["similarity"])
