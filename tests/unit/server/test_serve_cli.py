"""`dsr serve` and `dsr search` parse their options (their behaviour is covered end to end)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dsr.cli import cli
from dsr.commands.search import _parse_filters
from dsr.commands.serve import _is_loopback, build_settings
from dsr.errors import UsageError
from dsr.settings import ConnectionSettings


@pytest.mark.parametrize("command", ["serve", "search"])
def test_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--index" in result.output and "--sidecar" in result.output and "--ranker" in result.output


def test_serve_requires_an_index():
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code != 0 and "--index" in result.output


def test_settings_default_to_loopback_and_the_subcommand_engine_wins():
    s = build_settings(ConnectionSettings("http://global:9200"), engine_url="http://local:9200", index="p",
                       model="hashing:16", ranker_dir=None, sidecar=None, fusion="linear", rrf_k=10, max_k=50,
                       host="127.0.0.1", port=9400, max_body_mb=1.0)
    assert s.connection.engine_url == "http://local:9200"
    assert (s.host, s.port, s.max_body_bytes) == ("127.0.0.1", 9400, 1024 * 1024)
    assert s.limits.max_k == 50 and s.limits.default_k == 50
    assert s.fusion.mode.value == "linear" and s.fusion.rrf_k == 10


def test_the_text_limits_of_an_ext_dsr_search_are_serve_options():
    s = build_settings(ConnectionSettings("http://global:9200"), engine_url=None, index="p", model="hashing:16",
                       ranker_dir=None, sidecar=None, fusion="rrf", rrf_k=60, max_k=100, max_text_chars=200,
                       max_text_terms=8)
    assert (s.limits.max_text_chars, s.limits.max_text_terms) == (200, 8)
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert "--max-text-chars" in result.output and "--max-text-terms" in result.output


def test_loopback_detection():
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("10.1.2.3")


def test_search_filters():
    assert _parse_filters(("brand=acme", "color=red", "color=blue")) == {"brand": "acme",
                                                                         "color": ["red", "blue"]}
    with pytest.raises(UsageError):
        _parse_filters(("brand",))
