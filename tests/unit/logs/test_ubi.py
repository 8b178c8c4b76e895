"""UBI loading on real sample lines from the shared esci-ubi set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsr.errors import InputError
from dsr.logs.load import load_logs
from dsr.logs.ubi import load_ubi

SAMPLE = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "esci-ubi" / "ubi_queries_events.ndjson"
if not SAMPLE.is_file():
    SAMPLE = Path("/work/shared/datasets/esci-ubi/ubi_queries_events.ndjson")
needs_sample = pytest.mark.skipif(not SAMPLE.is_file(), reason="shared esci-ubi sample not present")


def _head(n: int) -> list[str]:
    with open(SAMPLE, encoding="utf-8") as fh:
        return [next(fh) for _ in range(n)]


@needs_sample
def test_real_sample_keeps_esci_application_and_reports_the_rest():
    sessions, report = load_ubi(SAMPLE, applications={"esci_ubi_sample"})
    assert report.lines_read == 7842
    assert len(sessions) == report.sessions == 200
    assert report.skipped == {"application 'Chorus'": 2232, "application 'ubi-demo'": 429}
    assert report.problems == []
    assert sum(len(s.impressions) for s in sessions) == 1000
    assert sum(len(s.clicks) for s in sessions) == 60
    first = next(s for s in sessions if s.session_id == "33198ee9-5912-453c-9173-3f92fd3cb1be")
    assert first.query == "futon frames full size without mattress"
    assert first.impressions[0] == "B07CVR21VN"  # position ordinal 0 first
    assert first.user_id == "127c9afc-01c9-4084-912f-f318569f96c7"
    assert [s.ts for s in sessions] == sorted(s.ts for s in sessions)


@needs_sample
def test_bulk_and_plain_ndjson_give_the_same_sessions(tmp_path):
    lines = _head(1200)
    plain = tmp_path / "plain.ndjson"
    plain.write_text("".join(line for line in lines if '"_index"' not in line))
    bulk = tmp_path / "bulk.ndjson"
    bulk.write_text("".join(lines))
    a, ra = load_ubi(bulk, applications={"esci_ubi_sample"})
    b, rb = load_ubi(plain, applications={"esci_ubi_sample"})
    assert a == b and len(a) > 0
    assert ra.problems == rb.problems == []


@needs_sample
def test_malformed_lines_are_reported_with_line_numbers(tmp_path):
    lines = _head(200)
    lines.insert(10, "{not json\n")
    with open(SAMPLE, encoding="utf-8") as fh:
        event = json.loads(next(line for line in fh if '"action_name": "impression"' in line))
    del event["event_attributes"]
    lines.append(json.dumps(event) + "\n")
    path = tmp_path / "bad.ndjson"
    path.write_text("".join(lines))
    sessions, report = load_logs(path, applications={"esci_ubi_sample"})
    reasons = {p.line: p.reason for p in report.problems}
    assert reasons[11].startswith("bad JSON")
    assert reasons[len(lines)] == "impression event without an object id"
    assert sessions


@needs_sample
def test_unknown_items_are_rejected_and_max_errors_stops_the_run(tmp_path):
    path = tmp_path / "s.ndjson"
    path.write_text("".join(_head(600)))
    _, report = load_ubi(path, applications={"esci_ubi_sample"}, known_items={"B07CVR21VN"}, max_errors=None)
    assert report.problems and all(p.reason.startswith("unknown item id") for p in report.problems)
    with pytest.raises(InputError, match="more than 3 malformed lines"):
        load_ubi(path, applications={"esci_ubi_sample"}, known_items={"B07CVR21VN"}, max_errors=3)


def test_event_without_any_query_text_is_a_problem(tmp_path):
    path = tmp_path / "e.ndjson"
    path.write_text(json.dumps({"action_name": "click", "query_id": "q1", "timestamp": 1700000000000,
                                "event_attributes": {"object": {"object_id": "a"}}}) + "\n")
    sessions, report = load_ubi(path)
    assert sessions == []
    assert report.problems[0].line == 1 and "missing query" in report.problems[0].reason


def test_actions_map_to_clicks_carts_and_orders(tmp_path):
    docs = [
        {"query_id": "q", "user_query": "drill", "client_id": "c", "timestamp": "2024-01-01T00:00:00Z"},
        *({"action_name": "impression", "query_id": "q", "timestamp": "2024-01-01T00:00:01Z",
           "event_attributes": {"object": {"object_id": i}, "position": {"ordinal": p}}}
          for p, i in ((1, "b"), (0, "a"))),
        {"action_name": "click", "query_id": "q", "event_attributes": {"object": {"object_id": "b"}}},
        {"action_name": "add_to_cart", "query_id": "q", "event_attributes": {"object": {"object_id": "b"}}},
        {"action_name": "purchase", "query_id": "q", "event_attributes": {"object": {"object_id": "b"}}},
        {"action_name": "page_exit", "query_id": "q"},
    ]
    path = tmp_path / "u.ndjson"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    [s], report = load_logs(path)
    assert (s.query, s.user_id, s.impressions, s.clicks, s.add_to_carts, s.orders) == (
        "drill", "c", ("a", "b"), ("b",), ("b",), ("b",))
    assert s.ts == 1704067200.0
    assert report.skipped == {"action 'page_exit' (no item signal)": 1}
