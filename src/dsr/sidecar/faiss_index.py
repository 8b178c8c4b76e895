"""`FaissIndex`: the `VectorIndex` over FAISS, keyed by the catalog's own string ids.

Every vector lives in a row of an append-only matrix; the FAISS structure is built over row numbers,
so the int64 label FAISS returns *is* the row number and the row -> string id table (persisted with
the index) maps it back. Replacing or deleting an id marks its old row dead (a tombstone); searches
exclude dead rows with a bitmap `IDSelector`, so they never come back even from HNSW, which cannot
remove points. When dead rows exceed `compact_ratio` of all rows the structure is rebuilt from the
live rows. Re-upserting an unchanged vector is a no-op, so re-ingesting a catalog costs nothing here.

Kinds: `flat` (exact), `hnsw` (graph, fast and accurate, memory = vectors + graph), `ivfpq`
(compressed, for collections too big for RAM as floats; candidates are re-scored exactly from the
stored vectors). `auto` picks by the number of live vectors and upgrades as the collection grows.

The raw float32 vectors are kept (and saved) alongside the FAISS structure: they make rebuilds,
IVF-PQ re-scoring and GPU exact search possible. Memory is therefore about 2x the vectors for HNSW.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from dsr.device import resolve_device
from dsr.errors import VectorIndexError
from dsr.sidecar.base import SIDECAR, Neighbours, neighbours_of
from dsr.sidecar.gpu import GpuExactSearcher
from dsr.sidecar.storage import read_journal, read_snapshot, write_snapshot

KINDS = ("auto", "flat", "hnsw", "ivfpq")
_RANK = {"flat": 0, "hnsw": 1, "ivfpq": 2}


@dataclass(frozen=True)
class IndexConfig:
    """How the FAISS structure is built and searched; saved in the manifest."""

    dim: int
    kind: str = "auto"
    flat_max: int = 20_000  # auto: exact search up to this many vectors
    hnsw_max: int = 5_000_000  # auto: HNSW up to this many, IVF-PQ beyond
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    nlist: int | None = None  # IVF lists; default 4 * sqrt(n)
    pq_m: int | None = None  # PQ sub-quantizers (bytes per vector); default dim / 8
    nprobe: int = 32
    rerank: int = 32  # IVF-PQ: re-score k * rerank candidates exactly (PQ order alone is coarse)
    compact_ratio: float = 0.3

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise VectorIndexError(f"unknown index kind {self.kind!r}: choose one of {', '.join(KINDS)}")
        if self.dim <= 0:
            raise VectorIndexError(f"dimension must be positive, got {self.dim}")

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> IndexConfig:
        known = {k: v for k, v in config.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def kind_for(self, n: int) -> str:
        """The structure to build for `n` live vectors."""
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n <= self.flat_max else "hnsw" if n <= self.hnsw_max else "ivfpq"
        if kind == "ivfpq" and n < self._ivf_min_train():
            return "flat"  # too few vectors to train the quantizers; exact is fast at this size anyway
        return kind

    def nlist_for(self, n: int) -> int:
        if self.nlist:
            return self.nlist
        return int(min(max(16, 4 * math.sqrt(max(n, 1))), max(16, n // 39), 65_536))

    def pq_m_for(self) -> int:
        if self.pq_m:
            return self.pq_m
        for m in (self.dim // 8, self.dim // 4, self.dim // 2, self.dim):
            if m > 0 and self.dim % m == 0:
                return m
        return self.dim

    def _ivf_min_train(self) -> int:
        return max(39 * (self.nlist or 16), 39 * 256)  # PQ codebooks need 39 points per centroid


class FaissIndex:
    """Nearest-neighbour search by inner product over L2-normalised vectors, ids are strings."""

    origin = SIDECAR
    applies_filters = False  # no document fields here: the searcher filters neighbours on their sources

    def __init__(self, dim: int, *, kind: str = "auto", device: str = "auto", **options: Any) -> None:
        self.config = IndexConfig(dim=dim, kind=kind, **options)
        self.device = resolve_device(device, faiss=True)
        self._vecs = np.zeros((0, dim), np.float32)
        self._alive = np.zeros(0, bool)
        self._row_ids: list[str | None] = []
        self._id_to_row: dict[str, int] = {}
        self._n_rows = 0
        self._n_dead = 0
        self._index: Any = None
        self._built_kind: str | None = None
        self._n_indexed = 0
        self._selector: Any = None
        self._selector_bits: np.ndarray | None = None
        self._gpu: GpuExactSearcher | None = None

    # ------------------------------------------------------------------------------------------ basics

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def kind(self) -> str:
        """The structure actually built (the configured kind may be `auto`)."""
        return self._built_kind or self.config.kind_for(len(self))

    def __len__(self) -> int:
        return self._n_rows - self._n_dead

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._id_to_row

    def ids(self) -> list[str]:
        return list(self._id_to_row)

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of these ids (KeyError for an unknown id)."""
        rows = [self._id_to_row[i] for i in ids]
        return self._vecs[rows].copy()

    def similarities(self, query: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        """`query` · the stored vector of each of `ids` held here (the others are absent)."""
        q = self._check_vectors(query)[0]
        held = [i for i in dict.fromkeys(ids) if i in self._id_to_row]
        if not held:
            return {}
        scores = self._vecs[[self._id_to_row[i] for i in held]] @ q
        return dict(zip(held, scores.tolist(), strict=True))

    def stats(self) -> dict[str, Any]:
        return {
            "count": len(self),
            "dim": self.dim,
            "kind": self.kind,
            "configured_kind": self.config.kind,
            "device": self.device,
            "rows": self._n_rows,
            "dead_rows": self._n_dead,
            "memory_bytes": int(self._vecs[: self._n_rows].nbytes),
        }

    # ------------------------------------------------------------------------------------------ writes

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = self._check_vectors(vectors)
        if len(ids) != len(vectors):
            raise VectorIndexError(f"{len(ids)} ids but {len(vectors)} vectors")
        last: dict[str, int] = {}
        for pos, item_id in enumerate(ids):
            if not isinstance(item_id, str) or not item_id:
                raise VectorIndexError(f"ids must be non-empty strings, got {item_id!r}")
            last[item_id] = pos  # a repeated id within one call: the last vector wins
        new_ids: list[str] = []
        new_pos: list[int] = []
        for item_id, pos in last.items():
            row = self._id_to_row.get(item_id)
            if row is not None:
                if np.array_equal(self._vecs[row], vectors[pos]):
                    continue  # unchanged: nothing to do
                self._kill(row)
            new_ids.append(item_id)
            new_pos.append(pos)
        if not new_ids:
            return
        self._append_rows(new_ids, vectors[new_pos])
        self._sync_structure()

    def delete(self, ids: Sequence[str]) -> int:
        removed = 0
        for item_id in ids:
            row = self._id_to_row.get(item_id)
            if row is not None:
                self._kill(row)
                removed += 1
        if removed:
            self._sync_structure()
        return removed

    def rebuild(self) -> None:
        """Drop dead rows and rebuild the FAISS structure for the current size."""
        live = np.flatnonzero(self._alive[: self._n_rows])
        ids = [self._row_ids[r] for r in live]
        self._vecs = np.ascontiguousarray(self._vecs[live])
        self._alive = np.ones(len(live), bool)
        self._row_ids = list(ids)
        self._id_to_row = {i: r for r, i in enumerate(ids) if i is not None}
        self._n_rows = len(live)
        self._n_dead = 0
        self._build(self.config.kind_for(self._n_rows))

    def _kill(self, row: int) -> None:
        item_id = self._row_ids[row]
        if item_id is not None:
            del self._id_to_row[item_id]
        self._row_ids[row] = None
        self._alive[row] = False
        self._n_dead += 1
        self._invalidate()

    def _append_rows(self, ids: list[str], vectors: np.ndarray) -> None:
        need = self._n_rows + len(ids)
        if need > len(self._vecs):
            cap = max(need, int(len(self._vecs) * 1.5) + 1024)
            grown = np.zeros((cap, self.dim), np.float32)
            grown[: self._n_rows] = self._vecs[: self._n_rows]
            alive = np.zeros(cap, bool)
            alive[: self._n_rows] = self._alive[: self._n_rows]
            self._vecs, self._alive = grown, alive
        self._vecs[self._n_rows : need] = vectors
        self._alive[self._n_rows : need] = True
        for offset, item_id in enumerate(ids):
            self._id_to_row[item_id] = self._n_rows + offset
        self._row_ids.extend(ids)
        self._n_rows = need
        self._invalidate()

    def _invalidate(self) -> None:
        self._selector = None
        self._selector_bits = None
        self._gpu = None

    def _sync_structure(self) -> None:
        want = self.config.kind_for(len(self))
        too_dead = self._n_dead > 0 and self._n_dead > self.config.compact_ratio * max(self._n_rows, 1)
        if too_dead or self._index is None or _RANK[want] > _RANK[self._built_kind or "flat"]:
            self.rebuild()
        elif self._n_indexed < self._n_rows:
            self._index.add(self._vecs[self._n_indexed : self._n_rows])
            self._n_indexed = self._n_rows

    def _build(self, kind: str) -> None:
        cfg = self.config
        vecs = self._vecs[: self._n_rows]
        index: Any  # the FAISS classes share no typed base
        if kind == "flat":
            index = faiss.IndexFlatIP(cfg.dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(cfg.dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.ef_construction
        else:
            nlist = cfg.nlist_for(len(vecs))
            quantizer = faiss.IndexFlatIP(cfg.dim)
            index = faiss.IndexIVFPQ(quantizer, cfg.dim, nlist, cfg.pq_m_for(), 8, faiss.METRIC_INNER_PRODUCT)
            # Fewer k-means iterations and a 64-points-per-centroid PQ sample: training time drops ~10x
            # on 2 cores, and the exact re-scoring of candidates makes up for the coarser codebooks.
            index.cp.niter = 10
            index.pq.cp.niter = 10
            index.pq.cp.max_points_per_centroid = 64
            rng = np.random.default_rng(0)
            sample = vecs if len(vecs) <= 100_000 else vecs[rng.choice(len(vecs), 100_000, replace=False)]
            index.train(np.ascontiguousarray(sample))
        if len(vecs):
            index.add(np.ascontiguousarray(vecs))
        self._index = index
        self._built_kind = kind
        self._n_indexed = self._n_rows
        self._invalidate()

    def _check_vectors(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise VectorIndexError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise VectorIndexError("vectors contain NaN or infinity")
        return np.ascontiguousarray(vectors)

    # ------------------------------------------------------------------------------------------ search

    def neighbours(self, query: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> Neighbours:
        """The `k` nearest items to one query vector."""
        if filters:
            raise VectorIndexError("the sidecar holds no document fields to filter on; filter its neighbours "
                                   "on their sources")
        scores, ids = self.search(query, k)
        return neighbours_of(scores[0], ids[0])

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        queries = self._check_vectors(vectors)
        n = len(queries)
        if k <= 0:
            raise VectorIndexError(f"k must be positive, got {k}")
        scores_out = np.full((n, k), -np.inf, np.float32)
        if len(self) == 0 or n == 0:
            return scores_out, [[] for _ in range(n)]
        if self.device == "cuda":
            scores, rows = self._gpu_searcher().search(queries, k)
        elif self._built_kind == "ivfpq":
            scores, rows = self._search_ivfpq(queries, k)
        else:
            params: Any = (faiss.SearchParametersHNSW() if self._built_kind == "hnsw"  # type: ignore[attr-defined]
                           else faiss.SearchParameters())
            if self._built_kind == "hnsw":
                params.efSearch = max(self.config.ef_search, k)
            params.sel = self._dead_filter()
            scores, rows = self._index.search(queries, min(k, self._n_rows), params=params)
        ids_out: list[list[str]] = []
        for i in range(n):
            row_ids: list[str] = []
            for j, row in enumerate(rows[i]):
                if row < 0:
                    break
                item_id = self._row_ids[row]
                if item_id is None:  # cannot happen with the filter; skip rather than return a dead id
                    continue
                scores_out[i, len(row_ids)] = scores[i, j]
                row_ids.append(item_id)
                if len(row_ids) == k:
                    break
            ids_out.append(row_ids)
        return scores_out, ids_out

    def _search_ivfpq(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        params = faiss.SearchParametersIVF()
        params.nprobe = self.config.nprobe
        params.sel = self._dead_filter()
        fetch = min(k * self.config.rerank, self._n_rows)
        _, cand = self._index.search(queries, fetch, params=params)
        valid = cand >= 0
        gathered = self._vecs[np.where(valid, cand, 0)]  # (n, fetch, dim)
        exact = np.einsum("nfd,nd->nf", gathered, queries)
        exact[~valid] = -np.inf
        top = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        rows = np.take_along_axis(np.where(valid, cand, -1), top, axis=1)
        return np.take_along_axis(exact, top, axis=1), rows

    def _dead_filter(self) -> Any:
        if self._n_dead == 0:
            return None
        if self._selector is None:
            bits = np.packbits(self._alive[: self._n_rows], bitorder="little")
            self._selector_bits = bits  # the selector points into this buffer
            self._selector = faiss.IDSelectorBitmap(self._n_rows, faiss.swig_ptr(bits))
        return self._selector

    def _gpu_searcher(self) -> GpuExactSearcher:
        if self._gpu is None:
            live = np.flatnonzero(self._alive[: self._n_rows])
            self._gpu = GpuExactSearcher(self._vecs[live], live)
        return self._gpu

    # ------------------------------------------------------------------------------------------ files

    def save(self, directory: Path) -> None:
        """Write a new snapshot atomically (temp dir, fsync, rename, pointer swap)."""
        self.save_snapshot(directory)

    def save_snapshot(self, directory: Path) -> str:
        """`save`, returning the snapshot's version name (the journal of a `SidecarStore` keys on it)."""
        if self._index is None:
            self._build(self.config.kind_for(len(self)))
        n = self._n_rows
        vecs = self._vecs[:n]
        row_ids = self._row_ids[:n]
        index = self._index

        def write_vectors(path: Path) -> None:
            with path.open("wb") as f:
                np.save(f, vecs, allow_pickle=False)

        def write_ids(path: Path) -> None:
            path.write_text(json.dumps(row_ids), encoding="utf-8")

        def write_index(path: Path) -> None:
            faiss.write_index(index, str(path))

        meta = {
            "kind": "dsr-faiss-sidecar",
            "config": self.config.to_config(),
            "built_kind": self._built_kind,
            "rows": n,
            "count": len(self),
            "dim": self.dim,
        }
        files = {"vectors.npy": write_vectors, "ids.json": write_ids, "index.faiss": write_index}
        return write_snapshot(Path(directory), files, meta)

    @classmethod
    def load(cls, directory: Path, *, device: str = "auto", **overrides: Any) -> FaissIndex:
        """Load the current snapshot (checksums verified) and replay the journal written since.

        `overrides` change search-time settings such as `ef_search` or `nprobe`.
        """
        directory = Path(directory)
        snap = read_snapshot(directory)
        manifest = snap.manifest
        if manifest.get("kind") != "dsr-faiss-sidecar":
            raise VectorIndexError(f"{directory} is not a dsr FAISS sidecar (kind {manifest.get('kind')!r})")
        try:
            config = replace(IndexConfig.from_config(manifest["config"]), **overrides)
            vecs = np.load(snap.path("vectors.npy"), allow_pickle=False)
            row_ids = json.loads(snap.path("ids.json").read_text(encoding="utf-8"))
            index = faiss.read_index(str(snap.path("index.faiss")))
        except (KeyError, ValueError, TypeError, RuntimeError, OSError) as e:
            raise VectorIndexError(f"sidecar {directory}: cannot read snapshot {snap.version}: {e}") from e
        n = int(manifest["rows"])
        if vecs.shape != (n, config.dim) or len(row_ids) != n or index.ntotal != n:
            raise VectorIndexError(
                f"sidecar {directory}: snapshot {snap.version} is inconsistent "
                f"(vectors {vecs.shape}, ids {len(row_ids)}, index {index.ntotal}, manifest {n})"
            )
        self = cls.__new__(cls)
        cls.__init__(self, config.dim, kind=config.kind, device=device)
        self.config = config
        self._vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        self._alive = np.array([i is not None for i in row_ids], bool)
        self._row_ids = row_ids
        self._id_to_row = {i: r for r, i in enumerate(row_ids) if i is not None}
        self._n_rows = n
        self._n_dead = n - len(self._id_to_row)
        self._index = index
        self._built_kind = manifest.get("built_kind")
        self._n_indexed = n
        for record in read_journal(directory, snap.version):
            if record.op == "upsert" and record.vectors is not None:
                self.upsert(record.ids, record.vectors)
            else:
                self.delete(record.ids)
        return self
