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


def test_ingest_of_a_missing_catalog_file_names_it_without_a_traceback(tmp_path, capsys):
    from dsr.cli import main

    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        main(["--engine", "embedded", "--data-dir", str(tmp_path), "ingest", "--index", "x", "--model", "hashing",
              str(missing)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"catalog file not found: {missing}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "sidecar" / "x" / "journal.log").exists()
