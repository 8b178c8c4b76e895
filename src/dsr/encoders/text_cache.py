"""Backbone vectors cached on disk per text, so training heads on a frozen backbone (and benchmarks
that compare against it) encode each query and title once, not once per run.

The cache is a pair of files, `{name}.npy` (float32 rows) and `{name}.texts.json` (the text of each
row); new texts are appended, and the pair is replaced atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def embed_texts_cached(texts: Sequence[str], encode: Callable[[list[str]], np.ndarray], cache_dir: Path | str | None,
                       name: str = "minilm", chunk: int = 2048, log: Callable[[str], None] | None = None) -> np.ndarray:
    """Vectors for `texts` (row-aligned), encoding only the texts the cache does not hold yet."""
    if cache_dir is None:
        return encode(list(texts))
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    npy, idx = folder / f"{name}.npy", folder / f"{name}.texts.json"
    known: list[str] = []
    vecs = None
    if npy.exists() and idx.exists():
        try:
            known = json.loads(idx.read_text(encoding="utf-8"))
            vecs = np.load(npy)
            if len(known) != len(vecs):
                known, vecs = [], None
        except (ValueError, OSError):
            known, vecs = [], None
    row = {t: i for i, t in enumerate(known)}
    missing = list(dict.fromkeys(t for t in texts if t not in row))
    if missing:
        parts = []
        for s in range(0, len(missing), chunk):
            parts.append(encode(missing[s : s + chunk]))
            if log:
                log(f"{name}: encoded {min(s + chunk, len(missing))}/{len(missing)} new texts")
            # save as we go so an interrupted run keeps what it computed
            new = np.concatenate(parts).astype(np.float32)
            all_vecs = new if vecs is None else np.concatenate([vecs, new])
            all_texts = known + missing[: len(new)]
            _save(npy, idx, all_vecs, all_texts)
        vecs, known = all_vecs, all_texts
        row = {t: i for i, t in enumerate(known)}
    assert vecs is not None
    return vecs[[row[t] for t in texts]] if texts else np.zeros((0, vecs.shape[1]), np.float32)


def _save(npy: Path, idx: Path, vecs: np.ndarray, texts: list[str]) -> None:
    tmp_n = npy.with_name(f".{npy.name}.{os.getpid()}.tmp")
    tmp_i = idx.with_name(f".{idx.name}.{os.getpid()}.tmp")
    with open(tmp_n, "wb") as fh:
        np.save(fh, vecs)
    tmp_i.write_text(json.dumps(texts), encoding="utf-8")
    os.replace(tmp_n, npy)
    os.replace(tmp_i, idx)
