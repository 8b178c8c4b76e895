"""Columns: the named pipelines and configurations edited in the page, as ext.dsr searches within the limits."""

from __future__ import annotations

import pytest

from dsr.errors import UsageError
from dsr.search.fusion import FusionMode, Normalization
from dsr.server.dsr_request import Limits
from dsr.server.workbench.columns import DEPTH, PIPELINES, parse_column, parse_columns

LIMITS = Limits()


def request_of(raw, **kwargs):
    return parse_column(raw, LIMITS).request("red shoes", user=None, filters=None, limits=LIMITS, **kwargs)


def test_each_pipeline_is_the_search_its_name_says():
    bm25 = request_of("bm25")
    assert (bm25.term_k, bm25.knn_k, bm25.rerank) == (100, 0, False)
    knn = request_of("knn")
    assert (knn.term_k, knn.knn_k, knn.rerank) == (0, 100, False)
    rrf = request_of("hybrid-rrf")
    assert rrf.fusion is not None and rrf.fusion.mode is FusionMode.RRF and not rrf.rerank
    linear = request_of("hybrid-linear")
    assert linear.fusion is not None and linear.fusion.mode is FusionMode.LINEAR and not linear.rerank
    reranked = request_of("hybrid+rerank")
    assert reranked.rerank and reranked.rerank_top == 100 and reranked.term_k == reranked.knn_k == 100
    assert set(PIPELINES) == {"bm25", "knn", "hybrid-rrf", "hybrid-linear", "hybrid+rerank"}


def test_a_column_edited_in_the_page_changes_only_what_it_names():
    req = request_of({"pipeline": "hybrid-linear", "weights": {"term": 0.3, "vector": 2}, "normalization": "z_score",
                      "k": 40, "term_k": 20, "rerank": True, "rerank_top": 10})
    assert req.fusion is not None and req.fusion.mode is FusionMode.LINEAR
    assert req.fusion.normalization is Normalization.Z_SCORE
    assert (req.fusion.weight("term"), req.fusion.weight("vector")) == (0.3, 2.0)
    assert (req.knn_k, req.term_k, req.rerank, req.rerank_top) == (40, 20, True, 10)
    assert req.size == 60  # its whole pool, which is less than the depth scored
    custom = request_of({"rrf_k": 5})
    assert custom.fusion is not None and custom.fusion.rrf_k == 5 and custom.rerank  # ext.dsr's defaults


def test_a_column_ranks_as_deep_as_the_metrics_read():
    assert request_of("hybrid-rrf").size == DEPTH
    assert request_of("hybrid-rrf", depth=150).size == 150


def test_the_page_gets_every_key_filled_in():
    config = parse_column("bm25", LIMITS).config(LIMITS)
    assert config == {"name": "bm25", "pipeline": "bm25", "k": 0, "term_k": 100, "fusion": "rrf", "rrf_k": 60,
                      "normalization": "min_max", "weights": {"term": 1.0, "vector": 1.0}, "rerank": False,
                      "rerank_top": 100}


@pytest.mark.parametrize(("raw", "message"), [
    ({"pipeline": "bm99"}, "pipeline"),
    ({"pipeline": "bm25", "size": 3}, "unknown key"),
    ({"pipeline": "bm25", "term_k": 5000}, "configured maximum"),
    ({"k": 0, "term_k": 0}, "cannot both be 0"),
    ({"fusion": "sum"}, "fusion"),
    ({"weights": {"term": 0, "vector": 0}}, "weight"),
    ({"weights": {"title": 1}}, "stage"),
    (7, "object"),
])
def test_a_column_no_ext_dsr_search_could_be_is_refused_naming_it(raw, message):
    with pytest.raises(UsageError, match=message):
        parse_column(raw, LIMITS)


def test_the_limits_of_dsr_serve_hold_for_columns_too():
    tight = Limits(max_k=50, default_k=50, default_rerank_top=50)
    with pytest.raises(UsageError, match="configured maximum"):
        parse_column({"k": 60}, tight)
    assert parse_column("hybrid-rrf", tight).request("q", user=None, filters=None, limits=tight).size == DEPTH
    with pytest.raises(UsageError, match="terms"):
        parse_column("bm25", LIMITS).request(" ".join(["w"] * 65), user=None, filters=None, limits=LIMITS)


def test_one_to_three_columns_with_names_of_their_own():
    columns = parse_columns(["bm25", {"pipeline": "bm25", "k": 10}, {"name": "mine", "rrf_k": 10}], LIMITS)
    assert [c.name for c in columns] == ["bm25", "bm25 (2)", "mine"]
    with pytest.raises(UsageError, match="at most 3"):
        parse_columns(["bm25"] * 4, LIMITS)
    with pytest.raises(UsageError, match="list"):
        parse_columns([], LIMITS)


def test_the_pages_query_user_and_filters_go_to_every_column():
    column = parse_column("hybrid+rerank", LIMITS)
    req = column.request("red shoes", user={"user_id": "u1", "price_level": 3.0}, filters={"brand": "acme"},
                         limits=LIMITS)
    assert req.user == {"user_id": "u1", "price_level": 3.0} and req.filters == {"brand": "acme"}
    with pytest.raises(UsageError, match="filters"):
        column.request("red shoes", user=None, filters={"brand": {"near": 1}}, limits=LIMITS)
