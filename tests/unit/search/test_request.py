"""`SearchRequest`: validated on construction; unset depths and fusion come from the searcher's defaults."""

from __future__ import annotations

import dataclasses

import pytest

from dsr.errors import UsageError
from dsr.search.fusion import FusionConfig, FusionMode
from dsr.search.request import SearchDefaults, SearchRequest


def test_a_request_leaves_depths_and_fusion_to_the_searcher_unless_given():
    r = SearchRequest("red sneakers")
    assert (r.size, r.offset, r.rerank, r.explain) == (10, 0, True, False)
    assert (r.term_k, r.knn_k, r.rerank_top, r.fusion) == (None, None, None, None)


def test_resolve_fills_only_what_is_unset():
    defaults = SearchDefaults(term_k=7, knn_k=5, rerank_top=4, fusion=FusionConfig(mode=FusionMode.LINEAR))
    r = SearchRequest("red sneakers", term_k=3, rerank_top=0).resolve(defaults)
    assert (r.term_k, r.knn_k, r.rerank_top, r.fusion) == (3, 5, 0, defaults.fusion)
    given = FusionConfig(rrf_k=10)
    assert SearchRequest("x", fusion=given).resolve(defaults).fusion is given
    assert r.resolve(SearchDefaults()) == r  # a resolved request stays as it is


@pytest.mark.parametrize("field", ["size", "offset", "term_k", "knn_k", "rerank_top"])
def test_negative_depths_are_refused(field):
    with pytest.raises(UsageError, match="must be >= 0"):
        SearchRequest("red", **{field: -1})
    with pytest.raises(UsageError, match="must be >= 0"):
        SearchRequest("red", **{field: True})  # a flag is not a depth


@pytest.mark.parametrize("field", ["term_k", "knn_k", "rerank_top"])
def test_negative_defaults_are_refused(field):
    with pytest.raises(UsageError, match="must be >= 0"):
        SearchDefaults(**{field: -1})


def test_the_text_must_be_a_string_and_the_request_is_frozen():
    with pytest.raises(UsageError, match="string"):
        SearchRequest(None)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SearchRequest("red").size = 3  # type: ignore[misc]


def test_page_end_is_one_past_the_last_position_returned():
    assert SearchRequest("red", size=5, offset=20).page_end == 25
