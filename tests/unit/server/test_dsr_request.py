"""Validation of `ext.dsr` search requests: every bad request is refused with a reason naming the key."""

from __future__ import annotations

import pytest

from dsr.search.fusion import FusionMode, Normalization
from dsr.server.dsr_request import Limits, has_dsr_ext, parse_dsr_request
from dsr.server.errors import RequestError

LIMITS = Limits(max_k=500, default_k=100, default_rerank_top=100, max_size=200)


def body(**dsr):
    return {"ext": {"dsr": {"text": "red sneakers", **dsr}}}


def reason(b, params=None):
    with pytest.raises(RequestError) as e:
        parse_dsr_request(b, params or {}, LIMITS)
    assert e.value.status == 400
    return e.value.reason


def test_detects_the_ext_object():
    assert has_dsr_ext(body())
    assert not has_dsr_ext({"query": {"match_all": {}}})
    assert not has_dsr_ext({"ext": {"other": {}}})
    assert not has_dsr_ext(["ext"])


def test_defaults():
    r = parse_dsr_request(body(), {}, LIMITS)
    s = r.search
    assert (s.text, s.knn_k, s.term_k, s.rerank, s.rerank_top, s.size, s.offset) == \
        ("red sneakers", 100, 100, True, 100, 10, 0)
    assert s.fusion is not None and s.fusion.mode is FusionMode.RRF and s.fusion.rrf_k == 60
    assert s.term_query is None and s.filters is None and s.user is None
    assert r.source.enabled and not r.source.includes


def test_everything_set():
    b = {"query": {"match": {"title": "shoe"}}, "size": 5, "from": 10, "explain": True,
         "_source": {"includes": ["title", "price"], "excludes": ["attributes.*"]},
         **body(k=50, term_k=30, fusion="linear", normalization="z_score",
                weights={"term": 0.2, "vector": 0.8}, rerank=False, rerank_top=20, user={"user_id": "u1"},
                filters={"brand": ["a", "b"], "price": {"lte": 50}})}
    r = parse_dsr_request(b, {}, LIMITS)
    s = r.search
    assert (s.knn_k, s.term_k, s.size, s.offset) == (50, 30, 5, 10)
    assert (s.explain, s.rerank, s.rerank_top) == (True, False, 20)
    assert s.fusion is not None
    assert s.fusion.mode is FusionMode.LINEAR and s.fusion.normalization is Normalization.Z_SCORE
    assert s.fusion.weights == {"term": 0.2, "vector": 0.8}
    assert s.term_query == {"match": {"title": "shoe"}}
    assert s.user == {"user_id": "u1"}
    assert s.filters == {"brand": ["a", "b"], "price": {"lte": 50}}
    assert r.source.includes == ("title", "price") and r.source.excludes == ("attributes.*",)


def test_url_parameters_win_over_the_body():
    r = parse_dsr_request({**body(), "size": 3}, {"size": "7", "from": "2", "explain": "true",
                                                  "_source": "false"}, LIMITS)
    assert (r.search.size, r.search.offset, r.search.explain, r.source.enabled) == (7, 2, True, False)


def test_unknown_dsr_key():
    assert "unknown key(s) ['kk']" in reason(body(kk=3))


def test_unknown_url_parameter():
    assert "unrecognized parameter" in reason(body(), {"scroll": "1m"})


def test_unsupported_body_key():
    assert "['aggs']" in reason({**body(), "aggs": {"x": {"terms": {"field": "brand"}}}})


@pytest.mark.parametrize(("dsr", "key"), [
    ({"k": "many"}, "ext.dsr.k"), ({"k": True}, "ext.dsr.k"), ({"k": 1.5}, "ext.dsr.k"),
    ({"term_k": -1}, "ext.dsr.term_k"), ({"fusion": "borda"}, "ext.dsr.fusion"),
    ({"rerank": "yes"}, "ext.dsr.rerank"), ({"user": "u1"}, "ext.dsr.user"),
    ({"filters": ["brand"]}, "ext.dsr.filters"), ({"filters": {"price": {"between": [1, 2]}}},
                                                  "ext.dsr.filters.price"),
    ({"weights": {"title": 1}}, "ext.dsr.weights"), ({"weights": {"term": -1}}, "ext.dsr.weights.term"),
    ({"normalization": "l2"}, "ext.dsr.normalization"), ({"rrf_k": 0}, "ext.dsr.rrf_k"),
])
def test_wrong_types_and_values_name_the_key(dsr, key):
    assert f"[{key}]" in reason(body(**dsr))


def test_text_is_required_and_non_empty():
    assert "[ext.dsr.text] is required" in reason({"ext": {"dsr": {}}})
    assert "[ext.dsr.text]" in reason({"ext": {"dsr": {"text": "  "}}})
    assert "[ext.dsr]" in reason({"ext": {"dsr": "red"}})


def test_k_above_the_configured_maximum():
    assert "configured maximum" in reason(body(k=501))
    assert "configured maximum" in reason(body(rerank_top=501))
    parse_dsr_request(body(k=500), {}, LIMITS)


def test_size_plus_from_beyond_the_candidate_pool():
    r = reason({**body(k=10, term_k=20), "size": 10, "from": 25})
    assert "beyond the candidate pool of 30" in r
    parse_dsr_request({**body(k=10, term_k=20), "size": 10, "from": 20}, {}, LIMITS)


def test_source_filter_forms():
    assert parse_dsr_request({**body(), "_source": False}, {}, LIMITS).source.enabled is False
    assert parse_dsr_request({**body(), "_source": "title"}, {}, LIMITS).source.includes == ("title",)
    assert parse_dsr_request({**body(), "_source": ["a", "b"]}, {}, LIMITS).source.includes == ("a", "b")
    r = parse_dsr_request(body(), {"_source_includes": "a,b", "_source_excludes": "c"}, LIMITS)
    assert (r.source.includes, r.source.excludes) == (("a", "b"), ("c",))
    assert "[_source]" in reason({**body(), "_source": 3})
