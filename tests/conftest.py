"""Session fixtures: real Elasticsearch and OpenSearch nodes, and backends over them.

The nodes are started once per test session (both at once, on first use) from the Maven Central
distributions and stopped at the end. `DSR_TEST_ES_URL` / `DSR_TEST_OS_URL` point the suite at
existing clusters instead.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import contextlib

from dsr.backends import SearchBackend, connect
from dsr.engines import FLAVORS, NodeInfo, start_node, stop_node
from dsr.settings import ConnectionSettings

ENV_URLS = {"elasticsearch": "DSR_TEST_ES_URL", "opensearch": "DSR_TEST_OS_URL"}
REPO = Path(__file__).resolve().parent.parent


class _Engines:
    """Starts every engine node in parallel the first time any is asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, Future[NodeInfo | str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=len(FLAVORS))

    def url(self, flavor: str) -> str:
        with self._lock:
            if not self._futures:
                for f in FLAVORS:
                    existing = os.environ.get(ENV_URLS[f])
                    self._futures[f] = (
                        _done(existing) if existing else self._pool.submit(start_node, f)
                    )
        got = self._futures[flavor].result()
        return got if isinstance(got, str) else got.url

    def stop(self) -> None:
        for fut in self._futures.values():
            if fut.done() and fut.exception() is None:
                got = fut.result()
                if isinstance(got, NodeInfo):
                    stop_node(got)
        self._pool.shutdown(wait=False)


def _done(value: str) -> Future[NodeInfo | str]:
    fut: Future[NodeInfo | str] = Future()
    fut.set_result(value)
    return fut


@pytest.fixture(scope="session")
def engines() -> Iterator[_Engines]:
    eng = _Engines()
    yield eng
    eng.stop()


@pytest.fixture(scope="session")
def es_url(engines: _Engines) -> str:
    return engines.url("elasticsearch")


@pytest.fixture(scope="session")
def os_url(engines: _Engines) -> str:
    return engines.url("opensearch")


@pytest.fixture(scope="session")
def es_backend(es_url: str) -> Iterator[SearchBackend]:
    backend = connect(ConnectionSettings(engine_url=es_url))
    assert backend.flavor == "elasticsearch"
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def os_backend(os_url: str) -> Iterator[SearchBackend]:
    backend = connect(ConnectionSettings(engine_url=os_url))
    assert backend.flavor == "opensearch"
    yield backend
    backend.close()


@pytest.fixture
def embedded_backend(tmp_path: Path) -> Iterator[SearchBackend]:
    backend = connect(ConnectionSettings(engine_url="embedded", data_dir=tmp_path))
    yield backend
    backend.close()


@pytest.fixture(params=["elasticsearch", "opensearch", "embedded"])
def any_backend(request: pytest.FixtureRequest) -> SearchBackend:
    """Each test using this runs once per backend, with the backend's name in the test id."""
    name = {"elasticsearch": "es_backend", "opensearch": "os_backend", "embedded": "embedded_backend"}
    return request.getfixturevalue(name[request.param])


@pytest.fixture
def index_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh index name; the index is deleted from whichever backend the test used."""
    name = f"dsr-test-{uuid.uuid4().hex[:10]}"
    yield name
    for fixture in ("any_backend", "es_backend", "os_backend", "embedded_backend"):
        if fixture in request.fixturenames:
            backend = request.getfixturevalue(fixture)
            with contextlib.suppress(Exception):
                backend.delete_index(name)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The real datasets, read in place (never copied): $DSR_DATASETS or ../shared/datasets."""
    path = Path(os.environ.get("DSR_DATASETS", REPO.parent / "shared" / "datasets"))
    if not path.is_dir():
        pytest.fail(f"real datasets not found at {path}; set DSR_DATASETS")
    return path
