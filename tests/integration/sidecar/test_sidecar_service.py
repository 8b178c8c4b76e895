"""`dsr sidecar serve` as its own process, queried over real HTTP; a corrupted index is refused."""

from __future__ import annotations

import subprocess

import numpy as np

from dsr.sidecar import open_vector_index
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.remote import RemoteVectorIndex
from dsr.sidecar.storage import current_version

from ...support.sidecar_process import dsr_argv, served_sidecar


def _vectors(n: int, dim: int) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_served_sidecar_answers_like_the_in_process_one(tmp_path):
    x = _vectors(2_000, 32)
    index = FaissIndex(32, kind="hnsw", device="cpu")
    index.upsert([f"sku-{i}" for i in range(len(x))], x)
    index.save(tmp_path / "sc")
    with served_sidecar(tmp_path / "sc") as url:
        remote = open_vector_index(url)
        assert isinstance(remote, RemoteVectorIndex)
        assert len(remote) == 2_000 and remote.dim == 32 and remote.stats()["kind"] == "hnsw"
        loaded = FaissIndex.load(tmp_path / "sc", device="cpu")
        scores, ids = remote.search(x[:8], 5)
        want_scores, want_ids = loaded.search(x[:8], 5)
        assert ids == want_ids
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
        # a newer snapshot is picked up by /reload
        loaded.delete(["sku-0"])
        loaded.save(tmp_path / "sc")
        assert remote.reload() == 1_999
        assert "sku-0" not in remote.search(x[:1], 5)[1][0]
        remote.close()


def test_a_corrupted_index_file_is_refused_by_the_cli(tmp_path):
    index = FaissIndex(8, device="cpu")
    index.upsert(["a", "b"], _vectors(2, 8))
    index.save(tmp_path / "sc")
    ok = subprocess.run(dsr_argv("sidecar", "stats", "--dir", str(tmp_path / "sc")), capture_output=True, text=True)
    assert ok.returncode == 0 and '"count": 2' in ok.stdout
    faiss_file = tmp_path / "sc" / current_version(tmp_path / "sc") / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:-16])  # truncated, as by a full disk
    bad = subprocess.run(dsr_argv("sidecar", "stats", "--dir", str(tmp_path / "sc")), capture_output=True, text=True)
    assert bad.returncode == 2
    assert "index.faiss is truncated" in bad.stderr and "Traceback" not in bad.stderr
