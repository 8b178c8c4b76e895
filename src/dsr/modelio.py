"""Model directories a user can trust: `config.json` (with a format version) + `model.safetensors`.

Every trained model in dsr (towers, ranker, teacher, student) is saved and loaded through here, so
there is one place that refuses unknown versions, wrong kinds and shape mismatches, and nothing is
ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dsr.errors import ModelFormatError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_model_dir(
    directory: Path | str,
    *,
    kind: str,
    format_version: int,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    extra_files: Mapping[str, bytes] | None = None,
    extra_dirs: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write atomically: a temp dir beside the target, then a rename, so no half model is left.

    `extra_dirs` maps a sub-folder name to a writer that fills it (e.g. a tuned backbone)."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        meta = {"kind": kind, "format_version": format_version, **config}
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"kind": kind, "format_version": str(format_version)})
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        for name, write in (extra_dirs or {}).items():
            (tmp / name).mkdir()
            write(tmp / name)
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_config(directory: Path | str, *, kind: str, supported_versions: tuple[int, ...]) -> dict[str, Any]:
    path = Path(directory)
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFormatError(f"{path}: not a dsr model directory (no {CONFIG_FILE})")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{cfg_path}: invalid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise ModelFormatError(f"{cfg_path}: expected a JSON object")
    if cfg.get("kind") != kind:
        raise ModelFormatError(f"{path}: holds a {cfg.get('kind')!r} model, expected {kind!r}")
    version = cfg.get("format_version")
    if version not in supported_versions:
        raise ModelFormatError(
            f"{path}: format version {version!r} is not supported (this dsr reads {list(supported_versions)})"
        )
    return cfg


def load_weights(directory: Path | str) -> dict[str, torch.Tensor]:
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFormatError(f"{directory}: missing {WEIGHTS_FILE}")
    try:
        return load_file(str(weights))
    except Exception as e:  # safetensors raises several types for a corrupt file
        raise ModelFormatError(f"{weights}: unreadable weights ({e})") from None


def load_state_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, where: str) -> None:
    """Load weights, turning any missing/unexpected key or shape mismatch into a clear error."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelFormatError(
            f"{where}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ModelFormatError(
                f"{where}: weight {name} has shape {tuple(tensor.shape)}, "
                f"the config implies {tuple(expected[name].shape)}"
            )
    module.load_state_dict(dict(state))
