"""`dsr sidecar serve` as its own process, queried over real HTTP; a corrupted index is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import numpy as np

from dsr.engines import free_port
from dsr.sidecar import open_vector_index
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.remote import RemoteVectorIndex
from dsr.sidecar.storage import current_version


def _vectors(n: int, dim: int) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _dsr(*args: str) -> list[str]:
    return [sys.executable, "-c", "from dsr.cli import main; main()", *args]


def test_served_sidecar_answers_like_the_in_process_one(tmp_path):
    x = _vectors(2_000, 32)
    index = FaissIndex(32, kind="hnsw", device="cpu")
    index.upsert([f"sku-{i}" for i in range(len(x))], x)
    index.save(tmp_path / "sc")
    port = free_port()
    proc = subprocess.Popen(_dsr("sidecar", "serve", "--dir", str(tmp_path / "sc"), "--port", str(port),
                                 "--device", "cpu"), env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_corrupted_index_file_is_refused_by_the_cli(tmp_path):
    index = FaissIndex(8, device="cpu")
    index.upsert(["a", "b"], _vectors(2, 8))
    index.save(tmp_path / "sc")
    ok = subprocess.run(_dsr("sidecar", "stats", "--dir", str(tmp_path / "sc")), capture_output=True, text=True)
    assert ok.returncode == 0 and '"count": 2' in ok.stdout
    faiss_file = tmp_path / "sc" / current_version(tmp_path / "sc") / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:-16])  # truncated, as by a full disk
    bad = subprocess.run(_dsr("sidecar", "stats", "--dir", str(tmp_path / "sc")), capture_output=True, text=True)
    assert bad.returncode == 2
    assert "index.faiss is truncated" in bad.stderr and "Traceback" not in bad.stderr
