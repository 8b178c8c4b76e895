"""One loader for every ranker dsr writes, chosen by the `kind` in its `config.json`.

`dsr train ranker` writes a Siamese ranker and an XGBoost baseline side by side (`siamese/`,
`xgboost/`) and names in `served.json` the one that ranked its validation groups best; `dsr distill
train` writes a Siamese student. Serving, evaluation and the demo load any of them through
`load_reranker`, so a model directory that trains is a model directory that serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from dsr.catalog import Item
from dsr.errors import ModelFormatError
from dsr.reranker.base import Reranker
from dsr.reranker.choice import read_served
from dsr.reranker.siamese import KIND as SIAMESE_KIND
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.xgb import KIND as XGBOOST_KIND
from dsr.reranker.xgb import XGBoostRanker

SIAMESE_DIR = "siamese"
XGBOOST_DIR = "xgboost"
_LOADERS: dict[str, Callable[..., Reranker]] = {SIAMESE_KIND: SiameseRanker.load, XGBOOST_KIND: XGBoostRanker.load}


def load_reranker(directory: Path | str, *, catalog: Mapping[str, Item] | None = None,
                  prefer: str | None = None) -> Reranker:
    """The ranker in `directory`: a model directory, or a `dsr train ranker` output holding several.

    Args:
        directory: a ranker model directory, or the parent `dsr train ranker` wrote.
        catalog: items by id, for rankers that read a user's click history.
        prefer: which sub-directory of a `dsr train ranker` output to load (`siamese` or `xgboost`);
            by default the one its `served.json` names, else `siamese`.
    """
    path = Path(directory)
    prefer = prefer or read_served(path) or SIAMESE_DIR
    if (path / prefer / "config.json").is_file():
        path = path / prefer
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ModelFormatError(f"{directory}: no ranker model here (no config.json, no {SIAMESE_DIR}/ or "
                               f"{XGBOOST_DIR}/)")
    try:
        kind = json.loads(cfg_file.read_text()).get("kind")
    except (OSError, ValueError, AttributeError) as e:
        raise ModelFormatError(f"{cfg_file}: not a readable model config ({e})") from None
    loader = _LOADERS.get(kind)
    if loader is None:
        raise ModelFormatError(f"{path}: a {kind!r} model is not a ranker (rankers: {sorted(_LOADERS)})")
    return loader(path, catalog=catalog)
