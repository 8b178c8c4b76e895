"""`plan_search`: which stages a search runs and what each fetches, decided once from the request and the parts."""

from __future__ import annotations

import pytest

from dsr.backends.base import Caller
from dsr.search.engine_vectors import EngineVectors
from dsr.search.plan import ALL, plan_search
from dsr.search.request import SearchDefaults, SearchRequest
from dsr.sidecar.faiss_index import FaissIndex

from .conftest import INDEX

DEFAULTS = SearchDefaults(term_k=100, knn_k=100, rerank_top=100)
SIDECAR = FaissIndex(4, kind="flat", device="cpu")


def plan(request: SearchRequest, *, vectors=SIDECAR, ranker=True, records=False):
    return plan_search(request, DEFAULTS, vectors=vectors, ranker=ranker, records=records)


def test_both_sides_run_for_text_and_positive_depths():
    p = plan(SearchRequest("red"))
    assert (p.term, p.vector, p.rerank) == (True, True, True)
    assert (p.term_k, p.knn_k, p.rerank_top) == (100, 100, 100) and p.request.term_k == 100


def test_a_side_with_depth_zero_or_no_vectors_does_not_run():
    assert not plan(SearchRequest("red", term_k=0)).term
    assert not plan(SearchRequest("red", knn_k=0)).vector
    assert not plan(SearchRequest("red"), vectors=None).vector


def test_blank_text_runs_only_a_callers_term_query():
    p = plan(SearchRequest("  "))
    assert not p.term and not p.vector
    p = plan(SearchRequest("  ", term_query={"match_all": {}}))
    assert p.term and not p.vector


def test_the_ranker_runs_when_asked_present_and_given_a_head():
    assert not plan(SearchRequest("red", rerank=False)).rerank
    assert not plan(SearchRequest("red"), ranker=False).rerank
    assert not plan(SearchRequest("red", rerank_top=0)).rerank


def test_sidecar_neighbours_are_filtered_here_and_all_fetched_early():
    p = plan(SearchRequest("red", filters={"brand": "acme"}), records=True)
    assert p.filter_neighbours and p.prefetch == ALL
    assert not p.records  # every neighbour's source is fetched for the filter anyway


def test_the_engine_filters_its_own_neighbours(backend):
    p = plan(SearchRequest("red", filters={"brand": "acme"}), vectors=EngineVectors(backend, INDEX))
    assert not p.filter_neighbours


@pytest.mark.parametrize(("request_", "expected"), [
    (SearchRequest("red"), 60),  # the ranker's likely share of the head: 60% of rerank_top
    (SearchRequest("red", rerank_top=10, offset=20, size=10), 30),  # at least the page
    (SearchRequest("red", rerank=False), 0),  # only the page needs sources, known after fusion
])
def test_the_early_fetch_covers_what_the_ranker_or_the_page_will_read(request_, expected):
    assert plan(request_).prefetch == expected


def test_records_that_cover_the_ranker_stand_in_for_neighbours_sources():
    p = plan(SearchRequest("red"), records=True)
    assert p.records and p.prefetch == 0
    assert not plan(SearchRequest("red", rerank=False), records=True).records


def test_a_search_restricted_to_what_a_caller_may_read_never_ranks_on_item_records():
    # records hold every item and field; the ranker then reads only what the cluster returned the caller
    caller = SearchRequest("red", caller=Caller({"authorization": "Basic eDp5"}))
    p = plan_search(caller, DEFAULTS, vectors=SIDECAR, ranker=True, records=True, restricted=True)
    assert not p.records and p.restricted and p.prefetch == 60
    assert plan(caller, records=True).records  # a cluster without security hides nothing
