"""The write-through's reading of write answers, and its backlog file."""

from __future__ import annotations

import json
from pathlib import Path

from dsr.server.writes import Backlog, acknowledged_ids, is_write, read_backlog


def test_document_writes_are_told_from_every_other_request():
    for method, path in [("POST", "/_bulk"), ("PUT", "/shop/_bulk"), ("PUT", "/shop/_doc/1"), ("POST", "/shop/_doc"),
                         ("POST", "/shop/_doc/1"), ("PUT", "/shop/_create/1"), ("POST", "/shop/_update/1"),
                         ("DELETE", "/shop/_doc/1")]:
        assert is_write(method, path), (method, path)
    for method, path in [("GET", "/shop/_doc/1"), ("DELETE", "/shop"), ("POST", "/shop/_search"),
                         ("POST", "/shop/_update_by_query"), ("GET", "/_bulk"), ("DELETE", "/shop/_doc"),
                         ("POST", "/shop/_refresh")]:
        assert not is_write(method, path), (method, path)


def test_only_items_the_cluster_acknowledged_on_the_followed_index_are_taken():
    answer = {"errors": True, "items": [
        {"index": {"_index": "shop-v1", "_id": "a", "status": 201, "result": "created"}},
        {"update": {"_index": "shop-v1", "_id": "b", "status": 200, "result": "updated"}},
        {"delete": {"_index": "shop-v1", "_id": "c", "status": 404, "result": "not_found"}},
        {"update": {"_index": "shop-v1", "_id": "d", "status": 404, "error": {"type": "document_missing_exception"}}},
        {"index": {"_index": "shop-v1", "_id": "e", "status": 429, "error": {"type": "es_rejected_execution"}}},
        {"index": {"_index": "other", "_id": "f", "status": 201, "result": "created"}},
    ]}
    assert acknowledged_ids(200, json.dumps(answer).encode(), "shop-v1") == ["a", "b", "c"]
    assert acknowledged_ids(201, b'{"_index":"shop-v1","_id":"x","result":"created"}', "shop-v1") == ["x"]
    assert acknowledged_ids(404, b'{"_index":"shop-v1","_id":"x","result":"not_found"}', "shop-v1") == ["x"]
    assert acknowledged_ids(404, b'{"error":{"type":"document_missing_exception"},"status":404}', "shop-v1") == []
    assert acknowledged_ids(400, b'{"_index":"shop-v1","_id":"x"}', "shop-v1") == []
    assert acknowledged_ids(200, b"not json", "shop-v1") == []


def test_the_backlog_keeps_what_is_not_done_across_a_reopen_and_ignores_a_torn_last_line(tmp_path: Path):
    path = tmp_path / "shop.1.backlog"
    backlog = Backlog(path)
    first = backlog.add(["a", "b"])
    backlog.add(["c"])
    backlog.done([first.number])
    backlog.close()
    with path.open("ab") as f:
        f.write(b'{"n": 9, "t": 1.0, "ids": ["torn')  # a crash in the middle of an append
    assert [e.ids for e in read_backlog(path)] == [["c"]]
    again = Backlog(path)
    assert [e.ids for e in again.pending()] == [["c"]]
    later = again.add(["d"])
    assert later.number > 2
    again.done([e.number for e in again.pending()])
    assert len(again) == 0 and path.stat().st_size == 0  # all applied: the file starts over
    again.close()
