"""`LiveVectors` takes up what another writer adds to the sidecar's journal, and a new snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsr.sidecar.live import LiveVectors
from dsr.sidecar.store import SidecarStore


def unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_refresh_replays_only_the_new_journal_records_and_follows_a_checkpoint(tmp_path: Path):
    store = SidecarStore.open(tmp_path, dim=8, kind="flat")
    vectors = unit(4)
    store.upsert(["a", "b"], vectors[:2])
    live = LiveVectors(tmp_path, device="cpu")
    assert set(live.ids()) == {"a", "b"}
    assert live.refresh() is False  # nothing new
    store.upsert(["c"], vectors[2:3])
    store.delete(["a"])
    assert set(live.ids()) == {"a", "b"}  # not taken up until refreshed
    assert live.refresh() is True
    assert set(live.ids()) == {"b", "c"}
    assert live.neighbours(vectors[2], 1).ids[0] == "c"
    store.checkpoint()
    store.upsert(["d"], vectors[3:4])
    assert live.refresh() is True
    assert set(live.ids()) == {"b", "c", "d"} and len(live) == 3 and live.dim == 8
    np.testing.assert_allclose(live.vectors(["d"]), vectors[3:4])
    store.close()
