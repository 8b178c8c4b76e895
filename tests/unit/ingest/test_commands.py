"""--help of the ingest, verify and sidecar commands."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dsr.cli import cli


@pytest.mark.parametrize(("args", "expected"), [
    (["ingest", "--help"], "--max-rejects"),
    (["verify", "--help"], "--repair"),
    (["sidecar", "--help"], "serve"),
    (["sidecar", "serve", "--help"], "--port"),
    (["sidecar", "stats", "--help"], "--dir"),
])
def test_help(args, expected):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_ingest_without_catalog_or_delete_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "ingest", "--index", "x", "--model", "hashing"])
    assert result.exit_code != 0
    assert "CATALOG" in str(result.exception) or "CATALOG" in result.output
