"""Loaders that turn the public sets in ../shared/datasets (and any shop's own files) into `EvalDataset`s.

Each public set keeps its own split where it ships one (homedepot, crowdflower: by query; bestbuy-small:
by time); the others get `hash_split`, a deterministic query-level split. Label scales differ per set
(read each SOURCE.md); each loader maps its labels to gains with 0 = not relevant.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dsr.catalog import Item
from dsr.errors import InputError, UsageError
from dsr.eval.dataset import SPLITS, EvalDataset, Judgments, Split, datasets_root, hash_split, read_jsonl
from dsr.eval.judgments import read_judgments, to_gain

_SPACES = re.compile(r"\s+")


def normalise_query(text: str) -> str:
    """Lower-cased, whitespace collapsed: how click logs' typed queries are grouped into one query."""
    return _SPACES.sub(" ", text.strip().lower())


def _catalog(path: Path) -> Callable[[], Iterator[Item]]:
    if not path.exists():
        raise UsageError(f"catalog not found: {path}")

    def rows() -> Iterator[Item]:
        yield from read_jsonl(path)

    return rows


def _tsv_judgments(path: Path, gain: Callable[[float], int]) -> Judgments:
    out: Judgments = defaultdict(dict)
    with open(path, encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh, delimiter="\t"):
            q, item, g = rec["query"], rec["item_id"], gain(float(rec["grade"]))
            out[q][item] = max(g, out[q].get(item, 0))
    return dict(out)


def _folder(root: Path | None, name: str) -> Path:
    folder = (root or datasets_root()) / name
    if not folder.is_dir():
        raise UsageError(
            f"dataset folder not found: {folder} (set DSR_DATASETS to the shared datasets folder)"
        )
    return folder


def load_homedepot(root: Path | None = None) -> EvalDataset:
    """54,667 titles; graded 1-3 averaged over raters; gain = grade - 1 (SOURCE.md's convention)."""
    folder = _folder(root, "homedepot")
    splits = {
        s: Split(_tsv_judgments(folder / f"judgments.{s}.tsv", lambda g: to_gain(g - 1.0))) for s in SPLITS
    }
    return EvalDataset(
        "homedepot",
        splits,
        _catalog(folder / "products.jsonl"),
        description="Home Depot titles, human grades 1-3 (gain = grade - 1), shipped query split",
    )


def load_crowdflower(root: Path | None = None) -> EvalDataset:
    """9,913 titles + descriptions; median crowd rating 1-4; gain = grade - 1."""
    folder = _folder(root, "crowdflower")
    splits = {
        s: Split(_tsv_judgments(folder / f"judgments.{s}.tsv", lambda g: to_gain(g - 1.0))) for s in SPLITS
    }
    return EvalDataset(
        "crowdflower",
        splits,
        _catalog(folder / "products.jsonl"),
        description="CrowdFlower titles + descriptions, crowd grades 1-4 (gain = grade - 1), "
        "shipped query split",
    )


def read_bestbuy_clicks(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [dict(rec) for rec in csv.DictReader(fh)]


def load_bestbuy_small(root: Path | None = None) -> EvalDataset:
    """Clicks as judgments: for each (normalised) query of a split, every clicked SKU has gain 1.

    There are no impressions, so unclicked items count as not relevant, as in any click-based
    evaluation. Clicks on SKUs absent from the catalog cannot be retrieved by anything; they are
    dropped and counted in the dataset's notes.
    """
    folder = _folder(root, "bestbuy-small")
    catalog = _catalog(folder / "products.jsonl")
    known = {str(item["id"]) for item in catalog()}
    splits: dict[str, Split] = {}
    sessions: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    for s in SPLITS:
        clicks = read_bestbuy_clicks(folder / f"clicks.{s}.csv")
        sessions[s] = clicks
        judged: Judgments = defaultdict(dict)
        unknown = 0
        for rec in clicks:
            q = normalise_query(rec["query"])
            if not q:
                continue
            if rec["sku"] not in known:
                unknown += 1
                continue
            judged[q][rec["sku"]] = to_gain(1.0)
        splits[s] = Split(dict(judged))
        if unknown:
            notes.append(f"{s}: {unknown} clicks on SKUs not in the catalog were dropped")
    return EvalDataset(
        "bestbuy-small",
        splits,
        catalog,
        sessions=sessions,
        notes=tuple(notes),
        description="Best Buy Xbox 360 click log: clicked SKU = gain 1 per normalised query, "
        "shipped time split",
    )


_ESCI_GAIN = {100.0: 3, 10.0: 2, 1.0: 1, 0.0: 0}  # Exact, Substitute, Complement, Irrelevant


def load_esci_ubi(root: Path | None = None) -> EvalDataset:
    """ESCI judgments keyed by ASIN, hash-split by query; UBI logs by path. No product text: no catalog.

    Retrieval pipelines cannot run on it (there is nothing to index); it is here for the UBI loader
    and session/pair building on real-format logs, and for re-ranking judged lists by id-only features.
    """
    folder = _folder(root, "esci-ubi")
    data = json.loads((folder / "esci_us_judgments.json").read_text(encoding="utf-8"))
    splits: dict[str, Judgments] = {s: defaultdict(dict) for s in SPLITS}
    for entry in data.get("judgmentRatings", []):
        q = str(entry.get("query", "")).strip()
        if not q:
            continue
        side = splits[hash_split(q)]
        for r in entry.get("ratings", []):
            rating = float(r["rating"])
            side[q][str(r["docId"])] = _ESCI_GAIN.get(rating, 0) * to_gain(1.0)
    return EvalDataset(
        "esci-ubi",
        {s: Split(dict(j)) for s, j in splits.items()},
        None,
        description="ESCI judgments (E=3, S=2, C=1, I=0) by ASIN, hash split; UBI logs; no product text",
        log_paths=(folder / "ubi_queries_events.ndjson",),
        notes=("no product text: retrieval pipelines are skipped on this set",),
    )


def load_generic(catalog: Path, judgments: Path, name: str | None = None) -> EvalDataset:
    """A shop's own catalog (jsonl) and `query, item_id, grade` file.

    A `split` column is honoured where present; otherwise queries are hash-split. The `all` split holds
    every judged query (for pipelines that need no training). Rejected judgment lines and judgments of
    ids missing from the catalog are reported in the notes, never silently dropped.
    """
    catalog, judgments = Path(catalog), Path(judgments)
    if catalog.suffix.lower() not in (".jsonl", ".ndjson"):
        raise UsageError(
            f"{catalog}: the eval catalog must be jsonl (one {{id, title, ...}} object per line)"
        )
    read_catalog = _catalog(catalog)
    known: set[str] = set()
    for n, item in enumerate(read_catalog(), 1):
        if "id" not in item or "title" not in item:
            raise InputError(f"{catalog}: line {n} lacks id or title")
        known.add(str(item["id"]))
    rows, rejected = read_judgments(judgments)
    notes = [f"{judgments.name}: rejected {r}" for r in rejected]
    sides: dict[str, Judgments] = {
        "train": defaultdict(dict),
        "dev": defaultdict(dict),
        "all": defaultdict(dict),
    }
    unknown = 0
    for row in rows:
        if row.item_id not in known:
            unknown += 1
        side = row.split if row.split in ("train", "dev") else hash_split(row.query)
        for target in (side, "all"):
            sides[target][row.query][row.item_id] = to_gain(row.grade)
    if unknown:
        notes.append(
            f"{unknown} judged ids are not in the catalog (they count as unretrievable relevant items)"
        )
    return EvalDataset(
        name or judgments.stem,
        {s: Split(dict(j)) for s, j in sides.items()},
        read_catalog,
        description=f"catalog {catalog.name}, judgments {judgments.name}",
        notes=tuple(notes),
    )


LOADERS: dict[str, Callable[..., EvalDataset]] = {
    "homedepot": load_homedepot,
    "crowdflower": load_crowdflower,
    "bestbuy-small": load_bestbuy_small,
    "esci-ubi": load_esci_ubi,
}


def load_dataset(name: str, root: Path | None = None) -> EvalDataset:
    try:
        loader = LOADERS[name]
    except KeyError:
        raise UsageError(
            f"unknown dataset {name!r}; known: {', '.join(LOADERS)} (or use --catalog FILE --judgments FILE)"
        ) from None
    return loader(root)
