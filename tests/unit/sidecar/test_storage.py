"""Sidecar files: atomic snapshots, checksums that refuse damage, a journal that survives a torn write."""

from __future__ import annotations

import numpy as np
import pytest

from dsr.errors import VectorIndexError
from dsr.sidecar import open_vector_index
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.storage import CURRENT, JOURNAL, current_version
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
