"""Which item encoder an ingest uses: a trained two-tower model directory, the MiniLM backbone, or hashing."""

from __future__ import annotations

from pathlib import Path

from dsr.encoders.base import Encoder
from dsr.errors import UsageError

MODEL_HELP = ("a trained model directory (dsr train retrieval), 'minilm' (the untuned backbone, the default) "
              "or 'hashing[:DIM]' (deterministic bag of words, for tests and smoke runs)")


def resolve_encoder(spec: str | Path | None, *, device: str | None = None) -> Encoder:
    text = "minilm" if spec is None else str(spec)
    if text == "minilm":
        from dsr.encoders.backbone import MiniLMEncoder

        return MiniLMEncoder(device)
    if text == "hashing" or text.startswith("hashing:"):
        from dsr.encoders.hashing import HashingEncoder

        _, _, dim = text.partition(":")
        try:
            return HashingEncoder(int(dim) if dim else 64)
        except ValueError as e:
            raise UsageError(f"bad --model {text!r}: {e}") from None
    path = Path(text)
    if not path.is_dir():
        raise UsageError(f"--model {text!r} is not a directory; expected {MODEL_HELP}")
    from dsr.encoders.model import TwoTowerModel

    return TwoTowerModel.load(path, device=device)
