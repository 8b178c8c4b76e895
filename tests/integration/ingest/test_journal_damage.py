"""A damaged sidecar journal against real Elasticsearch and OpenSearch nodes: nothing is lost quietly.

An ingest dies mid-run; one bit of its last fsynced journal record flips. The resumed ingest refuses
to write on top of it, `verify --repair` puts back from the cluster what the record held, and the
resume then finishes with both stores equal. A record that went missing altogether is put back by
the resume itself. A finished ingest run again writes nothing, unless forced or the catalog changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsr.backends import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.ingest.checkpoint import sidecar_state
from dsr.ingest.pipeline import EXIT_REJECTED
from dsr.ingest.verify import verify
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.storage import JOURNAL, JournalCorruptError

from ...support.ingest_runs import CountingBackend, DyingEncoder, Stop, run


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


def write_catalog(path: Path, n: int) -> set[str]:
    """`n` good rows, and after the 15th one the cluster refuses (attributes.color is mapped as text by then)."""
    rows = [{"id": f"p{i:03d}", "title": f"cordless drill {i}", "attributes": {"color": "red"}} for i in range(n)]
    rows.insert(15, {"id": "bad-mapping", "title": "Odd", "attributes": {"color": {"r": 1}}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {r["id"] for r in rows} - {"bad-mapping"}


def killed_after_three_batches(cluster: SearchBackend, index: str, work: Path) -> int:
    with pytest.raises(Stop):
        run(cluster, index, work, encoder=DyingEncoder(3))
    return (work / "sidecar" / JOURNAL).read_bytes().rindex(b"REC2")  # where the last record starts


def test_a_flipped_bit_in_the_last_record_stops_the_resume_until_verify_repair_restores_it(
        cluster, index_name, tmp_path):
    good = write_catalog(tmp_path / "catalog.jsonl", 60)
    last = killed_after_three_batches(cluster, index_name, tmp_path)
    journal = tmp_path / "sidecar" / JOURNAL
    data = bytearray(journal.read_bytes())
    data[-1] ^= 0x01
    journal.write_bytes(bytes(data))

    with pytest.raises(JournalCorruptError, match=rf"{journal} is corrupt at byte {last} .*dsr verify"):
        run(cluster, index_name, tmp_path)
    repaired = verify(cluster, index_name, tmp_path / "sidecar", repair=True, encoder=HashingEncoder(16))
    assert repaired.added == 10 and repaired.repaired

    resumed = run(cluster, index_name, tmp_path)
    assert resumed.resumed_from_row > 0 and resumed.restored == 0  # the refused row is not "restored"
    assert (resumed.written, resumed.rejected, resumed.exit_code) == (60, 1, EXIT_REJECTED)
    cluster.refresh(index_name)
    assert set(cluster.iter_ids(index_name)) == good
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == good
    assert verify(cluster, index_name, tmp_path / "sidecar").clean


def test_a_resume_puts_back_a_batch_the_journal_lost(cluster, index_name, tmp_path):
    good = write_catalog(tmp_path / "catalog.jsonl", 60)
    last = killed_after_three_batches(cluster, index_name, tmp_path)
    journal = tmp_path / "sidecar" / JOURNAL
    journal.write_bytes(journal.read_bytes()[:last])  # as a dsr that dropped a damaged last record left it
    resumed = run(cluster, index_name, tmp_path)
    assert resumed.restored == 10 and resumed.written == 60
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == good
    assert verify(cluster, index_name, tmp_path / "sidecar").clean


def test_a_finished_ingest_run_again_writes_nothing_unless_forced_or_changed(cluster, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 30)
    first = run(cluster, index_name, tmp_path)
    assert first.exit_code == EXIT_REJECTED and not first.up_to_date
    state, count = sidecar_state(tmp_path / "sidecar"), cluster.count(index_name)

    counting = CountingBackend(cluster)
    again = run(counting, index_name, tmp_path)
    assert again.up_to_date and counting.writes == 0
    assert (again.written, again.rejected, again.exit_code) == (30, 1, EXIT_REJECTED)  # as the run that did it
    assert sidecar_state(tmp_path / "sidecar") == state and cluster.count(index_name) == count
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 1  # the rejects are still there

    forced = run(counting, index_name, tmp_path, force=True)
    assert not forced.up_to_date and forced.written == 30 and counting.writes > 0
    assert sidecar_state(tmp_path / "sidecar") != state

    good = write_catalog(tmp_path / "catalog.jsonl", 31)
    changed = run(cluster, index_name, tmp_path)
    assert not changed.up_to_date and changed.written == 31
    cluster.refresh(index_name)
    assert set(cluster.iter_ids(index_name)) == good
