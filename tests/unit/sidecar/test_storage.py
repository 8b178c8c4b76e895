"""Sidecar files: atomic snapshots, checksums that refuse damage, a journal that survives a torn write
and refuses a damaged record instead of dropping it."""

from __future__ import annotations

import json
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from dsr.cli import main
from dsr.errors import VectorIndexError
from dsr.sidecar import open_vector_index
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.storage import CURRENT, JOURNAL, JournalCorruptError, current_version, set_aside_damaged_journal
from dsr.sidecar.store import SidecarStore


def rows(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_load_round_trip_keeps_ids_vectors_and_deletions(tmp_path, kind):
    x = rows(300)
    ids = [f"id{i}" for i in range(300)]
    index = FaissIndex(8, kind=kind, device="cpu", ef_search=40)
    index.upsert(ids, x)
    index.delete(["id7"])
    index.save(tmp_path / "sc")
    loaded = FaissIndex.load(tmp_path / "sc", device="cpu")
    assert len(loaded) == 299 and loaded.kind == kind and loaded.config.ef_search == 40
    assert sorted(loaded.ids()) == sorted(set(ids) - {"id7"})
    np.testing.assert_array_equal(loaded.vectors(["id3"]), x[3:4])
    assert loaded.search(x[:3], 4)[1] == index.search(x[:3], 4)[1]


def test_open_vector_index_loads_a_directory(tmp_path):
    index = FaissIndex(8, device="cpu")
    index.upsert(["a"], rows(1))
    index.save(tmp_path / "sc")
    assert open_vector_index(tmp_path / "sc", device="cpu").ids() == ["a"]


def test_a_second_save_replaces_the_snapshot_and_removes_the_old_one(tmp_path):
    index = FaissIndex(8, device="cpu")
    index.upsert(["a"], rows(1))
    index.save(tmp_path)
    first = current_version(tmp_path)
    index.upsert(["b"], rows(1, seed=1))
    index.save(tmp_path)
    second = current_version(tmp_path)
    assert first != second
    assert not (tmp_path / first).exists()
    assert sorted(FaissIndex.load(tmp_path).ids()) == ["a", "b"]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("name", ["vectors.npy", "index.faiss", "ids.json"])
def test_a_corrupted_or_truncated_file_is_refused(tmp_path, name, damage):
    index = FaissIndex(8, device="cpu")
    index.upsert([str(i) for i in range(50)], rows(50))
    index.save(tmp_path)
    path = tmp_path / current_version(tmp_path) / name
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(VectorIndexError, match=rf"{name}.*(corrupt|truncated)"):
        FaissIndex.load(tmp_path)


def test_a_missing_sidecar_says_so(tmp_path):
    with pytest.raises(VectorIndexError, match="no sidecar"):
        FaissIndex.load(tmp_path / "nothing")


def test_a_crash_before_the_pointer_swap_leaves_the_old_snapshot_in_force(tmp_path):
    index = FaissIndex(8, device="cpu")
    index.upsert(["a"], rows(1))
    index.save(tmp_path)
    # A save that died half-way leaves a temp folder and never touches CURRENT.
    (tmp_path / ".v-000002.crashed").mkdir()
    (tmp_path / ".v-000002.crashed" / "vectors.npy").write_bytes(b"half")
    assert FaissIndex.load(tmp_path).ids() == ["a"]
    assert (tmp_path / CURRENT).read_text() == "v-000001"


def test_store_journal_makes_each_batch_durable_without_a_snapshot(tmp_path):
    store = SidecarStore.open(tmp_path, dim=8, device="cpu")
    store.upsert(["a", "b"], rows(2))
    store.delete(["a"])
    store.upsert(["c"], rows(1, seed=3))
    # no checkpoint, no close: as after SIGKILL
    loaded = FaissIndex.load(tmp_path, device="cpu")
    assert sorted(loaded.ids()) == ["b", "c"]


def test_store_drops_a_torn_journal_tail(tmp_path):
    store = SidecarStore.open(tmp_path, dim=8, device="cpu")
    store.upsert(["a"], rows(1))
    store.upsert(["b"], rows(1, seed=1))
    store.close()
    journal = tmp_path / JOURNAL
    journal.write_bytes(journal.read_bytes()[:-5])  # the last record was being written when the power went
    assert FaissIndex.load(tmp_path).ids() == ["a"]
    reopened = SidecarStore.open(tmp_path, dim=8, device="cpu")
    reopened.upsert(["c"], rows(1, seed=2))
    assert sorted(FaissIndex.load(tmp_path).ids()) == ["a", "c"]


def test_store_checkpoint_folds_the_journal_into_a_snapshot(tmp_path):
    store = SidecarStore.open(tmp_path, dim=8, device="cpu")
    store.upsert(["a", "b"], rows(2))
    store.checkpoint()
    store.upsert(["c"], rows(1, seed=1))
    store.close()
    assert sorted(FaissIndex.load(tmp_path).ids()) == ["a", "b", "c"]
    assert (tmp_path / JOURNAL).stat().st_size < 200  # only "c" is in the journal


def test_store_refuses_a_different_dimension(tmp_path):
    SidecarStore.open(tmp_path, dim=8, device="cpu").close()
    with pytest.raises(VectorIndexError, match="dimensional"):
        SidecarStore.open(tmp_path, dim=16, device="cpu")


# ----------------------------------------------------------------------------- torn tail or corruption


def journal_of_three_batches(directory: Path) -> tuple[Path, int]:
    """A sidecar whose journal holds batches "a", "b" and "c"; returns the journal and where "c" starts."""
    store = SidecarStore.open(directory, dim=8, device="cpu")
    store.upsert(["a"], rows(1))
    store.upsert(["b"], rows(1, seed=1))
    last = (directory / JOURNAL).stat().st_size
    store.upsert(["c"], rows(1, seed=2))
    store.close()
    return directory / JOURNAL, last


def write_v1_journal(directory: Path, batches: list[tuple[list[str], np.ndarray]]) -> Path:
    """A journal as dsr wrote it before records had a header checksum (`REC1`)."""
    path = directory / JOURNAL
    data = b"DSRJOURNAL1\n" + json.dumps({"base": current_version(directory)}).encode() + b"\n"
    for ids, vectors in batches:
        id_bytes = json.dumps(ids).encode()
        vec_bytes = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
        crc = zlib.crc32(vec_bytes, zlib.crc32(id_bytes))
        data += struct.pack("<4sBIIII", b"REC1", 1, len(ids), vectors.shape[1], len(id_bytes), crc)
        data += id_bytes + vec_bytes
    path.write_bytes(data)
    return path


def test_every_flipped_byte_of_the_last_complete_record_is_refused_naming_file_and_offset(tmp_path):
    journal, last = journal_of_three_batches(tmp_path)
    original = journal.read_bytes()
    assert len(original) - last > 40  # header, ids and vector bytes are all covered below
    for position in range(last, len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0x01
        journal.write_bytes(bytes(damaged))
        with pytest.raises(JournalCorruptError, match=rf"{JOURNAL} is corrupt at byte {last} .*dsr verify") as info:
            FaissIndex.load(tmp_path, device="cpu")
        assert info.value.offset == last and info.value.path == journal, position
    with pytest.raises(JournalCorruptError):
        SidecarStore.open(tmp_path, dim=8, device="cpu")  # an ingest refuses to write on top of it
    assert journal.read_bytes() == bytes(damaged)  # and leaves the evidence alone


def test_a_flipped_byte_inside_the_journal_is_refused_too(tmp_path):
    journal, last = journal_of_three_batches(tmp_path)
    data = bytearray(journal.read_bytes())
    data[last - 3] ^= 0xFF  # a vector byte of "b"
    journal.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="checksum"):
        FaissIndex.load(tmp_path, device="cpu")


def test_a_damaged_journal_header_is_refused_not_taken_for_an_older_journal(tmp_path):
    journal, _ = journal_of_three_batches(tmp_path)
    data = bytearray(journal.read_bytes())
    data[3] ^= 0x20
    journal.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="at byte 0"):
        FaissIndex.load(tmp_path, device="cpu")


@pytest.mark.parametrize("cut", [1, 20, 40, 60])  # in the vectors, the ids, the header, the magic
def test_a_torn_tail_still_loads_with_a_warning_and_is_cut_off_on_the_next_write(tmp_path, caplog, cut):
    journal, last = journal_of_three_batches(tmp_path)
    record = journal.stat().st_size - last
    assert cut < record
    journal.write_bytes(journal.read_bytes()[:-cut])
    with caplog.at_level(logging.WARNING, logger="dsr.sidecar.storage"):
        assert sorted(FaissIndex.load(tmp_path, device="cpu").ids()) == ["a", "b"]
    assert f"incomplete last record at byte {last}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dsr.sidecar.storage"):
        store = SidecarStore.open(tmp_path, dim=8, device="cpu")
    assert "cut off" in caplog.text and journal.stat().st_size == last
    store.upsert(["d"], rows(1, seed=4))
    store.close()
    assert sorted(FaissIndex.load(tmp_path, device="cpu").ids()) == ["a", "b", "d"]


def test_a_zero_filled_tail_left_by_a_crash_is_a_torn_tail(tmp_path):
    journal, last = journal_of_three_batches(tmp_path)
    size = journal.stat().st_size
    journal.write_bytes(journal.read_bytes()[:last] + bytes(size - last))
    assert sorted(FaissIndex.load(tmp_path, device="cpu").ids()) == ["a", "b"]


def test_a_journal_written_before_header_checksums_still_loads_and_takes_new_records(tmp_path):
    SidecarStore.open(tmp_path, dim=8, device="cpu").close()
    journal = write_v1_journal(tmp_path, [(["a", "b"], rows(2)), (["c"], rows(1, seed=1))])
    assert sorted(FaissIndex.load(tmp_path, device="cpu").ids()) == ["a", "b", "c"]
    with SidecarStore.open(tmp_path, dim=8, device="cpu") as store:
        store.upsert(["d"], rows(1, seed=2))
    assert sorted(FaissIndex.load(tmp_path, device="cpu").ids()) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(FaissIndex.load(tmp_path, device="cpu").vectors(["c"]), rows(1, seed=1))
    assert journal.read_bytes().count(b"REC1") == 2


def test_an_old_journal_tells_a_torn_tail_from_a_flipped_byte_too(tmp_path):
    SidecarStore.open(tmp_path, dim=8, device="cpu").close()
    journal = write_v1_journal(tmp_path, [(["a"], rows(1)), (["b"], rows(1, seed=1))])
    data = journal.read_bytes()
    journal.write_bytes(data[:-7])
    assert FaissIndex.load(tmp_path, device="cpu").ids() == ["a"]
    damaged = bytearray(data)
    damaged[-7] ^= 0x01
    journal.write_bytes(bytes(damaged))
    with pytest.raises(JournalCorruptError, match="complete record fails its checksum"):
        FaissIndex.load(tmp_path, device="cpu")


def test_setting_the_damaged_part_aside_makes_the_sidecar_load_without_it(tmp_path):
    journal, last = journal_of_three_batches(tmp_path)
    data = bytearray(journal.read_bytes())
    data[-1] ^= 0x01
    journal.write_bytes(bytes(data))
    aside = set_aside_damaged_journal(tmp_path)
    assert aside is not None and aside.read_bytes() == bytes(data[last:])
    assert sorted(FaissIndex.load(tmp_path, device="cpu").ids()) == ["a", "b"]
    assert set_aside_damaged_journal(tmp_path) is None  # sound now


def test_sidecar_stats_fails_on_a_corrupt_journal_and_says_what_to_do(tmp_path, capsys):
    journal, _ = journal_of_three_batches(tmp_path / "sc")
    data = bytearray(journal.read_bytes())
    data[-1] ^= 0x01
    journal.write_bytes(bytes(data))
    with pytest.raises(SystemExit) as exit_info:
        main(["sidecar", "stats", "--dir", str(tmp_path / "sc")])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert str(journal) in err and "--repair" in err
