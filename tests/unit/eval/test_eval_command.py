"""`dsr eval` as a command: help, and clear one-line errors for bad usage."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dsr.cli import cli


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["eval", "--help"])
    assert result.exit_code == 0
    for option in ("--dataset", "--catalog", "--judgments", "--pipelines", "--out", "--quick", "--engine"):
        assert option in result.output


def test_unknown_pipeline_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["eval", "--dataset", "homedepot", "--pipelines", "bm25,magic", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0 and "unknown pipeline" in str(result.exception)


def test_catalog_without_judgments_is_refused(tmp_path: Path) -> None:
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"id": "1", "title": "x"}\n')
    result = CliRunner().invoke(cli, ["eval", "--catalog", str(catalog), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "go together" in str(result.exception)
