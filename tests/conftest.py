"""Session fixtures: real Elasticsearch and OpenSearch nodes, and backends over them; markers by folder.

The nodes are started once per test session (both at once, on first use) from the Maven Central
distributions and stopped at the end. `DSR_TEST_ES_URL` / `DSR_TEST_OS_URL` point the suite at
existing clusters instead. A third node, OpenSearch with its security plugin on, is started on first
use by the tests of what callers may see (`secured_opensearch`), beside the others on ports of its
own, and stopped at the end.

Every test is marked by its top folder (tests/unit -> `unit`, tests/integration -> `integration`,
tests/e2e -> `e2e`), so `pytest -m unit` selects exactly the tests under tests/unit; `gpu` and
`slow` are placed by hand where they apply.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dsr.backends import SearchBackend, connect
from dsr.engines import FLAVORS, OPENSEARCH, EngineUrls, engine_urls, start_node, stop_node
from dsr.engines.security import SecuredNode, Security
from dsr.settings import ConnectionSettings

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FOLDER_MARKERS = ("unit", "integration", "e2e")
"""Top folders of tests/ whose name is the marker every test in them carries."""


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.resolve()
        folder = path.relative_to(TESTS).parts[0] if path.is_relative_to(TESTS) else None
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)


@pytest.fixture(scope="session")
def engines() -> Iterator[EngineUrls]:
    running = engine_urls(FLAVORS)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def es_url(engines: EngineUrls) -> str:
    return engines.urls["elasticsearch"]


@pytest.fixture(scope="session")
def os_url(engines: EngineUrls) -> str:
    return engines.urls["opensearch"]


@pytest.fixture(scope="session")
def secured_opensearch() -> Iterator[SecuredNode]:
    """A secured OpenSearch node (its own cluster, free ports) whose admin may create users and roles."""
    security = Security(admin_password=f"Adm1n-{uuid.uuid4().hex}!")
    node = start_node(OPENSEARCH, security=security, timeout=300)
    try:
        yield SecuredNode(node.url, security)
    finally:
        stop_node(node)


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
