"""Shaping hybrid results as Elasticsearch search responses, `_source` filtering, and filter matching."""

from __future__ import annotations

import pytest

from dsr.backends.filters import matches as matches_filters
from dsr.search.fusion import FusionConfig
from dsr.search.hybrid import HybridHit, HybridResult, StageScore
from dsr.server.dsr_request import Limits, SourceFilter, parse_dsr_request
from dsr.server.errors import error_body
from dsr.server.response import filter_source, search_response

DOC = {"title": "Red runner", "price": 59.0, "brand": "acme",
       "attributes": {"color": "red", "size": {"eu": 42, "us": 9}}}


def result(**kw):
    hits = [
        HybridHit("p1", 2.5, 1, DOC, fused=StageScore(0.032, 2), term=StageScore(11.0, 1),
                  vector=StageScore(0.71, 4), rerank=StageScore(2.5, 1)),
        HybridHit("p2", 1.0, 2, {"title": "Blue"}, fused=StageScore(0.033, 1), vector=StageScore(0.9, 1),
                  rerank=StageScore(1.0, 2)),
    ]
    defaults = dict(hits=hits, pool=40, term_hits=20, vector_hits=20, vector_source="sidecar", reranked=40,
                    fusion=FusionConfig(), timings_ms={"total": 3.0})
    return HybridResult(**{**defaults, **kw})


def request(**body):
    return parse_dsr_request({"ext": {"dsr": {"text": "red shoes", "k": 20, "term_k": 20}}, **body}, {},
                             Limits())


def test_search_response_has_the_elasticsearch_shape():
    out = search_response(result(), request(), "products", 7)
    assert out["took"] == 7 and out["timed_out"] is False
    assert out["_shards"]["failed"] == 0
    assert out["hits"]["total"] == {"value": 40, "relation": "gte"}  # term side stopped at term_k
    assert out["hits"]["max_score"] == 2.5
    first = out["hits"]["hits"][0]
    assert first == {"_index": "products", "_id": "p1", "_score": 2.5, "_source": DOC}
    assert out["ext"]["dsr"]["degraded"] is False
    assert out["ext"]["dsr"]["fusion"]["mode"] == "rrf"


def test_total_is_exact_when_the_term_side_returned_less_than_term_k():
    out = search_response(result(term_hits=3), request(), "products", 1)
    assert out["hits"]["total"]["relation"] == "eq"


def test_explain_lists_every_stage():
    out = search_response(result(), request(explain=True), "products", 1)
    exp = out["hits"]["hits"][0]["_explanation"]
    assert exp["value"] == 2.5
    stages = [d["description"].split(":")[0] for d in exp["details"]]
    assert stages == ["term", "vector", "fused", "rerank"]
    assert [d["value"] for d in exp["details"]] == [11.0, 0.71, 0.032, 2.5]
    assert "rank 4 of 20" in exp["details"][1]["description"]
    second = out["hits"]["hits"][1]["_explanation"]
    assert second["details"][0]["description"].startswith("term: not among")


def test_empty_result_has_null_max_score():
    out = search_response(result(hits=[], pool=0, term_hits=0), request(), "products", 1)
    assert out["hits"]["max_score"] is None and out["hits"]["hits"] == []


def test_source_false_drops_the_source_and_degraded_is_flagged():
    out = search_response(result(degraded=True, warnings=("sidecar down",)), request(_source=False), "p", 1)
    assert "_source" not in out["hits"]["hits"][0]
    assert out["ext"]["dsr"]["degraded"] is True and out["ext"]["dsr"]["warnings"] == ["sidecar down"]


@pytest.mark.parametrize(("flt", "expected"), [
    (SourceFilter(), DOC),
    (SourceFilter(includes=("title", "price")), {"title": "Red runner", "price": 59.0}),
    (SourceFilter(includes=("attributes.size.eu",)), {"attributes": {"size": {"eu": 42}}}),
    (SourceFilter(includes=("attributes",), excludes=("attributes.size",)), {"attributes": {"color": "red"}}),
    (SourceFilter(includes=("*.color",)), {"attributes": {"color": "red"}}),
    (SourceFilter(excludes=("attributes", "brand")), {"title": "Red runner", "price": 59.0}),
    (SourceFilter(includes=("t*",)), {"title": "Red runner"}),
])
def test_source_filtering(flt, expected):
    assert filter_source(DOC, flt) == expected


def test_error_body_has_the_elasticsearch_shape():
    body = error_body(400, "illegal_argument_exception", "bad k")
    assert body == {"error": {"root_cause": [{"type": "illegal_argument_exception", "reason": "bad k"}],
                              "type": "illegal_argument_exception", "reason": "bad k"}, "status": 400}


@pytest.mark.parametrize(("filters", "ok"), [
    (None, True), ({"brand": "acme"}, True), ({"brand": "other"}, False),
    ({"brand": ["x", "acme"]}, True), ({"price": {"gte": 50, "lt": 60}}, True),
    ({"price": {"gt": 59}}, False),
    ({"attributes.color": "red"}, True), ({"attributes.size.eu": {"lte": 41}}, False),
    ({"missing": "x"}, False), ({"brand": "acme", "price": {"lt": 10}}, False),
    ({"tags": "sale"}, True),  # arrays match when any element does
])
def test_filter_matching(filters, ok):
    assert matches_filters({**DOC, "tags": ["new", "sale"]}, filters) is ok


def test_credentials_never_reach_an_error_message():
    from dsr.server.app import DsrApp
    from dsr.server.settings import ServeSettings
    from dsr.settings import ConnectionSettings

    class Searcher:
        backend = None

    conn = ConnectionSettings("https://elastic:s3cret@es.example:9200", password="pw123", api_key="KEY42")
    app = DsrApp(ServeSettings(conn, index="p"), Searcher())  # type: ignore[arg-type]
    text = app._redact("https://elastic:s3cret@es.example:9200: search failed (auth pw123 / KEY42)")
    assert "s3cret" not in text and "pw123" not in text and "KEY42" not in text
    assert "https://es.example:9200" in text
