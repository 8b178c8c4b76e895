"""The final pass of a shop's hybrid search: the body the cluster gets, what is refused, and the answer's scores.

The cluster answers the shop's own body with its query replaced by one that matches exactly the
candidates and scores each by its place in the final order, so its `_score` order is the final
order; dsr then puts the final scores back, and its explanation per stage.
"""

from __future__ import annotations

from typing import Any

import pytest

from dsr.search.fusion import FusionConfig, FusionMode
from dsr.search.request import SearchRequest
from dsr.search.result import HybridHit, HybridResult, StageScore
from dsr.search.shop_query import ShopQuery, read_shop_query
from dsr.search.shop_search import (
    MAX_PLACED,
    REFUSED_BODY_KEYS,
    RELAYED_BODY_KEYS,
    RELAYED_PARAMS,
    ShopSearchRequest,
    _rescore_hits,
    candidates_query,
    explanation,
    final_body,
    refused_keys,
)

SHOP_QUERY = {"bool": {"must": [{"multi_match": {"query": "red sneakers", "fields": ["title"]}}],
                       "filter": [{"term": {"brand": "acme"}}]}}
SHOP = read_shop_query(SHOP_QUERY)


def hit(doc_id: str, score: float, rank: int, *, term: int | None = None, vector: int | None = None,
        rerank: int | None = None) -> HybridHit:
    return HybridHit(doc_id, score, rank, {}, fused=StageScore(score / 2, rank),
                     term=StageScore(10.0 - (term or 0), term) if term is not None else None,
                     vector=StageScore(0.9, vector) if vector is not None else None,
                     rerank=StageScore(score, rerank) if rerank is not None else None)


def order_of(n: int) -> tuple[HybridHit, ...]:
    """`n` candidates `c0`, `c1`, ..., best first, with final scores 0.9, 0.8, ... (distinct from any place)."""
    return tuple(hit(f"c{i}", round(0.9 - i * 0.0001, 6), i + 1) for i in range(n))


def result_of(order: tuple[HybridHit, ...], *, fusion: FusionConfig | None = None, reranked: int = 0
              ) -> HybridResult:
    return HybridResult(hits=[], pool=len(order), term_hits=len(order), vector_hits=len(order),
                        vector_source="sidecar", reranked=reranked, fusion=fusion or FusionConfig(), order=order)


# -- candidates_query ----------------------------------------------------------------------------


def test_the_candidates_query_matches_exactly_the_candidates_scored_by_place():
    query = candidates_query(order_of(3), SHOP)
    assert query == {"bool": {
        "filter": [{"ids": {"values": ["c0", "c1", "c2"]}}],
        "should": [{"constant_score": {"filter": {"ids": {"values": ["c0"]}}, "boost": 3.0}},
                   {"constant_score": {"filter": {"ids": {"values": ["c1"]}}, "boost": 2.0}},
                   {"constant_score": {"filter": {"ids": {"values": ["c2"]}}, "boost": 1.0}}]}}


def test_no_candidates_match_nothing():
    assert candidates_query((), SHOP) == {"bool": {"filter": [{"ids": {"values": []}}]}}


def test_only_the_first_max_placed_candidates_are_scored_the_rest_still_match():
    order = order_of(MAX_PLACED + 5)
    query = candidates_query(order, SHOP)["bool"]
    assert query["filter"] == [{"ids": {"values": [h.id for h in order]}}]
    boosts = [c["constant_score"]["boost"] for c in query["should"]]
    assert boosts == [float(MAX_PLACED - i) for i in range(MAX_PLACED)]
    assert [c["constant_score"]["filter"]["ids"]["values"] for c in query["should"]][-1] == [f"c{MAX_PLACED - 1}"]


def test_a_shop_query_that_names_clauses_is_added_with_boost_zero():
    named = {"bool": {"must": [{"match": {"title": {"query": "red", "_name": "title"}}}],
                      "filter": [{"term": {"brand": {"value": "acme", "_name": "brand"}}}]}}
    should = candidates_query(order_of(2), read_shop_query(named))["bool"]["should"]
    assert len(should) == 3
    assert should[-1] == {"bool": {"must": [named], "boost": 0.0}}
    assert all("constant_score" in c for c in should[:-1])


def test_a_shop_query_without_names_is_not_added():
    should = candidates_query(order_of(2), SHOP)["bool"]["should"]
    assert all("constant_score" in c for c in should) and len(should) == 2


# -- final_body ----------------------------------------------------------------------------------


def test_the_final_body_replaces_the_query_and_keeps_every_other_key_as_it_is():
    body: dict[str, Any] = {
        "query": SHOP_QUERY, "size": 5, "from": 10, "sort": [{"price": "asc"}, "_score"],
        "aggs": {"brands": {"terms": {"field": "brand"}}}, "post_filter": {"term": {"brand": "acme"}},
        "collapse": {"field": "group"}, "_source": ["title"], "track_total_hits": 1000,
        "search_after": [10, 2.0], "suggest": {"s": {"text": "red", "term": {"field": "title"}}},
        "runtime_mappings": {"x": {"type": "long"}}, "timeout": "2s", "profile": True,
    }
    out = final_body(body, order_of(2), SHOP)
    assert out["query"] == candidates_query(order_of(2), SHOP)
    assert {k: v for k, v in out.items() if k != "query"} == {k: v for k, v in body.items() if k != "query"}
    assert body["query"] is SHOP_QUERY  # the shop's body itself is not changed


def test_explain_and_min_score_are_dsrs_not_the_final_pass():
    out = final_body({"query": SHOP_QUERY, "explain": True, "min_score": 2.5, "size": 3}, order_of(1), SHOP)
    assert set(out) == {"query", "size"}


def test_ext_dsr_is_taken_out_other_ext_sections_are_kept():
    out = final_body({"query": SHOP_QUERY, "ext": {"dsr": {"k": 10}, "other": {"x": 1}}}, order_of(1), SHOP)
    assert out["ext"] == {"other": {"x": 1}}
    out = final_body({"query": SHOP_QUERY, "ext": {"dsr": {"k": 10}}}, order_of(1), SHOP)
    assert "ext" not in out


def test_a_highlight_gets_the_shops_query_as_its_highlight_query():
    body = {"query": SHOP_QUERY, "highlight": {"fields": {"title": {}}, "pre_tags": ["<b>"]}}
    out = final_body(body, order_of(1), SHOP)
    assert out["highlight"] == {"fields": {"title": {}}, "pre_tags": ["<b>"], "highlight_query": SHOP_QUERY}
    assert "highlight_query" not in body["highlight"]


def test_a_highlight_query_of_the_shops_own_is_kept():
    own = {"match": {"title": "sneakers"}}
    body = {"query": SHOP_QUERY, "highlight": {"fields": {"title": {}}, "highlight_query": own}}
    assert final_body(body, order_of(1), SHOP)["highlight"] == body["highlight"]


def test_without_a_query_only_the_candidates_query_is_sent():
    text_only = ShopQuery({"multi_match": {"query": "red"}}, "red")
    assert final_body({"size": 3}, order_of(1), text_only) == {"query": candidates_query(order_of(1), text_only),
                                                                "size": 3}


# -- refused_keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(REFUSED_BODY_KEYS))
def test_body_keys_that_would_undo_or_bypass_the_hybrid_order_are_refused_with_a_reason(key):
    refused = refused_keys({"query": SHOP_QUERY, key: {}}, {})
    assert list(refused) == [key]
    assert refused[key] == REFUSED_BODY_KEYS[key] and len(refused[key]) > 20


def test_the_refused_keys_are_the_engines_own_ranking_and_partial_searches():
    assert set(REFUSED_BODY_KEYS) == {"rescore", "knn", "retriever", "rank", "pit", "slice", "terminate_after",
                                      "indices_boost"}


def test_an_unknown_body_key_is_refused():
    assert refused_keys({"query": SHOP_QUERY, "frobnicate": 1}, {}) == {
        "frobnicate": "dsr does not know how this search body key combines with a hybrid search"}


def test_every_relayed_body_key_is_accepted():
    assert refused_keys({key: {} for key in RELAYED_BODY_KEYS}, {}) == {}
    assert {"aggs", "aggregations", "post_filter", "highlight", "sort", "search_after", "collapse", "suggest",
            "fields", "track_total_hits", "min_score", "explain", "profile"} <= RELAYED_BODY_KEYS


def test_url_parameters_are_relayed_handled_or_refused():
    assert refused_keys({}, dict.fromkeys(RELAYED_PARAMS, "x")) == {}
    assert refused_keys({}, {"pretty": "", "explain": "true"}) == {}
    assert refused_keys({}, {"q": "red", "typed_keys": "true"}) == {
        "q": "dsr does not know how this URL parameter combines with a hybrid search"}


# -- ShopSearchRequest ---------------------------------------------------------------------------


def request(body: dict[str, Any], params: dict[str, str] | None = None) -> ShopSearchRequest:
    return ShopSearchRequest(body, params or {}, SHOP, SearchRequest("red sneakers"))


def test_explain_is_asked_in_the_body_or_the_url():
    assert request({"explain": True}).explain
    assert request({}, {"explain": "true"}).explain and request({}, {"explain": ""}).explain
    assert not request({}).explain and not request({"explain": False}).explain
    assert not request({"explain": True}, {"explain": "false"}).explain  # the URL wins


def test_a_page_of_size_zero_is_counts_only():
    assert request({"size": 0}).counts_only and request({}, {"size": "0"}).counts_only
    assert not request({}).counts_only and not request({"size": 10}).counts_only
    assert not request({"size": 0}, {"size": "5"}).counts_only


def test_profile_is_asked_by_profile_true():
    assert request({"profile": True}).profile and not request({"profile": "true"}).profile


# -- explanation ---------------------------------------------------------------------------------


def test_an_explanation_has_one_level_per_stage_with_the_clusters_term_explanation_inside():
    h = hit("c0", 0.75, 1, term=2, vector=5)
    term_explanation = {"value": 8.0, "description": "weight(title:red)", "details": []}
    out = explanation(h, term_explanation, result_of((h,)))
    assert out == {"value": 0.75, "description": "dsr hybrid: fused order, rank 1", "details": [{
        "value": 0.375, "description": "fused (rrf, rank_constant 60), rank 1", "details": [
            {"value": 8.0, "description": "term side: the shop's query, rank 2", "details": [term_explanation]},
            {"value": 0.9, "description": "vector side: DSR similarity of the query and item towers, rank 5",
             "details": []}]}]}


def test_a_reranked_hit_says_its_ranker_rank_and_a_vector_only_hit_has_no_term_level():
    h = hit("c0", 2.5, 1, vector=1, rerank=3)
    out = explanation(h, None, result_of((h,), fusion=FusionConfig(FusionMode.LINEAR), reranked=40))
    assert out["description"] == "dsr hybrid: re-ranked by the pairwise ranker, rank 1 (ranker rank 3 of 40)"
    fused = out["details"][0]
    assert fused["description"] == "fused (linear, min_max normalisation), rank 1"
    assert [d["description"].split(":")[0] for d in fused["details"]] == ["vector side"]


def test_a_term_hit_the_cluster_did_not_explain_has_an_empty_term_level():
    h = hit("c0", 0.5, 1, term=1)
    term = explanation(h, None, result_of((h,)))["details"][0]["details"][0]
    assert term["description"].startswith("term side") and term["details"] == []


# -- the scores of the answer --------------------------------------------------------------------


def cluster_hit(doc_id: str | None, score: float | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"_index": "shop", "_score": score, **extra}
    if doc_id is not None:
        out["_id"] = doc_id
    return out


def test_place_based_scores_become_the_final_scores_and_max_score_the_best_ones():
    order = order_of(3)
    hits = {"max_score": 3.0, "hits": [cluster_hit("c1", 2.0), cluster_hit("c0", 3.0)]}  # post_filter dropped c2
    _rescore_hits(hits, order, {h.id: h for h in order})
    assert [h["_score"] for h in hits["hits"]] == [order[1].score, order[0].score]
    assert hits["max_score"] == order[0].score


def test_max_score_names_the_best_candidate_that_matched():
    order = order_of(3)
    hits = {"max_score": 2.0, "hits": [cluster_hit("c1", 2.0)]}  # c0 filtered out by the post_filter
    _rescore_hits(hits, order, {h.id: h for h in order})
    assert hits["max_score"] == order[1].score


def test_scores_the_cluster_did_not_compute_stay_null():
    order = order_of(2)
    hits = {"max_score": None, "hits": [cluster_hit("c1", None, sort=[10.0]), cluster_hit("c0", None, sort=[12.0])]}
    _rescore_hits(hits, order, {h.id: h for h in order})
    assert hits == {"max_score": None, "hits": [cluster_hit("c1", None, sort=[10.0]),
                                                cluster_hit("c0", None, sort=[12.0])]}


def test_a_candidate_beyond_the_placed_ones_gets_its_final_score_too():
    order = order_of(MAX_PLACED + 2)
    last = order[-1]
    hits = {"max_score": 0.0, "hits": [cluster_hit(last.id, 0.0)]}
    _rescore_hits(hits, order, {h.id: h for h in order})
    assert hits["hits"][0]["_score"] == last.score
    assert hits["max_score"] == 0.0  # no placed candidate matched


def test_a_hit_without_its_id_is_named_by_its_place():
    order = order_of(3)
    hits = {"max_score": 2.0, "hits": [cluster_hit(None, 2.0), cluster_hit(None, 1.0)]}  # stored_fields _none_
    _rescore_hits(hits, order, {h.id: h for h in order})
    assert [h["_score"] for h in hits["hits"]] == [order[1].score, order[2].score]


def test_inner_hits_are_rescored_the_same_way():
    order = order_of(3)
    inner = {"hits": {"max_score": 2.0, "hits": [cluster_hit("c1", 2.0), cluster_hit("c2", 1.0)]}}
    hits = {"max_score": 3.0, "hits": [cluster_hit("c0", 3.0, inner_hits={"family": inner})]}
    _rescore_hits(hits, order, {h.id: h for h in order})
    assert hits["hits"][0]["_score"] == order[0].score
    assert [h["_score"] for h in inner["hits"]["hits"]] == [order[1].score, order[2].score]
    assert inner["hits"]["max_score"] == order[1].score


def test_an_answer_without_hits_is_left_alone():
    _rescore_hits(None, order_of(1), {})
    hits: dict[str, Any] = {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}
    _rescore_hits(hits, order_of(1), {})
    assert hits == {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}
