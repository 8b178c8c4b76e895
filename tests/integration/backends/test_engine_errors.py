"""A backend's errors carry what the cluster answered, its HTTP status and `error` object, in dsr's own types."""

from __future__ import annotations

import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.errors import EngineRequestError, IndexNotFound


@pytest.fixture(params=["es_backend", "os_backend"])
def cluster(request) -> SearchBackend:
    return request.getfixturevalue(request.param)


def test_a_query_the_cluster_refuses_is_a_request_error_with_its_status_and_error(cluster, index_name):
    cluster.ensure_index(IndexSpec(index_name))
    with pytest.raises(EngineRequestError) as refused:
        cluster.term_search(index_name, "shoe", query={"no_such_query": {}})
    e = refused.value
    assert e.status == 400 and e.error is not None
    assert e.error["type"] == "parsing_exception" and "no_such_query" in e.error["reason"]
    assert e.error["root_cause"][0]["type"] == "parsing_exception"
    assert e.retry_after is None
    assert cluster.url in str(e) and "400 parsing_exception" in str(e)


def test_a_missing_index_is_index_not_found_with_the_clusters_error_on_every_backend(any_backend, index_name):
    with pytest.raises(IndexNotFound) as missing:
        any_backend.term_search(index_name, "shoe")
    e = missing.value
    assert e.status == 404 and e.error is not None
    assert e.error["type"] == "index_not_found_exception" and index_name in e.error["reason"]
    assert e.error["root_cause"][0]["type"] == "index_not_found_exception"
