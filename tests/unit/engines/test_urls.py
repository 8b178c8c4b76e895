"""Where the suite and the benchmarks find their engines: clusters the environment names, else nodes started here."""

from __future__ import annotations

import socket

import pytest

from dsr.engines import ENGINE_URL_ENV, engine_urls, free_port
from dsr.errors import EngineStartError


def test_clusters_named_by_the_environment_are_used_and_never_stopped(monkeypatch):
    monkeypatch.setenv("DSR_TEST_ES_URL", "http://es.example:9200")
    monkeypatch.setenv("DSR_TEST_OS_URL", "http://os.example:9200")
    with engine_urls(["opensearch", "elasticsearch", "opensearch"]) as running:
        assert dict(running.urls) == {"opensearch": "http://os.example:9200",
                                      "elasticsearch": "http://es.example:9200"}
        assert list(running.urls) == ["opensearch", "elasticsearch"]
        assert running.started == ()


def test_the_environment_variables_are_the_documented_ones():
    assert dict(ENGINE_URL_ENV) == {"elasticsearch": "DSR_TEST_ES_URL", "opensearch": "DSR_TEST_OS_URL"}


def test_an_engine_that_cannot_start_is_an_error_naming_the_known_ones():
    with pytest.raises(EngineStartError, match="elasticsearch"):
        engine_urls(["solr"])


def test_a_free_port_can_be_bound_and_refuses_connections_until_then():
    port = free_port()
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert server.getsockname()[1] == port
