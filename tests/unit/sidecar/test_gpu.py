"""GPU search is exact and agrees with the CPU; asking for a GPU where there is none searches on the CPU
and warns with the fix."""

from __future__ import annotations

import numpy as np
import pytest

from dsr.device import gpu_available, resolve_device
from dsr.sidecar.faiss_index import FaissIndex

HAS_GPU = gpu_available(faiss=True)


def _rows(n: int, dim: int) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_cpu_is_always_available():
    assert resolve_device("cpu", faiss=True) == "cpu"
    assert resolve_device("auto", faiss=True) in ("cpu", "cuda")


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_searches_on_the_cpu_and_names_the_fix():
    with pytest.warns(UserWarning, match="dsr\\[gpu\\]"):
        index = FaissIndex(8, device="cuda")
    assert index.device == "cpu"
    index.upsert(["a", "b"], _rows(2, 8))
    assert index.search(_rows(2, 8)[:1], 1)[1] == [["a"]]


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU")
def test_gpu_search_is_exact_and_skips_deleted_ids():
    x = _rows(5_000, 64)
    ids = [str(i) for i in range(len(x))]
    cpu = FaissIndex(64, kind="flat", device="cpu")
    gpu = FaissIndex(64, kind="hnsw", device="cuda")  # on the GPU every kind is searched exactly
    for index in (cpu, gpu):
        index.upsert(ids, x)
        index.delete(["3"])
    cpu_scores, cpu_ids = cpu.search(x[:20], 10)
    gpu_scores, gpu_ids = gpu.search(x[:20], 10)
    assert gpu_ids == cpu_ids
    np.testing.assert_allclose(gpu_scores, cpu_scores, atol=1e-4)
    assert all("3" not in row for row in gpu_ids)
