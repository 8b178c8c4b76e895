"""A shop's own, unchanged search requests through `dsr serve`, answered hybrid on Elasticsearch and OpenSearch.

The shop owns its index and mapping (keyword `brand`, `category` and `group` (a product family of
two or three colours), text `title` with a keyword sub-field, float `price`); dsr only adds a FAISS
sidecar of hashing-encoder vectors beside it. The index is configured `hybrid = true`, so a request
whose query holds a shopper's text is answered hybrid without any `ext.dsr`.

A hybrid answer is the cluster's own answer over the candidate set (the term side's matches and the
vector side's neighbours), in the final (fused and re-ranked) order. So every test takes the
candidate set from the hybrid answer itself (the same query, one page large enough for all of them),
sends the shop's request straight to the cluster with its query replaced by one that matches exactly
those candidates, and compares: facets, highlights, field sorts, totals, collapse, fields, named
queries and suggestions must be the cluster's; `_score` order must be the hybrid final order; and
what cannot be answered hybrid is the cluster's own answer, byte for byte.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dsr.backends.base import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.server.serve_config import ServedEntry
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

from ..support.shoes import CheapestFirst, catalog

DIM = 64
TERM_K = 20  # the term side's depth
KNN_K = 15  # the vector side's depth
ALL = 100  # a page larger than any candidate set (at most TERM_K + KNN_K)

MAPPING = {"properties": {
    "id": {"type": "keyword"},
    "title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
    "description": {"type": "text"},
    "brand": {"type": "keyword"},
    "category": {"type": "keyword"},
    "group": {"type": "keyword"},
    "price": {"type": "float"},
}}
"""The shop's own mapping: no dsr field in it, no embedding."""

TEXT = {"multi_match": {"query": "red sneakers", "fields": ["title", "description"]}}
"""The shop's query for a shopper who typed "red sneakers" (any of the words matches)."""

FACETS = {
    "brands": {"terms": {"field": "brand"}},
    "prices": {"range": {"field": "price", "ranges": [{"to": 70}, {"from": 70, "to": 90}, {"from": 90}]}},
    "price_steps": {"histogram": {"field": "price", "interval": 10}},
}


def shop_catalog() -> list[dict[str, Any]]:
    """The shoe catalog with product families: in each run of five, the first two colours are one
    family and the other three another (so a family has two or three members of the same kind)."""
    rows = catalog()
    for i, row in enumerate(rows):
        row["group"] = f"f{(i // 5) * 2 + (0 if i % 5 < 2 else 1):02d}"
    return rows


ROWS = {r["id"]: r for r in shop_catalog()}


@dataclass(frozen=True)
class Shop:
    """The shop's index (and an alias of it) on one engine, served hybrid by `dsr serve` at `url`."""

    url: str
    backend: SearchBackend
    index: str
    alias: str
    sidecar: FaissIndex

    def search(self, body: Mapping[str, Any], *, target: str | None = None, **params: Any) -> httpx.Response:
        """The request through dsr serve."""
        return httpx.post(f"{self.url}/{target or self.index}/_search", json=body, params=params, timeout=30)

    def cluster(self, body: Mapping[str, Any], **params: Any) -> httpx.Response:
        """The same request straight to the cluster."""
        return httpx.post(f"{self.backend.url}/{self.index}/_search", json=body, params=params, timeout=30)

    def hybrid(self, body: Mapping[str, Any], *, target: str | None = None, **params: Any) -> dict[str, Any]:
        """The answer through dsr serve, which must be a hybrid one."""
        r = self.search(body, target=target, **params)
        assert r.status_code == 200, r.text
        assert r.headers["x-dsr-path"] == "hybrid", r.headers.get("x-dsr-reason")
        return r.json()

    def direct(self, body: Mapping[str, Any], **params: Any) -> dict[str, Any]:
        """The cluster's own answer."""
        r = self.cluster(body, **params)
        assert r.status_code == 200, r.text
        assert "x-dsr-path" not in r.headers
        return r.json()

    def candidates(self, query: Mapping[str, Any], ext: Mapping[str, Any] | None = None) -> list[str]:
        """The candidate set of `query`, in the final order: every hit of one page large enough."""
        body: dict[str, Any] = {"query": query, "size": ALL, "_source": False}
        if ext is not None:
            body["ext"] = {"dsr": ext}
        out = self.hybrid(body)
        found = ids(out)
        assert 0 < len(found) < ALL and out["hits"]["total"] == {"value": len(found), "relation": "eq"}
        return found


@pytest.fixture(scope="module", params=["elasticsearch", "opensearch"])
def shop(request: pytest.FixtureRequest, serve_thread: Any) -> Iterator[Shop]:
    backend: SearchBackend = request.getfixturevalue("es_backend" if request.param == "elasticsearch"
                                                     else "os_backend")
    index = f"dsr-e2e-shop-{uuid.uuid4().hex[:8]}"
    alias = f"{index}-live"
    client: Any = backend.client  # type: ignore[attr-defined]
    client.indices.create(index=index, body={"mappings": MAPPING})
    try:
        client.indices.put_alias(index=index, name=alias)
        rows = shop_catalog()
        written = backend.bulk_upsert(index, rows)
        assert written.ok, written.failed[:3]
        backend.refresh(index)
        sidecar = FaissIndex(DIM, kind="flat", device="cpu")
        sidecar.upsert([r["id"] for r in rows], HashingEncoder(DIM).encode_items(rows))
        with serve_thread(make_app(backend, index, sidecar, served=index)) as url:
            yield Shop(url, backend, index, alias, sidecar)
    finally:
        backend.delete_index(index)


def make_app(backend: SearchBackend, index: str, sidecar: FaissIndex, *, served: str) -> Any:
    """dsr serve answering `served` (the index, or an alias of it) hybrid by default."""
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), sidecar, CheapestFirst(),
                              term_k=TERM_K, knn_k=KNN_K)
    settings = ServeSettings(ConnectionSettings(backend.url), index=served,
                             entries=(ServedEntry(served, hybrid=True, k=KNN_K, term_k=TERM_K),))
    return create_app(settings, searcher=searcher)


def ids(answer: Mapping[str, Any]) -> list[str]:
    return [h["_id"] for h in answer["hits"]["hits"]]


def only(candidates: list[str]) -> dict[str, Any]:
    """A query that matches exactly `candidates`."""
    return {"bool": {"filter": [{"ids": {"values": candidates}}]}}


def scored_by(query: Mapping[str, Any], candidates: list[str]) -> dict[str, Any]:
    """A query that matches exactly `candidates`, scored (and highlighted, named) by `query`."""
    return {"bool": {"filter": [{"ids": {"values": candidates}}], "should": [dict(query)]}}


def by_id(answer: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {h["_id"]: h.get(key) for h in answer["hits"]["hits"]}


def without_took(content: bytes) -> bytes:
    """An answer's bytes with its `took` (the one part two identical searches differ in) set to 0."""
    return re.sub(rb'"took":\d+', b'"took":0', content, count=1)


def stage(hit: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The stage (`term side`, `vector side`) of a hit's hybrid explanation, if it was found by it."""
    fused = hit["_explanation"]["details"][0]
    return next((s for s in fused["details"] if s["description"].startswith(name)), None)


def contains(tree: Mapping[str, Any], explanation: Mapping[str, Any]) -> bool:
    return tree == explanation or any(contains(d, explanation) for d in tree.get("details", []))


# -- facets and post_filter -------------------------------------------------------------------------------------

def test_facets_are_the_clusters_over_the_candidate_set(shop):
    candidates = shop.candidates(TEXT)
    hybrid = shop.hybrid({"query": TEXT, "aggs": FACETS, "size": 0})
    direct = shop.direct({"query": only(candidates), "aggs": FACETS, "size": 0})
    assert hybrid["aggregations"] == direct["aggregations"]
    assert sum(b["doc_count"] for b in hybrid["aggregations"]["brands"]["buckets"]) == len(candidates)
    # not the counts of every match of the shop's query on the cluster
    assert hybrid["aggregations"] != shop.direct({"query": TEXT, "aggs": FACETS, "size": 0})["aggregations"]


def test_post_filter_narrows_the_hits_and_leaves_the_facets(shop):
    candidates = shop.candidates(TEXT)
    acme = [c for c in candidates if ROWS[c]["brand"] == "acme"]
    assert 0 < len(acme) < len(candidates)
    plain = shop.hybrid({"query": TEXT, "aggs": FACETS, "size": ALL})
    filtered = shop.hybrid({"query": TEXT, "aggs": FACETS, "size": ALL, "post_filter": {"term": {"brand": "acme"}}})
    assert filtered["aggregations"] == plain["aggregations"]
    assert ids(filtered) == acme  # in the final order
    assert filtered["hits"]["total"] == {"value": len(acme), "relation": "eq"}
    direct = shop.direct({"query": only(candidates), "aggs": FACETS, "size": ALL,
                          "post_filter": {"term": {"brand": "acme"}}})
    assert filtered["aggregations"] == direct["aggregations"]
    assert sorted(ids(filtered)) == sorted(ids(direct)) and filtered["hits"]["total"] == direct["hits"]["total"]


# -- restrictions on both sides ---------------------------------------------------------------------------------

RESTRICTED = {"bool": {
    "must": [{"multi_match": {"query": "red sneakers", "fields": ["title", "description"], "operator": "and"}},
             {"range": {"price": {"gte": 70}}}],
    "filter": [{"terms": {"brand": ["acme", "orbit"]}}],
    "must_not": [{"term": {"category": "Shoes > Boots"}}],
}}


def passes(doc_id: str) -> bool:
    row = ROWS[doc_id]
    return row["price"] >= 70 and row["brand"] in ("acme", "orbit") and row["category"] != "Shoes > Boots"


def test_filters_must_not_and_non_text_must_clauses_restrict_both_sides(shop):
    candidates = shop.candidates(RESTRICTED)
    assert all(passes(c) for c in candidates), [c for c in candidates if not passes(c)]
    restrictions = {"bool": {"filter": [{"ids": {"values": candidates}}, {"range": {"price": {"gte": 70}}},
                                        {"terms": {"brand": ["acme", "orbit"]}}],
                             "must_not": [{"term": {"category": "Shoes > Boots"}}]}}
    assert shop.direct({"query": restrictions, "size": 0})["hits"]["total"]["value"] == len(candidates)
    # some were found only by the vector side: the shop's query does not match them, its restrictions do
    term_matches = set(ids(shop.direct({"query": RESTRICTED, "size": ALL, "_source": False})))
    assert term_matches < set(candidates)
    # and the vector side would have brought items the restrictions exclude
    text_only = RESTRICTED["bool"]["must"][0]
    assert not all(passes(c) for c in shop.candidates(text_only))


# -- highlight --------------------------------------------------------------------------------------------------

def test_highlight_fragments_are_the_clusters_for_the_same_docs(shop):
    highlight = {"fields": {"title": {}, "description": {}}}
    candidates = shop.candidates(TEXT)
    hybrid = shop.hybrid({"query": TEXT, "highlight": highlight, "size": ALL})
    direct = shop.direct({"query": scored_by(TEXT, candidates), "highlight": highlight, "size": ALL})
    assert ids(hybrid) == candidates
    assert by_id(hybrid, "highlight") == by_id(direct, "highlight")
    assert any("<em>sneakers</em>" in " ".join(h.get("highlight", {}).get("title", []))
               for h in hybrid["hits"]["hits"])


# -- sort -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sort", [
    [{"price": "asc"}, {"id": "asc"}],
    [{"price": {"order": "desc"}}, {"id": "desc"}],
    [{"brand": "asc"}, {"price": "desc"}, "id"],
], ids=["price-asc", "price-desc", "brand-then-price"])
def test_a_field_sort_is_the_clusters_order_over_the_candidates(shop, sort):
    candidates = shop.candidates(TEXT)
    hybrid = shop.hybrid({"query": TEXT, "sort": sort, "size": ALL})
    direct = shop.direct({"query": only(candidates), "sort": sort, "size": ALL})
    assert ids(hybrid) == ids(direct) and set(ids(hybrid)) == set(candidates)
    assert by_id(hybrid, "sort") == by_id(direct, "sort")


def test_score_order_is_the_hybrid_final_order(shop):
    unsorted = shop.hybrid({"query": TEXT, "size": ALL})
    by_score = shop.hybrid({"query": TEXT, "size": ALL, "sort": ["_score"]})
    assert ids(by_score) == ids(unsorted)
    # the same text and term query as a dsr search: the same order and final scores
    dsr = shop.hybrid({"query": TEXT, "size": TERM_K + KNN_K, "ext": {"dsr": {"text": "red sneakers", "k": KNN_K,
                                                                                "term_k": TERM_K}}})
    assert ids(unsorted) == ids(dsr)
    assert by_id(unsorted, "_score") == by_id(dsr, "_score")
    scores = [h["_score"] for h in unsorted["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True) and unsorted["hits"]["max_score"] == scores[0]
    assert ids(shop.hybrid({"query": TEXT, "size": 10})) == ids(unsorted)[:10]  # page 1 is stable


def test_a_page_in_score_order_is_the_same_answer_as_the_one_pass_over_every_candidate(shop):
    # without a sort, collapse or post_filter the page is known before the cluster is asked, and the
    # final pass is split in a counting request and the page's; `sort: ["_score"]` takes the one pass
    body = {"query": TEXT, "aggs": FACETS, "highlight": {"fields": {"title": {}}}, "_source": ["title", "price"],
            "from": 3, "size": 7}
    split = shop.hybrid(body)
    one_pass = shop.hybrid({**body, "sort": ["_score"]})
    assert ids(split) == ids(one_pass) and len(ids(split)) == 7
    assert by_id(split, "_score") == by_id(one_pass, "_score")
    assert by_id(split, "highlight") == by_id(one_pass, "highlight")
    assert by_id(split, "_source") == by_id(one_pass, "_source")
    assert split["aggregations"] == one_pass["aggregations"]
    assert split["hits"]["total"] == one_pass["hits"]["total"]
    assert split["hits"]["max_score"] == one_pass["hits"]["max_score"]
    facets_only = shop.hybrid({**body, "size": 0})
    assert facets_only["hits"]["hits"] == [] and facets_only["aggregations"] == split["aggregations"]


# -- pages and totals -------------------------------------------------------------------------------------------

def pages(shop: Shop, body: Mapping[str, Any], size: int) -> tuple[list[list[str]], Any]:
    """The from/size pages of `body` until a short one, and the total the first page gave."""
    out, start, total = [], 0, None
    while True:
        answer = shop.hybrid({**body, "from": start, "size": size})
        total = total or answer["hits"]["total"]
        assert answer["hits"]["total"] == total
        out.append(ids(answer))
        if len(out[-1]) < size:
            return out, total
        start += size


def test_from_size_pages_concatenate_to_one_big_page_ending_at_the_exact_total(shop):
    candidates = shop.candidates(TEXT)
    split, total = pages(shop, {"query": TEXT}, 7)
    assert [i for page in split for i in page] == candidates
    assert total == {"value": len(candidates), "relation": "eq"}
    assert sum(len(p) for p in split) == total["value"]


def test_post_filtered_pages_end_at_the_count_of_candidates_it_keeps(shop):
    kept = [c for c in shop.candidates(TEXT) if ROWS[c]["price"] < 85]
    split, total = pages(shop, {"query": TEXT, "post_filter": {"range": {"price": {"lt": 85}}}}, 4)
    assert [i for page in split for i in page] == kept
    assert total == {"value": len(kept), "relation": "eq"}


def test_search_after_pages_equal_the_from_size_pages(shop):
    sort = [{"price": "desc"}, {"id": "asc"}]
    split, total = pages(shop, {"query": TEXT, "sort": sort}, 6)
    after_pages: list[list[str]] = []
    body: dict[str, Any] = {"query": TEXT, "sort": sort, "size": 6}
    while True:
        answer = shop.hybrid(body)
        hits = answer["hits"]["hits"]
        after_pages.append([h["_id"] for h in hits])
        if len(hits) < 6:
            break
        body = {**body, "search_after": hits[-1]["sort"]}
    assert after_pages == split
    joined = [i for page in after_pages for i in page]
    assert len(joined) == len(set(joined)) == total["value"]


def test_track_total_hits_is_honoured_as_the_cluster_honours_it(shop):
    candidates = shop.candidates(TEXT)
    assert len(candidates) > 5
    for track in (False, 5, True, 10_000):
        hybrid = shop.hybrid({"query": TEXT, "track_total_hits": track, "size": 3})
        direct = shop.direct({"query": only(candidates), "track_total_hits": track, "size": 3})
        assert hybrid["hits"].get("total") == direct["hits"].get("total"), track
    assert "total" not in shop.hybrid({"query": TEXT, "track_total_hits": False})["hits"]
    assert shop.hybrid({"query": TEXT, "track_total_hits": 5})["hits"]["total"] == {"value": 5, "relation": "gte"}


# -- collapse ---------------------------------------------------------------------------------------------------

def test_collapse_keeps_each_familys_best_placed_member(shop):
    candidates = shop.candidates(TEXT)
    family = {c: ROWS[c]["group"] for c in candidates}
    best: dict[str, str] = {}
    for c in candidates:  # the final order: the first member seen is the best placed
        best.setdefault(family[c], c)
    assert len(best) < len(candidates)  # some family has several candidates
    out = shop.hybrid({"query": TEXT, "size": ALL, "collapse": {
        "field": "group", "inner_hits": {"name": "colours", "size": 5, "sort": [{"id": "asc"}]}}})
    assert ids(out) == list(best.values())
    assert len(out["hits"]["hits"]) == len(set(family.values()))
    for hit in out["hits"]["hits"]:
        assert hit["fields"]["group"] == [family[hit["_id"]]]
        members = [h["_id"] for h in hit["inner_hits"]["colours"]["hits"]["hits"]]
        assert members == sorted(c for c in candidates if family[c] == family[hit["_id"]])


# -- what a hit shows -------------------------------------------------------------------------------------------

def test_source_filtering_fields_and_docvalue_fields_are_the_clusters(shop):
    shown = {"_source": ["title", "price"], "fields": ["title.keyword", "price"], "docvalue_fields": ["brand"]}
    candidates = shop.candidates(TEXT)
    hybrid = shop.hybrid({"query": TEXT, "size": ALL, **shown})
    direct = shop.direct({"query": only(candidates), "size": ALL, **shown})
    assert by_id(hybrid, "_source") == by_id(direct, "_source")
    assert by_id(hybrid, "fields") == by_id(direct, "fields")
    assert all(set(h["_source"]) == {"title", "price"} and set(h["fields"]) == {"title.keyword", "price", "brand"}
               for h in hybrid["hits"]["hits"])
    no_source = shop.hybrid({"query": TEXT, "size": 3}, _source="false")
    assert all("_source" not in h for h in no_source["hits"]["hits"])


def test_stored_fields_none_shows_hits_as_the_cluster_does_with_the_final_scores(shop):
    full = shop.hybrid({"query": TEXT, "size": 5})
    bare = shop.hybrid({"query": TEXT, "size": 5, "stored_fields": "_none_"})
    direct = shop.direct({"query": only(ids(full)), "size": 5, "stored_fields": "_none_"})
    assert [set(h) for h in bare["hits"]["hits"]] == [set(h) for h in direct["hits"]["hits"]]
    assert all("_id" not in h and "_source" not in h for h in bare["hits"]["hits"])
    assert [h["_score"] for h in bare["hits"]["hits"]] == [h["_score"] for h in full["hits"]["hits"]]
    assert bare["hits"]["max_score"] == full["hits"]["max_score"]


NAMED = {"bool": {
    "should": [{"match": {"title": {"query": "red sneakers", "_name": "title_words"}}},
               {"match": {"description": {"query": "acme", "_name": "acme_described"}}}],
    "filter": [{"range": {"price": {"gte": 60, "_name": "not_cheap"}}}],
}}


def test_named_queries_are_matched_as_on_the_cluster(shop):
    candidates = shop.candidates(NAMED)
    hybrid = by_id(shop.hybrid({"query": NAMED, "size": ALL}), "matched_queries")
    over_candidates = by_id(shop.direct({"query": scored_by(NAMED, candidates), "size": ALL}), "matched_queries")
    plain = by_id(shop.direct({"query": NAMED, "size": ALL}), "matched_queries")
    assert hybrid == over_candidates
    assert {i: hybrid[i] for i in hybrid if i in plain} == {i: plain[i] for i in hybrid if i in plain}
    assert any(m and "title_words" in m and "not_cheap" in m for m in hybrid.values())


# -- explain and profile ----------------------------------------------------------------------------------------

def test_explain_gives_each_stage_with_the_clusters_own_term_explanation(shop):
    hybrid = shop.hybrid({"query": TEXT, "size": ALL, "explain": True})
    cluster = {h["_id"]: h for h in shop.direct({"query": TEXT, "size": TERM_K, "explain": True})["hits"]["hits"]}
    term_found = vector_only = 0
    for hit in hybrid["hits"]["hits"]:
        assert hit["_explanation"]["value"] == hit["_score"]
        assert hit["_explanation"]["description"].startswith("dsr hybrid: re-ranked")
        term = stage(hit, "term side")
        if hit["_id"] in cluster:
            term_found += 1
            assert term is not None and term["value"] == pytest.approx(cluster[hit["_id"]]["_score"])
            assert contains(term, cluster[hit["_id"]]["_explanation"])
        else:
            vector_only += 1
            assert term is None and stage(hit, "vector side") is not None
    assert term_found == TERM_K and vector_only > 0


def test_function_score_scoring_stays_on_the_term_side(shop):
    boosted = {"function_score": {"query": TEXT, "field_value_factor": {"field": "price", "factor": 0.01},
                                  "boost_mode": "multiply"}}
    cluster = shop.direct({"query": boosted, "size": TERM_K, "_source": False})["hits"]["hits"]
    plain = {h["_id"]: h["_score"] for h in shop.direct({"query": TEXT, "size": ALL})["hits"]["hits"]}
    assert any(h["_score"] != pytest.approx(plain[h["_id"]]) for h in cluster)  # the function changes scores
    hybrid = shop.hybrid({"query": boosted, "size": ALL, "explain": True})["hits"]["hits"]
    terms = {h["_id"]: stage(h, "term side") for h in hybrid}
    for rank, h in enumerate(cluster, start=1):
        term = terms[h["_id"]]
        assert term is not None
        assert term["value"] == pytest.approx(h["_score"]) and term["description"].endswith(f"rank {rank}")
    assert sum(1 for t in terms.values() if t is not None) == TERM_K


def test_profile_holds_the_clusters_shards_and_the_dsr_stage_timings(shop):
    candidates = shop.candidates(TEXT)
    profile = shop.hybrid({"query": TEXT, "size": 3, "profile": True})["profile"]
    direct = shop.direct({"query": only(candidates), "size": 3, "profile": True})["profile"]
    assert [sorted(s) for s in profile["shards"]] == [sorted(s) for s in direct["shards"]] and profile["shards"]
    assert profile["shards"][0]["searches"][0]["query"]
    dsr = profile["dsr"]
    assert {"term", "vector", "fuse", "rerank", "final_pass", "total"} <= set(dsr["timings_ms"])
    assert all(v >= 0 for v in dsr["timings_ms"].values())
    assert dsr["candidates"] == len(candidates) and dsr["term_hits"] == TERM_K and dsr["vector_hits"] > 0


# -- timeout, suggest, URL parameters ---------------------------------------------------------------------------

def test_timeout_is_honoured_and_a_bad_one_is_the_clusters_error(shop):
    timed = shop.hybrid({"query": TEXT, "size": ALL, "timeout": "10s"})
    assert timed["timed_out"] is False and ids(timed) == shop.candidates(TEXT)
    bad = {"query": TEXT, "timeout": "soon"}
    through, direct = shop.search(bad), shop.cluster(bad)
    assert through.status_code == direct.status_code == 400
    assert through.json()["error"] == direct.json()["error"]


def test_a_term_suggester_is_the_clusters(shop):
    suggest = {"spelling": {"text": "red sneekers", "term": {"field": "title"}}}
    hybrid = shop.hybrid({"query": TEXT, "size": 3, "suggest": suggest})
    direct = shop.direct({"query": only(shop.candidates(TEXT)), "size": 3, "suggest": suggest})
    assert hybrid["suggest"] == direct["suggest"]
    assert hybrid["suggest"]["spelling"][1]["options"][0]["text"] == "sneakers"


def test_typed_keys_and_rest_total_hits_as_int_are_honoured(shop):
    body = {"query": TEXT, "size": 0, "aggs": FACETS,
            "suggest": {"spelling": {"text": "sneekers", "term": {"field": "title"}}}}
    params = {"typed_keys": "true", "rest_total_hits_as_int": "true"}
    candidates = shop.candidates(TEXT)
    hybrid = shop.hybrid(body, **params)
    direct = shop.direct({**body, "query": only(candidates)}, **params)
    assert set(hybrid["aggregations"]) == set(direct["aggregations"]) == {
        "sterms#brands", "range#prices", "histogram#price_steps"}
    assert hybrid["aggregations"] == direct["aggregations"] and hybrid["suggest"] == direct["suggest"]
    assert hybrid["hits"]["total"] == len(candidates)


# -- what is passed through -------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"query": {"term": {"brand": "acme"}}, "size": 5, "sort": [{"id": "asc"}]},
    {"query": {"match_all": {}}, "size": 3, "aggs": {"brands": {"terms": {"field": "brand"}}}},
    {"size": 2},
], ids=["term-filter", "match-all", "no-query"])
def test_a_request_without_a_shoppers_text_is_the_clusters_answer_byte_for_byte(shop, body):
    through, direct = shop.search(body), shop.cluster(body)
    assert through.status_code == direct.status_code == 200
    assert without_took(through.content) == without_took(direct.content)
    assert through.headers["x-dsr-path"] == "passthrough"
    assert "no shopper's text" in through.headers["x-dsr-reason"]


RESCORE = {"window_size": 10, "query": {"rescore_query": {"match": {"title": "red"}}, "query_weight": 0.5}}


def test_rescore_is_passed_through_untouched(shop):
    body = {"query": TEXT, "size": 5, "rescore": RESCORE}
    through, direct = shop.search(body), shop.cluster(body)
    assert through.status_code == direct.status_code == 200
    assert without_took(through.content) == without_took(direct.content)
    assert through.headers["x-dsr-path"] == "passthrough" and "rescore" in through.headers["x-dsr-reason"]


def test_rescore_with_ext_dsr_is_a_400_naming_it(shop):
    r = shop.search({"query": TEXT, "size": 5, "rescore": RESCORE, "ext": {"dsr": {"rerank": False}}})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "illegal_argument_exception"
    assert "['rescore']" in r.json()["error"]["reason"]


def test_ext_dsr_disabled_is_answered_as_the_cluster_answers_without_ext(shop):
    body = {"query": TEXT, "size": 5, "aggs": FACETS}
    through = shop.search({**body, "ext": {"dsr": {"enabled": False}}})
    direct = shop.cluster(body)
    assert through.status_code == direct.status_code == 200
    assert without_took(through.content) == without_took(direct.content)
    assert through.headers["x-dsr-path"] == "passthrough"


def test_ext_dsr_options_override_the_configured_defaults(shop):
    def answer(ext: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        body = {"query": TEXT, "size": ALL, "explain": True, "aggs": FACETS}
        return shop.hybrid({**body, "ext": {"dsr": ext}} if ext is not None else body)["hits"]["hits"]

    assert all(h["_explanation"]["description"].startswith("dsr hybrid: re-ranked") for h in answer())
    fused = answer({"rerank": False})
    assert all(h["_explanation"]["description"].startswith("dsr hybrid: fused order") for h in fused)
    fused_ranks = [int(h["_explanation"]["details"][0]["description"].rsplit(" ", 1)[1]) for h in fused]
    assert fused_ranks == list(range(1, len(fused) + 1))
    # no vector side and no ranker: the cluster's own top term_k, in its order
    cluster_top = ids(shop.direct({"query": TEXT, "size": TERM_K, "_source": False}))
    assert [h["_id"] for h in answer({"k": 0, "rerank": False})] == cluster_top
    assert {h["_id"] for h in answer({"k": 0})} == set(cluster_top)


def test_ext_dsr_options_without_a_text_take_the_shoppers_text_from_the_query(shop):
    """A body of only the keys a dsr search knows (`query`, `size`, ...) with `ext.dsr` options but no
    `ext.dsr.text` is still the shop's request: its text is the one in its query."""
    term_only = shop.candidates(TEXT, ext={"k": 0, "rerank": False})
    assert term_only == ids(shop.direct({"query": TEXT, "size": TERM_K, "_source": False}))


# -- aliases ----------------------------------------------------------------------------------------------------

def test_an_alias_configured_by_name_is_answered_hybrid_as_its_index(shop, serve_thread):
    with serve_thread(make_app(shop.backend, shop.index, shop.sidecar, served=shop.alias)) as url:
        aliased = Shop(url, shop.backend, shop.index, shop.alias, shop.sidecar)
        out = aliased.hybrid({"query": TEXT, "size": ALL, "aggs": FACETS}, target=shop.alias)
        assert ids(out) == shop.candidates(TEXT)
        assert {h["_index"] for h in out["hits"]["hits"]} == {shop.index}
        assert out["aggregations"] == shop.hybrid({"query": TEXT, "size": 0, "aggs": FACETS})["aggregations"]
        # the index the alias stands for is then known to be the one served: searched by its name, hybrid too
        assert ids(aliased.hybrid({"query": TEXT, "size": ALL})) == ids(out)


def test_the_index_a_configured_alias_stands_for_is_answered_hybrid_from_the_first_search(shop, serve_thread):
    """The concrete index behind a configured alias is served whether or not the alias was searched first."""
    with serve_thread(make_app(shop.backend, shop.index, shop.sidecar, served=shop.alias)) as url:
        aliased = Shop(url, shop.backend, shop.index, shop.alias, shop.sidecar)
        assert ids(aliased.hybrid({"query": TEXT, "size": ALL})) == shop.candidates(TEXT)


def test_an_alias_of_a_configured_index_is_the_clusters_plain_search_unless_ext_dsr_asks(shop):
    """Whether a plain search's target is served is decided by its name alone (no request to the
    cluster for the searches dsr does not serve), so an alias must be configured itself for its plain
    searches to be answered hybrid; a search with `ext.dsr` follows the alias to the served index."""
    body = {"query": TEXT, "size": 5, "aggs": FACETS}
    through = shop.search(body, target=shop.alias)
    direct = httpx.post(f"{shop.backend.url}/{shop.alias}/_search", json=body, timeout=30)
    assert through.status_code == direct.status_code == 200
    assert without_took(through.content) == without_took(direct.content)
    assert "x-dsr-path" not in through.headers
    asked = shop.hybrid({**body, "size": ALL, "ext": {"dsr": {}}}, target=shop.alias)
    assert ids(asked) == shop.candidates(TEXT)
    assert asked["aggregations"] == shop.hybrid(body)["aggregations"]


# -- the engines' own Python DSL clients ------------------------------------------------------------------------

def dsl_client(shop: Shop, url: str) -> Any:
    if shop.backend.flavor == "elasticsearch":
        from elasticsearch import Elasticsearch

        return Elasticsearch(url)
    from opensearchpy import OpenSearch

    return OpenSearch(url)


def dsl_search(shop: Shop, url: str) -> Any:
    """The shop's search written with the engine's Python DSL, on a client of `url`."""
    if shop.backend.flavor == "elasticsearch":
        from elasticsearch.dsl import Search
    else:
        from opensearchpy import Search  # type: ignore[assignment]
    search: Any = Search(using=dsl_client(shop, url), index=shop.index)
    search = (search.query("multi_match", query="red sneakers", fields=["title", "description"])
              .filter("range", price={"gte": 60}).exclude("term", brand="zenit"))
    search.aggs.bucket("brands", "terms", field="brand")
    search.aggs.bucket("prices", "histogram", field="price", interval=10)
    return search.highlight("title", "description").sort("-price", "id")[:ALL]


def test_the_engines_python_dsl_is_answered_hybrid(shop):
    through = dsl_search(shop, shop.url)
    answer = through.execute()
    candidates = [h.meta.id for h in answer]
    assert candidates and all(ROWS[c]["price"] >= 60 and ROWS[c]["brand"] != "zenit" for c in candidates)
    assert shop.search(through.to_dict()).headers["x-dsr-path"] == "hybrid"
    # hybrid: neighbours the shop's query does not match are among the hits
    cluster_url = shop.backend.url
    plain = dsl_search(shop, cluster_url).execute()
    assert set(candidates) - {h.meta.id for h in plain}

    body = through.to_dict()
    over_candidates = type(through).from_dict({**body, "query": scored_by(body["query"], candidates)})
    direct = over_candidates.using(dsl_client(shop, cluster_url)).index(shop.index).execute()
    assert [h.meta.id for h in answer] == [h.meta.id for h in direct]
    assert [list(h.meta.sort) for h in answer] == [list(h.meta.sort) for h in direct]
    assert answer.aggregations.to_dict() == direct.aggregations.to_dict()
    assert answer.hits.total.to_dict() == direct.hits.total.to_dict()

    def highlights(response: Any) -> dict[str, Any]:
        return {h.meta.id: h.meta.highlight.to_dict() for h in response if "highlight" in h.meta}

    assert highlights(answer) == highlights(direct) and highlights(answer)


# -- the configured depths --------------------------------------------------------------------------------------

def test_the_served_entrys_term_k_bounds_the_term_side(shop, serve_thread):
    """`term_k` of the `[[index]]` entry dsr serve starts with (here without a query tower: term only)."""
    entry = ServedEntry(shop.index, hybrid=True, model=None, term_k=5)
    settings = ServeSettings(ConnectionSettings(shop.backend.url), index=shop.index, model=None, entries=(entry,))
    with serve_thread(create_app(settings)) as url:
        served = Shop(url, shop.backend, shop.index, shop.alias, shop.sidecar)
        assert served.candidates(TEXT) == ids(shop.direct({"query": TEXT, "size": 5, "_source": False}))
