"""GPU search for the sidecar, with every GPU import guarded so CPU-only machines never need CUDA.

When the sidecar's device resolves to the GPU (`dsr.device.resolve_device(..., faiss=True)`: "auto" or
"cuda" with a GPU present; without one both give the CPU, "cuda" with a warning), search is exact on the
GPU: FAISS's GPU flat index when the faiss build has GPU support, otherwise a matrix product and top-k
with torch on CUDA.
An exact search on a GPU is both faster and more accurate than HNSW on a CPU at these sizes, which is
why the approximate kinds are a CPU-side choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dsr.device import faiss_gpu_count


class GpuExactSearcher:
    """Exact inner-product search over a fixed set of rows on the GPU.

    Rebuilt (cheaply: one host-to-device copy) whenever the index changed since the last search.
    """

    def __init__(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        self.rows = rows  # position in `vectors` -> row number in the FaissIndex
        self.backend = "faiss-gpu" if faiss_gpu_count() > 0 else "torch-cuda"
        self._gpu: Any
        if self.backend == "faiss-gpu":
            import faiss

            self._res = faiss.StandardGpuResources()
            cpu = faiss.IndexFlatIP(vectors.shape[1])
            cpu.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self._gpu = faiss.index_cpu_to_gpu(self._res, 0, cpu)
        else:
            import torch

            self._gpu = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to("cuda")

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers (n, k'), k' = min(k, rows)."""
        k = min(k, len(self.rows))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if self.backend == "faiss-gpu":
            scores, pos = self._gpu.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        else:
            import torch

            with torch.no_grad():
                q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to("cuda")
                top = torch.topk(q @ self._gpu.T, k, dim=1)
                scores, pos = top.values.cpu().numpy(), top.indices.cpu().numpy()
        return scores.astype(np.float32), self.rows[pos]
