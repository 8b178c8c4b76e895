"""`dsr eval --export`: a set's split as the files the train commands read."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from dsr.cli import cli
from dsr.eval.export import click_sessions
from dsr.logs.jsonl import load_sessions_jsonl


def test_a_generic_sets_split_becomes_catalog_and_judgments_on_its_own_scale(tmp_path):
    (tmp_path / "catalog.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "title": f"drill model {i}"}) + "\n" for i in range(4)))
    (tmp_path / "judged.tsv").write_text(
        "query\titem_id\tgrade\tsplit\ncordless drill\t1\t3\ttrain\ncordless drill\t2\t1\ttrain\n"
        "hammer\t3\t2\tdev\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["eval", "--catalog", str(tmp_path / "catalog.jsonl"), "--judgments",
                                      str(tmp_path / "judged.tsv"), "--export", "train", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len((out / "catalog.jsonl").read_text().splitlines()) == 4
    with open(out / "judgments.train.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["query"], r["item_id"]) for r in rows] == [("cordless drill", "1"), ("cordless drill", "2")]
    assert float(rows[0]["grade"]) > float(rows[1]["grade"])  # the order of the grades is kept
    assert not (out / "sessions.train.jsonl").exists()  # no click log in this set


def test_click_records_become_one_session_per_query_event():
    records = [
        {"user": "u1", "sku": "10", "query": "Halo", "query_time": "2011-08-11 03:59:04.27"},
        {"user": "u1", "sku": "11", "query": "halo ", "query_time": "2011-08-11 03:59:04.27"},
        {"user": "u1", "sku": "10", "query": "halo", "query_time": "2011-08-12 10:00:00"},
        {"user": "u2", "sku": "12", "query": "", "query_time": "2011-08-12 10:00:00"},  # no query: skipped
    ]
    sessions = click_sessions(records)
    assert [(s.user_id, s.query, s.clicks) for s in sessions] == [("u1", "halo", ("10", "11")),
                                                                   ("u1", "halo", ("10",))]
    assert sessions[0].ts is not None and sessions[0].ts < sessions[1].ts


def test_exported_sessions_are_readable_by_the_log_loader(tmp_path):
    from dsr.logs.jsonl import write_sessions_jsonl

    sessions = click_sessions([{"user": "u1", "sku": "10", "query": "halo", "query_time": "2011-08-11 03:59:04"}])
    write_sessions_jsonl(sessions, tmp_path / "s.jsonl")
    loaded, report = load_sessions_jsonl(tmp_path / "s.jsonl")
    assert [(s.query, s.clicks) for s in loaded] == [("halo", ("10",))] and not report.problems
