"""Item embeddings cached on disk, keyed by model and catalog, so repeated evaluations skip encoding.

Encoding 54k titles with MiniLM on two CPU cores takes minutes; the vectors only change when the
model or the catalog does, so `{cache_dir}/{model_key}-{catalog_key}.npy` (plus the id list it is
aligned with) is reused. Files are written to a temp name and renamed, so an interrupted run never
leaves a truncated cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dsr.catalog import Item
from dsr.encoders.base import Encoder


def model_dir_key(model_dir: Path) -> str:
    """A short content hash of a model directory (its config and weights)."""
    h = hashlib.sha1()
    for path in sorted(Path(model_dir).rglob("*")):
        if path.is_file():
            h.update(path.relative_to(model_dir).as_posix().encode("utf-8"))
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]


def _atomic_save(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def item_embeddings(
    encoder: Encoder,
    items: Sequence[Item],
    *,
    model_key: str,
    catalog_key: str,
    cache_dir: Path | None,
    batch_size: int = 256,
    progress: bool = True,
    desc: str = "embedding items",
) -> np.ndarray:
    """(len(items), dim) float32 item vectors, from the cache when model and catalog match."""
    ids = [str(it["id"]) for it in items]
    npy = ids_file = None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{model_key}-{catalog_key}".replace("/", "_")
        npy, ids_file = cache_dir / f"{stem}.npy", cache_dir / f"{stem}.ids.json"
        if npy.exists() and ids_file.exists():
            try:
                cached_ids = json.loads(ids_file.read_text(encoding="utf-8"))
                vectors = np.load(npy)
            except (OSError, ValueError):
                cached_ids, vectors = None, None
            if cached_ids == ids and vectors is not None and vectors.shape == (len(ids), encoder.dim):
                return vectors.astype(np.float32, copy=False)

    from tqdm import tqdm

    parts: list[np.ndarray] = []
    with tqdm(total=len(items), desc=desc, unit="item", disable=not progress, leave=False) as bar:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            parts.append(np.asarray(encoder.encode_items(chunk), dtype=np.float32))
            bar.update(len(chunk))
    vectors = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)
    if npy is not None and ids_file is not None:
        _atomic_save(npy, lambda fh: np.save(fh, vectors))
        _atomic_save(ids_file, lambda fh: fh.write(json.dumps(ids).encode("utf-8")))
    return vectors


class SharedTextCache:
    """Read-only view of other per-text MiniLM caches (`dsr.encoders.text_cache` folders).

    Benchmarks cache MiniLM vectors per text; when they already encoded a catalog's titles, the
    evaluation takes those rows instead of encoding them again. Reloaded when a file changes, so a
    cache another process is still filling is picked up as it grows. Never written to.
    """

    def __init__(self, folders: Sequence[Path], name: str = "minilm") -> None:
        self.files = [(Path(f) / f"{name}.npy", Path(f) / f"{name}.texts.json") for f in folders]
        self._stamp: tuple[float, ...] = ()
        self._rows: dict[str, tuple[int, int]] = {}
        self._vecs: list[np.ndarray] = []

    def _refresh(self) -> None:
        stamp = tuple(npy.stat().st_mtime if npy.exists() else 0.0 for npy, _ in self.files)
        if stamp == self._stamp:
            return
        self._stamp, self._rows, self._vecs = stamp, {}, []
        for npy, idx in self.files:
            try:
                texts = json.loads(idx.read_text(encoding="utf-8"))
                vecs = np.load(npy, mmap_mode="r")
            except (OSError, ValueError):
                continue
            if len(texts) != len(vecs):
                continue
            k = len(self._vecs)
            self._vecs.append(vecs)
            for i, t in enumerate(texts):
                self._rows.setdefault(t, (k, i))

    def lookup(self, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Row position in `texts` -> cached vector, for the texts some cache holds."""
        self._refresh()
        out = {}
        for pos, t in enumerate(texts):
            hit = self._rows.get(t)
            if hit is not None:
                out[pos] = np.asarray(self._vecs[hit[0]][hit[1]], dtype=np.float32)
        return out


def text_embeddings(
    encode: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    *,
    dim: int,
    cache_dir: Path,
    shared: SharedTextCache | None = None,
    chunk: int = 512,
    progress: bool = True,
    desc: str = "embedding texts",
) -> np.ndarray:
    """Vectors of `texts` through a per-text on-disk cache that is saved every `chunk` texts.

    An interrupted run keeps what it encoded and the next one resumes; texts another cache
    (`shared`) already holds are copied rather than encoded.
    """
    from tqdm import tqdm

    from dsr.encoders.text_cache import embed_texts_cached

    bar = tqdm(total=len(set(texts)), desc=desc, unit="text", disable=not progress, leave=False)

    def encode_missing(batch: list[str]) -> np.ndarray:
        out = np.zeros((len(batch), dim), np.float32)
        found = shared.lookup(batch) if shared is not None else {}
        for pos, vec in found.items():
            out[pos] = vec
        need = [i for i in range(len(batch)) if i not in found]
        if need:
            out[need] = encode([batch[i] for i in need])
        bar.update(len(batch))
        return out

    try:
        return embed_texts_cached(list(texts), encode_missing, cache_dir, name="minilm", chunk=chunk)
    finally:
        bar.close()
