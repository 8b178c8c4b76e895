"""`GatedBackend` on a real cluster: however many searches run at once, at most `limit` requests are in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.backends.gated import GatedBackend
from dsr.server.components import build_searcher
from dsr.server.settings import ServeSettings
from dsr.settings import ConnectionSettings


class InFlight:
    """The real backend, noting how many of its searches and mgets run at the same moment."""

    def __init__(self, backend: SearchBackend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def _enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def _leave(self) -> None:
        with self._lock:
            self.now -= 1

    def term_search(self, index: str, text: str, **options: Any) -> Any:
        self._enter()
        try:
            time.sleep(0.05)  # long enough for the others to pile up behind the bound
            return self._backend.term_search(index, text, **options)
        finally:
            self._leave()

    def mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self._enter()
        try:
            time.sleep(0.05)
            return self._backend.mget(index, ids)
        finally:
            self._leave()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@pytest.fixture(params=["es_backend", "os_backend"])
def cluster(request) -> SearchBackend:
    return request.getfixturevalue(request.param)


def test_requests_beyond_the_limit_wait_and_all_are_answered(cluster, index_name):
    cluster.ensure_index(IndexSpec(index_name))
    cluster.bulk_upsert(index_name, [{"id": str(i), "title": f"red shoe {i}"} for i in range(20)])
    cluster.refresh(index_name)
    counted = InFlight(cluster)
    gated = GatedBackend(counted, 2)  # type: ignore[arg-type]

    def search(i: int) -> int:
        hits = gated.term_search(index_name, "red shoe", size=5) if i % 2 else []
        found = gated.mget(index_name, [str(i % 20)])
        return len(hits) + len(found)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(search, range(24)))
    assert counted.most == 2  # reached, never passed
    assert answers == [6 if i % 2 else 1 for i in range(24)]


def test_a_gated_backend_is_the_same_backend_and_its_limit_is_positive(cluster):
    gated = GatedBackend(cluster, 3)
    assert (gated.flavor, gated.url) == (cluster.flavor, cluster.url)
    with pytest.raises(ValueError, match=">= 1"):
        GatedBackend(cluster, 0)


def test_dsr_serve_bounds_the_requests_of_its_searches_by_the_setting(es_url, tmp_path):
    settings = ServeSettings(ConnectionSettings(es_url, data_dir=tmp_path), index="products", model="none",
                             max_cluster_requests=3)
    searcher = build_searcher(settings)
    try:
        assert isinstance(searcher.backend, GatedBackend) and searcher.backend.limit == 3
    finally:
        searcher.backend.close()
        searcher.close()
