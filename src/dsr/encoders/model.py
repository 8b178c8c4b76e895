"""The trained DSR model: a query tower and an item tower behind the `Encoder` protocol.

Offline, `encode_items` embeds the catalog for the index; online only `encode_queries` runs. The model
directory is the shared dsr format (config.json with kind + format_version, model.safetensors), and
loading refuses an unknown version, another kind of model, or weights whose shapes disagree with the
config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dsr.catalog import Item
from dsr.device import resolve_device
from dsr.encoders.base import UserContext
from dsr.encoders.features import FeatureConfig, Featurizer, fit_numeric
from dsr.encoders.towers import ItemTower, QueryTower
from dsr.errors import ModelFormatError
from dsr.modelio import load_state_into, load_weights, read_config, save_model_dir

MODEL_KIND = "dsr-two-tower"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
BACKBONES = {"minilm": 384}


@dataclass(frozen=True)
class TowerConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    hidden: tuple[int, ...] = (256, 128)
    dim: int = 64
    residual: bool = False  # add the backbone vector to the tower output (needs dim == backbone dim)

    def __post_init__(self) -> None:
        if self.residual and self.features.backbone_dim != self.dim:
            raise ValueError("residual towers need dim == backbone dim")

    def to_config(self) -> dict[str, Any]:
        return {"features": self.features.to_config(), "hidden": list(self.hidden), "dim": self.dim,
                "residual": self.residual}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TowerConfig:
        return cls(features=FeatureConfig.from_config(cfg.get("features") or {}),
                   hidden=tuple(cfg.get("hidden") or ()), dim=int(cfg["dim"]), residual=bool(cfg.get("residual")))


BACKBONE_DIR = "backbone"  # a tuned backbone's folder inside the model directory


def backbone_encoder(name: str | None, device: str | None = None, *, path: Path | None = None,
                     model: Any = None):
    """The backbone `name` as an encoder: the shared offline copy, or a tuned one (`path` on disk or
    `model` in memory)."""
    if name is None:
        return None
    if name != "minilm":
        raise ModelFormatError(f"unknown backbone {name!r} (known: {', '.join(BACKBONES)})")
    from dsr.encoders.backbone import MiniLMEncoder

    return MiniLMEncoder(device=device, path=path, model=model)


class TwoTowerModel(nn.Module):
    def __init__(self, config: TowerConfig, *, device: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.featurizer = Featurizer(config.features)
        self.query_tower = QueryTower(config.features, config.hidden, config.dim, residual=config.residual)
        self.item_tower = ItemTower(config.features, config.hidden, config.dim, residual=config.residual)
        self.device = torch.device(resolve_device(device))
        self.to(self.device)
        self._backbone = None
        self._tuned_backbone: Any = None  # a SentenceTransformer tuned in this process, until saved
        self.backbone_dir: Path | None = None  # where a loaded model's tuned backbone lives

    @classmethod
    def build(cls, catalog: Sequence[Item], *, backbone: str | None = None, use_user: bool = False,
              dim: int | None = None, hidden: Sequence[int] = (256, 128), residual: bool | None = None,
              device: str | None = None, **feature_options: Any) -> TwoTowerModel:
        """A fresh model whose numeric normalisation is fitted on `catalog`."""
        fields = tuple(feature_options.pop("numeric_fields", FeatureConfig.numeric_fields))
        mean, std = fit_numeric(catalog, fields)
        bdim = BACKBONES[backbone] if backbone else 0
        if backbone and backbone not in BACKBONES:
            raise ModelFormatError(f"unknown backbone {backbone!r}")
        residual = bool(backbone) if residual is None else residual
        feats = FeatureConfig(numeric_fields=fields, numeric_mean=mean, numeric_std=std, use_user=use_user,
                              backbone=backbone, backbone_dim=bdim, **feature_options)
        dim = dim or (bdim if residual else 64)
        return cls(TowerConfig(feats, tuple(hidden), dim, residual), device=device)

    @property
    def dim(self) -> int:
        return self.config.dim

    # -- the Encoder protocol ------------------------------------------------------------------

    def attach_tuned_backbone(self, backbone: Any) -> None:
        """Use `backbone` (a fine-tuned SentenceTransformer) from now on; `save` writes it too."""
        if not self.config.features.backbone_tuned:
            raise ValueError("this model was built for a frozen backbone (build it with backbone_tuned=True)")
        # kept outside the module tree: its weights are saved in their own folder, not in the towers'
        object.__setattr__(self, "_tuned_backbone", backbone)
        self._backbone = None

    def backbone_encoder(self) -> Any:
        """The backbone the towers read, loaded once: the model's tuned copy or the shared one."""
        fc = self.config.features
        if not fc.backbone:
            return None
        if self._backbone is None:
            if fc.backbone_tuned and self._tuned_backbone is None and self.backbone_dir is None:
                raise ModelFormatError("the model needs its tuned backbone, which was neither attached nor loaded")
            self._backbone = backbone_encoder(fc.backbone, str(self.device), path=self.backbone_dir,
                                              model=self._tuned_backbone)
        return self._backbone

    def _backbone_vectors(self, texts: Sequence[str] | None, items: Sequence[Item] | None) -> np.ndarray | None:
        if not self.config.features.backbone:
            return None
        backbone = self.backbone_encoder()
        if items is not None:
            return backbone.encode_items(items)
        return backbone.encode_queries(list(texts or []))

    @torch.no_grad()
    def encode_queries(self, texts: Sequence[str], users: Sequence[UserContext | None] | None = None, *,
                       backbone: np.ndarray | None = None, batch_size: int = 2048) -> np.ndarray:
        texts = list(texts)
        if backbone is None:
            backbone = self._backbone_vectors(texts, None)
        self.eval()
        out = []
        for s in range(0, len(texts), batch_size):
            sl = slice(s, s + batch_size)
            f = self.featurizer.queries(texts[sl], users[sl] if users is not None else None,
                                        backbone[sl] if backbone is not None else None)
            out.append(self.query_tower(f).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def encode_items(self, items: Sequence[Item], *, backbone: np.ndarray | None = None,
                     batch_size: int = 4096) -> np.ndarray:
        items = list(items)
        if backbone is None:
            backbone = self._backbone_vectors(None, items)
        self.eval()
        out = []
        for s in range(0, len(items), batch_size):
            sl = slice(s, s + batch_size)
            f = self.featurizer.items(items[sl], backbone[sl] if backbone is not None else None)
            out.append(self.item_tower(f).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path | str, *, info: Mapping[str, Any] | None = None) -> Path:
        """Write the model directory; `info` (training figures, data paths) is stored in the config."""
        extra_dirs = {}
        if self.config.features.backbone_tuned:
            extra_dirs[BACKBONE_DIR] = self._write_backbone
        return save_model_dir(directory, kind=MODEL_KIND, format_version=FORMAT_VERSION,
                              config={"model": self.config.to_config(), "info": dict(info or {})},
                              state_dict=self.state_dict(), extra_dirs=extra_dirs)

    def _write_backbone(self, folder: Path) -> None:
        import shutil

        from dsr.encoders.backbone_tuning import save_backbone

        if self._tuned_backbone is not None:
            save_backbone(self._tuned_backbone, folder)
        elif self.backbone_dir is not None:
            shutil.copytree(self.backbone_dir, folder, dirs_exist_ok=True)
        else:
            raise ModelFormatError("cannot save: the model's tuned backbone was neither attached nor loaded")

    @classmethod
    def load(cls, directory: Path | str, *, device: str | None = None,
             expected_dim: int | None = None) -> TwoTowerModel:
        cfg = read_config(directory, kind=MODEL_KIND, supported_versions=SUPPORTED_VERSIONS)
        try:
            config = TowerConfig.from_config(cfg["model"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFormatError(f"{directory}: inconsistent model config ({e})") from None
        if expected_dim is not None and config.dim != expected_dim:
            raise ModelFormatError(f"{directory}: the model has dimension {config.dim}, "
                                   f"the index expects {expected_dim}")
        fb = config.features
        if fb.backbone and BACKBONES.get(fb.backbone) != fb.backbone_dim:
            raise ModelFormatError(f"{directory}: backbone {fb.backbone!r} with dimension {fb.backbone_dim} "
                                   f"does not match the known backbones {BACKBONES}")
        model = cls(config, device=device)
        if fb.backbone_tuned:
            from dsr.encoders.backbone import check_backbone_dir

            model.backbone_dir = check_backbone_dir(Path(directory) / BACKBONE_DIR)
        load_state_into(model, load_weights(directory), where=str(directory))
        model.to(model.device)
        model.eval()
        return model


def read_info(directory: Path | str) -> dict[str, Any]:
    cfg = read_config(directory, kind=MODEL_KIND, supported_versions=SUPPORTED_VERSIONS)
    return dict(cfg.get("info") or {})

