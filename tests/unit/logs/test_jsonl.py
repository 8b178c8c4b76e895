"""The simple jsonl session format."""

from __future__ import annotations

import json

import pytest

from dsr.errors import InputError
from dsr.logs.jsonl import load_sessions_jsonl, write_sessions_jsonl
from dsr.logs.load import load_logs
from dsr.logs.synthetic import make_world, simulate_sessions


def test_round_trip(tmp_path):
    world = make_world(200, 20, 10, seed=1)
    sessions = simulate_sessions(world, 50, seed=1)
    path = tmp_path / "s.jsonl"
    assert write_sessions_jsonl(sessions, path) == 50
    loaded, report = load_logs(path, known_items={r["id"] for r in world.catalog})
    assert loaded == sessions
    assert report.problems == [] and report.sessions == 50


def test_bad_lines_are_counted_with_line_numbers(tmp_path):
    good = {"session_id": "s1", "user_id": 7, "query": "drill", "ts": 1.0, "impressions": ["a", 2],
            "clicks": ["a"], "orders": []}
    lines = [json.dumps(good), "{oops", json.dumps({**good, "query": ""}),
             json.dumps({**good, "clicks": ["zzz"]}), "", json.dumps([1, 2])]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    sessions, report = load_sessions_jsonl(path, known_items={"a", "2"})
    assert [s.session_id for s in sessions] == ["s1"]
    assert sessions[0].impressions == ("a", "2") and sessions[0].user_id == "7"
    assert [(p.line, p.reason.split(" (")[0]) for p in report.problems] == [
        (2, "bad JSON"), (3, "missing query"), (4, "unknown item id 'zzz'"), (6, "not a JSON object")]
    with pytest.raises(InputError, match="more than 2 malformed lines"):
        load_sessions_jsonl(path, known_items={"a", "2"}, max_errors=2)
