"""`dsr train` is one command and the group of the per-model commands: what it accepts and refuses."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dsr.cli import cli, main


def test_help_shows_the_whole_run_and_the_per_model_commands():
    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--catalog", "--logs", "--judgments", "--out", "--time-budget", "--threads", "--backbone"):
        assert option in result.output
    for command in ("retrieval", "ranker", "teacher"):
        assert f"  {command} " in result.output


def test_the_whole_run_needs_a_catalog_an_output_and_data(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps({"id": "1", "title": "drill"}) + "\n")
    missing = CliRunner().invoke(cli, ["train", "--catalog", str(catalog)])
    assert missing.exit_code == 2 and "needs --catalog and --out" in missing.output
    no_data = CliRunner().invoke(cli, ["train", "--catalog", str(catalog), "--out", str(tmp_path / "out")])
    assert no_data.exit_code == 2 and "no training data" in no_data.output


def test_options_of_the_whole_run_are_refused_before_a_sub_command(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--seed", "1", "--force", "ranker", "--help"])
    assert result.exit_code == 2
    assert "--seed, --force go after `dsr train ranker`" in result.output


def test_a_bad_time_budget_is_a_usage_error(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps({"id": "1", "title": "drill"}) + "\n")
    judgments = tmp_path / "judgments.tsv"
    judgments.write_text("query\titem_id\tgrade\ndrill\t1\t3\n")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--catalog", str(catalog), "--judgments", str(judgments), "--out", str(tmp_path / "out"),
              "--time-budget", "soon"])
    assert exit_.value.code == 2
