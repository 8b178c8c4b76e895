"""Writes through `dsr serve` reach the sidecar: the write-through, its backlog, replicas, and fidelity.

The shop's index names its title `name`; its sidecar is built by attach with the hashing encoder.
Writes are sent through dsr (`_bulk` on the index and on `/_bulk` with per-action `_index`, `_doc`,
`_create`, `_update`, `DELETE _doc`); once `/_dsr/stats` says the backlog is empty the sidecar and its
item records must hold exactly the index's documents, each vector a fresh encoding of the current
title, also when `dsr serve` was SIGKILLed in the middle and started again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dsr.backends.base import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.engines import free_port
from dsr.ingest.attach import AttachOptions, attach
from dsr.ingest.follow import follower_for
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings
from dsr.sidecar import default_sidecar_dir

from ..support.shop_sidecar import assert_sidecar_equals_index

DIM = 64
MODEL = f"hashing:{DIM}"
JSON_HEADERS = {"content-type": "application/json"}
NDJSON_HEADERS = {"content-type": "application/x-ndjson"}
WRITES_PER_ROUND = 100  # `mixed_writes`: each acknowledged by the cluster


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


@pytest.fixture
def shop(cluster: SearchBackend, tmp_path: Path) -> Iterator[str]:
    index = f"dsr-writes-{uuid.uuid4().hex[:8]}"
    cluster.client.indices.create(index=index, body={
        "settings": {"number_of_shards": 2, "number_of_replicas": 0},
        "mappings": {"properties": {"name": {"type": "text"}, "stock": {"type": "integer"}}}})
    body: list[dict] = []
    for i in range(300):
        body += [{"index": {"_index": index, "_id": f"d{i:04d}"}}, {"name": f"amber boot {i}", "stock": i}]
    assert not cluster.client.bulk(body=body, refresh=True)["errors"]
    attach(backend=cluster, index=index, encoder=HashingEncoder(DIM), sidecar_dir=default_sidecar_dir(tmp_path, index),
           rejects_path=tmp_path / "rejects.jsonl", checkpoint_path=tmp_path / "checkpoint.json",
           options=AttachOptions(batch_size=100, progress=False))
    try:
        yield index
    finally:
        cluster.delete_index(index)


def app(cluster: SearchBackend, data_dir: Path, index: str) -> Any:
    conn = ConnectionSettings(engine_url=cluster.url, data_dir=data_dir)
    return create_app(ServeSettings(conn, index=index, model=MODEL, reload_s=0.2), follow=follower_for)


def ndjson(lines: list[dict]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def mixed_writes(url: str, index: str, round_: int) -> None:
    """100 writes through `url`: 40 new documents, 30 retitled (partial updates), 20 deletes, 10 single-doc calls."""
    base, own = round_ * 20, 230 + round_ * 3  # updated ids overlap from round to round; `own` do not
    lines: list[dict] = []
    per_action = {"_index": index} if round_ % 2 else {}
    path = "/_bulk" if round_ % 2 else f"/{index}/_bulk"
    for i in range(40):
        lines += [{"index": {**per_action, "_id": f"n{round_}-{i}"}}, {"name": f"teal sandal {round_} {i}"}]
    for i in range(30):
        lines += [{"update": {**per_action, "_id": f"d{base + i:04d}"}},
                  {"doc": {"name": f"cobalt loafer {round_} {i}"}}]
    for i in range(20):
        lines += [{"delete": {**per_action, "_id": f"n{round_ - 1}-{i}" if round_ else f"d{299 - i:04d}"}}]
    r = httpx.post(url + path, content=ndjson(lines), headers=NDJSON_HEADERS, timeout=60)
    assert r.status_code == 200 and not r.json()["errors"], r.text[:500]
    singles = [
        ("PUT", f"/{index}/_doc/s{round_}-0", {"name": f"ivory sneaker {round_}"}),
        ("POST", f"/{index}/_doc/s{round_}-1", {"name": f"olive runner {round_}"}),
        ("PUT", f"/{index}/_create/s{round_}-2", {"name": f"coral clog {round_}"}),
        ("POST", f"/{index}/_update/s{round_}-0", {"doc": {"name": f"slate sneaker {round_}"}}),
        ("DELETE", f"/{index}/_doc/s{round_}-1", None),
        ("POST", f"/{index}/_update/d{own:04d}", {"doc": {"stock": -1}}),  # the title unchanged
        ("POST", f"/{index}/_update/d{own + 1:04d}", {"doc": {"name": f"crimson mule {round_}"}}),
        ("DELETE", f"/{index}/_doc/d{own + 2:04d}", None),
        ("DELETE", f"/{index}/_doc/never-{round_}", None),  # not found: acknowledged, nothing to delete
        ("PUT", f"/{index}/_doc/s{round_}-3", {"name": f"amber wader {round_}"}),
    ]
    for method, doc_path, doc in singles:
        r = httpx.request(method, url + doc_path, json=doc, timeout=30)
        assert r.status_code in (200, 201, 404), r.text


def wait_applied(url: str, index: str, expected: int, timeout: float = 60) -> dict[str, Any]:
    """The write-through's stats once `expected` ids are applied and none waits (an answer's ids are journaled
    just after it is sent, so an empty backlog alone may come before the last answer's)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = httpx.get(f"{url}/_dsr/stats", timeout=10).json()
        entry = stats["indices"][index]
        if entry["backlog"] == 0 and entry["applied"] >= expected:
            return entry
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)


def test_a_thousand_mixed_writes_through_dsr_leave_the_sidecar_equal_to_the_index(cluster, shop, tmp_path,
                                                                                serve_thread):
    with serve_thread(app(cluster, tmp_path, shop)) as url:
        for round_ in range(10):
            mixed_writes(url, shop, round_)
        stats = wait_applied(url, shop, 10 * WRITES_PER_ROUND)
    assert stats["failed"] == 0 and stats["applied"] == 10 * WRITES_PER_ROUND
    assert_sidecar_equals_index(cluster, shop, default_sidecar_dir(tmp_path, shop), dim=DIM)


def without_counters(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {k: without_counters(v) for k, v in answer.items() if k not in ("_seq_no", "_version", "took")}
    if isinstance(answer, list):
        return [without_counters(v) for v in answer]
    return answer


def test_write_answers_through_dsr_equal_the_clusters_own(cluster, shop, tmp_path, serve_thread):
    requests = [
        ("DELETE", f"/{shop}/_doc/missing", None, JSON_HEADERS),
        ("POST", f"/{shop}/_update/missing", json.dumps({"doc": {"name": "x"}}).encode(), JSON_HEADERS),
        ("PUT", f"/{shop}/_create/d0001", json.dumps({"name": "taken"}).encode(), JSON_HEADERS),
        ("POST", f"/{shop}/_bulk", ndjson([{"delete": {"_id": "missing-a"}}, {"delete": {"_id": "missing-b"}}]),
         NDJSON_HEADERS),
        ("POST", f"/{shop}/_doc/bad", b"{not json", JSON_HEADERS),
    ]
    with serve_thread(app(cluster, tmp_path, shop)) as url:
        for method, path, body, headers in requests:
            direct = httpx.request(method, cluster.url + path, content=body, headers=headers, timeout=30)
            through = httpx.request(method, url + path, content=body, headers=headers, timeout=30)
            assert through.status_code == direct.status_code, path
            if direct.status_code >= 400 and "result" not in direct.json():
                assert through.content == direct.content, path  # the cluster's refusal, byte for byte
            else:  # each write moves the sequence number and version, and takes its own time
                assert without_counters(through.json()) == without_counters(direct.json()), path
            assert through.headers["content-type"] == direct.headers["content-type"]


def serve_process(cluster: SearchBackend, data_dir: Path, index: str, port: int) -> subprocess.Popen:
    dsr = Path(sys.executable).with_name("dsr")
    proc = subprocess.Popen([str(dsr), "--engine", cluster.url, "--data-dir", str(data_dir), "serve", "--index",
                             index, "--model", MODEL, "--port", str(port), "--reload-interval", "0.2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_dsr/stats", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "dsr serve did not start"
        time.sleep(0.2)


def pending_in_backlogs(data_dir: Path) -> int:
    from dsr.server.writes import read_backlog

    return sum(len(e.ids) for path in (data_dir / "follow").glob("*.backlog") for e in read_backlog(path))


def read_block(cluster: SearchBackend, index: str, on: bool) -> None:
    """Reads of the index refused (writes still taken): the write-through's re-reads fail and wait in the backlog."""
    cluster.client.indices.put_settings(index=index, body={"index.blocks.read": on})


def test_a_sigkill_in_the_middle_loses_none_of_the_backlog(cluster, shop, tmp_path):
    port = free_port()
    proc = serve_process(cluster, tmp_path, shop, port)
    url = f"http://127.0.0.1:{port}"
    try:
        mixed_writes(url, shop, 0)
        wait_applied(url, shop, WRITES_PER_ROUND)
        read_block(cluster, shop, True)
        for round_ in range(1, 5):
            mixed_writes(url, shop, round_)
        deadline = time.monotonic() + 30
        while (entry := httpx.get(f"{url}/_dsr/stats", timeout=10).json()["indices"][shop])["backlog"] < \
                4 * WRITES_PER_ROUND:
            assert time.monotonic() < deadline, entry
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        left = pending_in_backlogs(tmp_path)
        assert left == 4 * WRITES_PER_ROUND
        read_block(cluster, shop, False)
        port = free_port()  # another port: the backlog the killed process left is taken over all the same
        proc = serve_process(cluster, tmp_path, shop, port)
        url = f"http://127.0.0.1:{port}"
        for round_ in range(5, 10):
            mixed_writes(url, shop, round_)
        stats = wait_applied(url, shop, 9 * WRITES_PER_ROUND)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        read_block(cluster, shop, False)
    assert stats["applied"] >= 9 * WRITES_PER_ROUND  # the 400 replayed and the 500 written since
    assert_sidecar_equals_index(cluster, shop, default_sidecar_dir(tmp_path, shop), dim=DIM)


def test_a_write_through_one_replica_is_searched_through_another_within_a_bounded_time(cluster, shop, tmp_path,
                                                                                     serve_thread):
    with serve_thread(app(cluster, tmp_path, shop)) as a, serve_thread(app(cluster, tmp_path, shop)) as b:
        title = f"periwinkle espadrille {uuid.uuid4().hex[:6]}"
        r = httpx.put(f"{a}/{shop}/_doc/fresh", json={"name": title}, timeout=30)
        assert r.status_code == 201, r.text
        written = time.monotonic()
        query = {"size": 3, "ext": {"dsr": {"text": title, "k": 3, "term_k": 0}}}  # the vector side alone
        while True:
            out = httpx.post(f"{b}/{shop}/_search", json=query, timeout=30).json()
            if out["hits"]["hits"] and out["hits"]["hits"][0]["_id"] == "fresh":
                break
            assert time.monotonic() - written < 10, out
            time.sleep(0.05)
        print(f"a write through replica A was found through replica B after {time.monotonic() - written:.2f}s")


def test_writes_the_sidecar_could_not_take_stay_in_the_backlog_and_the_next_start_applies_them(
        cluster, shop, tmp_path, serve_thread):
    def unreachable(conn: ConnectionSettings, index: str, *args: Any) -> Any:
        return follower_for(conn, f"{index}-gone", *args)  # every re-read fails: the cluster has no such index

    conn = ConnectionSettings(engine_url=cluster.url, data_dir=tmp_path)
    settings = ServeSettings(conn, index=shop, model=MODEL, reload_s=0.2)
    with serve_thread(create_app(settings, follow=unreachable)) as url:
        mixed_writes(url, shop, 0)
        deadline = time.monotonic() + 30
        while (stats := httpx.get(f"{url}/_dsr/stats", timeout=10).json()["indices"][shop])["failed"] == 0:
            assert time.monotonic() < deadline, stats
            time.sleep(0.05)
        assert stats["backlog"] == WRITES_PER_ROUND and stats["applied"] == 0 and stats["lag_s"] >= 0
        assert stats.get("last_error")
    assert pending_in_backlogs(tmp_path) == WRITES_PER_ROUND  # the answers went out; their ids wait on disk
    with serve_thread(app(cluster, tmp_path, shop)) as url:
        stats = wait_applied(url, shop, WRITES_PER_ROUND)
    assert stats["applied"] == WRITES_PER_ROUND and stats["failed"] == 0
    assert pending_in_backlogs(tmp_path) == 0
    assert_sidecar_equals_index(cluster, shop, default_sidecar_dir(tmp_path, shop), dim=DIM)


def test_a_bulk_answer_large_enough_to_be_streamed_is_followed_too(cluster, shop, tmp_path, serve_thread):
    lines: list[dict] = []
    for i in range(2000):  # about 400 kB of answer: relayed as a stream, read as it goes by
        lines += [{"index": {"_id": f"big-{i}"}}, {"name": f"ochre moccasin {i}"}]
    with serve_thread(app(cluster, tmp_path, shop)) as url:
        r = httpx.post(f"{url}/{shop}/_bulk", content=ndjson(lines), headers={**NDJSON_HEADERS,
                       "accept-encoding": "identity"}, timeout=120)
        assert r.status_code == 200 and not r.json()["errors"] and len(r.content) > 256 * 1024
        stats = wait_applied(url, shop, 2000)
    assert stats["applied"] == 2000
    assert_sidecar_equals_index(cluster, shop, default_sidecar_dir(tmp_path, shop), dim=DIM)
