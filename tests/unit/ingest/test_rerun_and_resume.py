"""A finished ingest run again is a no-op that says so; a resumed one puts back what the sidecar lost.

Against the embedded backend (a real index on disk); the same behaviour on Elasticsearch and
OpenSearch is pinned in tests/integration/ingest/test_journal_damage.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dsr.backends import SearchBackend
from dsr.cli import main
from dsr.encoders.hashing import HashingEncoder
from dsr.ingest.checkpoint import Checkpoint, Completion, completion_path, sidecar_state
from dsr.ingest.pipeline import IngestOptions, ingest
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.storage import JOURNAL, JournalCorruptError

from ...support.ingest_runs import CountingBackend, DyingEncoder, Stop, run


def write_catalog(path: Path, n: int, *, title: str = "cordless drill") -> set[str]:
    rows = [{"id": f"p{i:03d}", "title": f"{title} {i}", "brand": "acme", "price": 10.0 + i} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {r["id"] for r in rows}


# ------------------------------------------------------------------------------------ finished: a no-op


def test_a_second_ingest_of_the_same_catalog_writes_nothing_and_says_so(embedded_backend, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 25)
    first = run(embedded_backend, index_name, tmp_path)
    assert first.written == 25 and not first.up_to_date
    assert not (tmp_path / "checkpoint.json").exists() and completion_path(tmp_path / "checkpoint.json").exists()
    state, journal = sidecar_state(tmp_path / "sidecar"), (tmp_path / "sidecar" / JOURNAL).read_bytes()

    counting = CountingBackend(embedded_backend)
    again = run(counting, index_name, tmp_path)
    assert again.up_to_date and counting.writes == 0
    assert (again.read, again.written, again.rejected, again.exit_code) == (25, 25, 0, 0)
    assert sidecar_state(tmp_path / "sidecar") == state and (tmp_path / "sidecar" / JOURNAL).read_bytes() == journal
    assert again.summary().startswith(f"nothing to do: {tmp_path / 'catalog.jsonl'} is unchanged")
    assert "--force" in again.summary()


def test_force_ingests_the_unchanged_catalog_again(embedded_backend, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 25)
    first = run(embedded_backend, index_name, tmp_path)
    counting = CountingBackend(embedded_backend)
    forced = run(counting, index_name, tmp_path, force=True)
    assert not forced.up_to_date and forced.written == 25 and counting.writes >= 3
    assert sidecar_state(tmp_path / "sidecar") != {"version": first.sidecar, "journal_bytes": 0}
    assert run(embedded_backend, index_name, tmp_path).up_to_date  # and the forced run is recorded in turn


def test_a_changed_catalog_is_ingested(embedded_backend, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 25)
    run(embedded_backend, index_name, tmp_path)
    stat = (tmp_path / "catalog.jsonl").stat()
    ids = write_catalog(tmp_path / "catalog.jsonl", 25, title="impact drivers")  # same size, other content
    os.utime(tmp_path / "catalog.jsonl", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime
    assert (tmp_path / "catalog.jsonl").stat().st_size == stat.st_size
    again = run(embedded_backend, index_name, tmp_path)
    assert not again.up_to_date and again.written == 25
    embedded_backend.refresh(index_name)
    assert embedded_backend.mget(index_name, ["p003"])["p003"]["title"] == "impact drivers 3"
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == ids


def test_a_touched_but_identical_catalog_is_still_a_no_op(embedded_backend, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 12)
    run(embedded_backend, index_name, tmp_path)
    os.utime(tmp_path / "catalog.jsonl")
    assert run(embedded_backend, index_name, tmp_path).up_to_date


def test_a_sidecar_or_index_changed_since_means_ingesting_again(embedded_backend, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 12)
    run(embedded_backend, index_name, tmp_path)
    embedded_backend.delete(index_name, ["p001"])
    embedded_backend.refresh(index_name)
    assert not run(embedded_backend, index_name, tmp_path).up_to_date  # the index lost a document
    assert embedded_backend.count(index_name) == 12
    embedded_backend.delete_index(index_name)
    assert not run(embedded_backend, index_name, tmp_path).up_to_date  # the index is gone
    other = run(embedded_backend, index_name, tmp_path)
    assert other.up_to_date
    record = Completion.load(completion_path(tmp_path / "checkpoint.json"))
    assert record is not None and record.model == {"encoder": "HashingEncoder", "dim": 16, "model": "hashing:16"}


def test_a_run_that_stops_early_leaves_no_completion_record(embedded_backend, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 30)
    with pytest.raises(Stop):
        run(embedded_backend, index_name, tmp_path, encoder=DyingEncoder(1))
    assert not completion_path(tmp_path / "checkpoint.json").exists()
    resumed = run(embedded_backend, index_name, tmp_path)
    assert resumed.resumed_from_row == 10 and not resumed.up_to_date and resumed.written == 30


def test_the_command_says_nothing_to_do_then_force_rewrites_and_a_changed_catalog_ingests(tmp_path, capsys):
    write_catalog(tmp_path / "catalog.jsonl", 15)
    args = ["--engine", "embedded", "--data-dir", str(tmp_path / "data"), "ingest", str(tmp_path / "catalog.jsonl"),
            "--index", "shop", "--model", "hashing:16", "--report", str(tmp_path / "report.json")]
    main(args)
    assert "done: read 15, written 15" in capsys.readouterr().err
    main(args)
    err = capsys.readouterr().err
    assert "nothing to do" in err and "nothing was written" in err
    assert json.loads((tmp_path / "report.json").read_text())["up_to_date"] is True
    main([*args, "--force"])
    assert "done: read 15, written 15" in capsys.readouterr().err
    write_catalog(tmp_path / "catalog.jsonl", 16)
    main(args)
    assert "done: read 16, written 16" in capsys.readouterr().err


# -------------------------------------------------------------------------- resumed: what the sidecar lost


def killed_after(backend: SearchBackend, index: str, work: Path, batches: int) -> int:
    """Run until `batches` batches are written and checkpointed, then die; returns where the last began."""
    with pytest.raises(Stop):
        run(backend, index, work, encoder=DyingEncoder(batches))
    checkpoint = Checkpoint.load(work / "checkpoint.json")
    assert checkpoint is not None and checkpoint.rows_done >= 10 * batches
    journal = work / "sidecar" / JOURNAL
    data = journal.read_bytes()
    return data.rindex(b"REC2")


def test_a_resumed_ingest_rewrites_items_the_sidecar_lost(embedded_backend, index_name, tmp_path, caplog):
    ids = write_catalog(tmp_path / "catalog.jsonl", 50)
    last = killed_after(embedded_backend, index_name, tmp_path, 3)
    journal = tmp_path / "sidecar" / JOURNAL
    journal.write_bytes(journal.read_bytes()[:last])  # the last acknowledged batch is gone from the sidecar
    assert len(FaissIndex.load(tmp_path / "sidecar", device="cpu")) == 20

    resumed = run(embedded_backend, index_name, tmp_path)
    assert resumed.resumed_from_row == 30 and resumed.restored == 10 and resumed.written == 50
    assert "lacked 10 items the checkpoint counted as done" in caplog.text
    assert "re-wrote 10 items" in resumed.summary()
    loaded = FaissIndex.load(tmp_path / "sidecar", device="cpu")
    assert set(loaded.ids()) == ids
    np.testing.assert_allclose(loaded.vectors(["p025"]), HashingEncoder(16).encode_items(
        [{"id": "p025", "title": "cordless drill 25", "brand": "acme", "price": 35.0}]), rtol=1e-6)


def test_a_resume_does_not_resurrect_a_deleted_row_or_put_back_a_duplicate(embedded_backend, index_name, tmp_path):
    rows = [{"id": f"p{i:03d}", "title": f"drill {i}"} for i in range(30)]
    rows[4] = {"id": "p002", "title": "a duplicate"}
    rows[7] = {"id": "p007", "_deleted": True}
    (tmp_path / "catalog.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    killed_after(embedded_backend, index_name, tmp_path, 2)
    resumed = run(embedded_backend, index_name, tmp_path)
    assert resumed.restored == 0
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == (
        {r["id"] for r in rows} - {"p004", "p007"})


def test_a_resume_over_a_corrupt_journal_refuses_and_verify_repair_puts_back_what_it_held(
        embedded_backend, index_name, tmp_path):
    from dsr.ingest.verify import verify

    ids = write_catalog(tmp_path / "catalog.jsonl", 50)
    last = killed_after(embedded_backend, index_name, tmp_path, 3)
    journal = tmp_path / "sidecar" / JOURNAL
    data = bytearray(journal.read_bytes())
    data[-1] ^= 0x01  # one flipped bit in the last, fsynced record
    journal.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=rf"corrupt at byte {last} .*--repair"):
        run(embedded_backend, index_name, tmp_path)

    repaired = verify(embedded_backend, index_name, tmp_path / "sidecar", repair=True, encoder=HashingEncoder(16))
    assert repaired.added == 10 and repaired.repaired
    assert list((tmp_path / "sidecar").glob(f"{JOURNAL}.damaged-*"))
    resumed = run(embedded_backend, index_name, tmp_path)
    assert resumed.written == 50 and resumed.restored == 0
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == ids
    assert verify(embedded_backend, index_name, tmp_path / "sidecar").clean


def test_without_a_model_identity_a_run_is_never_skipped(embedded_backend, index_name, tmp_path):
    write_catalog(tmp_path / "catalog.jsonl", 12)
    run(embedded_backend, index_name, tmp_path)
    again = ingest(tmp_path / "catalog.jsonl", backend=embedded_backend, index=index_name, encoder=HashingEncoder(16),
                   sidecar_dir=tmp_path / "sidecar", rejects_path=tmp_path / "rejects.jsonl",
                   checkpoint_path=tmp_path / "checkpoint.json", options=IngestOptions(batch_size=10, progress=False))
    assert not again.up_to_date and again.written == 12  # a retrained encoder of the same kind looks the same


def test_a_resume_deletes_again_what_a_lost_record_had_deleted(embedded_backend, index_name, tmp_path):
    ids = write_catalog(tmp_path / "catalog.jsonl", 30)
    run(embedded_backend, index_name, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "catalog.jsonl").read_text().splitlines()]
    rows[5] = {"id": "p005", "_deleted": True}
    (tmp_path / "catalog.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    last = killed_after(embedded_backend, index_name, tmp_path, 1)  # the first batch: 9 upserts, then the delete
    journal = tmp_path / "sidecar" / JOURNAL
    journal.write_bytes(journal.read_bytes()[:last])
    assert "p005" in FaissIndex.load(tmp_path / "sidecar", device="cpu")

    resumed = run(embedded_backend, index_name, tmp_path)
    assert resumed.restored == 1 and resumed.deleted == 1
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == ids - {"p005"}
