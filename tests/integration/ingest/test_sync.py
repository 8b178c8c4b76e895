"""`dsr sync` against real Elasticsearch and OpenSearch: writes made straight to the cluster reach the sidecar.

The shop's index names its title `name` and stamps `updated_at`; its sidecar is built by attach. Then
documents are added, retitled and deleted directly on the cluster, and a sync (by `_seq_no`, or by
the update-time field) must leave the sidecar and its item records holding exactly the index's
documents, each vector a fresh encoding of the document's current title.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dsr.backends.base import SearchBackend
from dsr.cli import cli
from dsr.encoders.hashing import HashingEncoder
from dsr.ingest.attach import AttachOptions, attach
from dsr.ingest.follow import SEEN_FILE, follower_for
from dsr.ingest.sync import sync_once
from dsr.settings import ConnectionSettings
from dsr.sidecar import default_sidecar_dir
from dsr.sidecar.storage import JOURNAL

from ...support.shop_sidecar import assert_sidecar_equals_index

DIM = 64
MODEL = f"hashing:{DIM}"


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


def stamp(minute: int) -> str:
    return f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z"


@pytest.fixture
def shop(cluster: SearchBackend, tmp_path: Path) -> Iterator[tuple[str, Path, ConnectionSettings]]:
    index = f"dsr-sync-{uuid.uuid4().hex[:8]}"
    cluster.client.indices.create(index=index, body={
        "settings": {"number_of_shards": 2, "number_of_replicas": 0},
        "mappings": {"properties": {"name": {"type": "text"}, "updated_at": {"type": "date"}}}})
    body: list[dict] = []
    for i in range(200):
        body += [{"index": {"_index": index, "_id": f"d{i:04d}"}}, {"name": f"amber boot {i}", "updated_at": stamp(0)}]
    assert not cluster.client.bulk(body=body, refresh=True)["errors"]
    sidecar = default_sidecar_dir(tmp_path, index)
    attach(backend=cluster, index=index, encoder=HashingEncoder(DIM), sidecar_dir=sidecar,
           rejects_path=tmp_path / "rejects.jsonl", checkpoint_path=tmp_path / "checkpoint.json",
           options=AttachOptions(batch_size=100, progress=False))
    try:
        yield index, sidecar, ConnectionSettings(engine_url=cluster.url, data_dir=tmp_path)
    finally:
        cluster.delete_index(index)


def write_directly(cluster: SearchBackend, index: str, round_: int, minute: int) -> None:
    """Add 20 documents, retitle 20 and delete 10, straight on the cluster."""
    body: list[dict] = []
    for i in range(20):
        body += [{"index": {"_index": index, "_id": f"n{round_}-{i}"}},
                 {"name": f"teal sandal {round_} {i}", "updated_at": stamp(minute)}]
    for i in range(20):
        body += [{"update": {"_index": index, "_id": f"d{round_ * 40 + i:04d}"}},
                 {"doc": {"name": f"cobalt loafer {round_} {i}", "updated_at": stamp(minute)}}]
    for i in range(20, 30):
        body += [{"delete": {"_index": index, "_id": f"d{round_ * 40 + i:04d}"}}]
    assert not cluster.client.bulk(body=body, refresh=True)["errors"]


def test_a_sync_by_seq_no_takes_in_direct_adds_updates_and_deletes(cluster, shop):
    index, sidecar, conn = shop
    follower = follower_for(conn, index, sidecar, HashingEncoder(DIM), index)
    try:
        first = sync_once(follower)  # a sidecar that never followed anything: every document read once
        assert first.changed == 200 and first.deleted == 0
        assert sync_once(follower).changed == 0  # nothing written since
        write_directly(cluster, index, 0, 1)
        report = sync_once(follower, fold_bytes=0)
        assert (report.changed, report.deleted) == (40, 10) and report.folded
        assert (sidecar / JOURNAL).stat().st_size < 100  # the journal folded into a snapshot: its header alone
        assert_sidecar_equals_index(cluster, index, sidecar, dim=DIM)
        assert (sidecar / SEEN_FILE).exists()
    finally:
        follower.close()


def test_a_sync_by_an_update_time_field_reads_only_what_changed_and_still_finds_deletions(cluster, shop):
    index, sidecar, conn = shop
    follower = follower_for(conn, index, sidecar, HashingEncoder(DIM), index)
    try:
        assert sync_once(follower, since_field="updated_at", overlap=0).changed == 200
        write_directly(cluster, index, 1, 5)
        assert sync_once(follower, since_field="updated_at", overlap=60).changed == 210  # from minute 0 - 1 on
        write_directly(cluster, index, 2, 10)
        report = sync_once(follower, since_field="updated_at", overlap=60)
        assert report.changed == 80  # stamped at minute 5 (the last pass's highest) and 10; none of minute 0
        assert report.deleted == 10
        assert_sidecar_equals_index(cluster, index, sidecar, dim=DIM)
    finally:
        follower.close()


def test_the_sync_command_brings_the_default_sidecar_in_step(cluster, shop):
    index, sidecar, conn = shop
    write_directly(cluster, index, 3, 9)
    result = CliRunner().invoke(cli, ["--engine", cluster.url, "--data-dir", str(conn.data_dir), "sync",
                                      "--index", index, "--model", MODEL, "--json"])
    assert result.exit_code == 0, result.output
    assert_sidecar_equals_index(cluster, index, sidecar, dim=DIM)
