"""The evaluation dataset: a catalog, queries with graded judgments per split, and logs where there are any.

Every loader (public sets and the generic `query, item_id, grade` form) returns an `EvalDataset`, so the
runner, the pipelines and the report never care where the judgments came from. Gains are integers
because ranx stores relevance as integers; loaders scale graded labels so that NDCG (linear gain, which
is scale invariant) is exactly the one of the original grades.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsr.catalog import Item, item_text
from dsr.errors import UsageError

SPLITS = ("train", "dev")

Judgments = dict[str, dict[str, int]]
"""query text -> {item id: integer gain}; gain 0 means judged and not relevant."""


@dataclass(frozen=True)
class Split:
    """One side of a dataset: the queries and their judgments."""

    judgments: Judgments

    @property
    def queries(self) -> list[str]:
        return sorted(self.judgments)

    def __len__(self) -> int:
        return len(self.judgments)

    def sample(self, n: int | None) -> Split:
        """A deterministic sample of `n` queries (by a stable hash of the text), the whole split if None."""
        if n is None or n >= len(self.judgments):
            return self
        keep = sorted(self.judgments, key=lambda q: hashlib.sha1(q.encode("utf-8")).hexdigest())[:n]
        return Split({q: self.judgments[q] for q in sorted(keep)})


@dataclass(frozen=True)
class EvalDataset:
    """A catalog plus judged queries per split.

    `catalog` is a callable returning a fresh iterator over the catalog rows, so 50k-item catalogs are
    streamed rather than held twice. `catalog` is None for sets that ship no product text (esci-ubi):
    retrieval cannot be evaluated on them. `log_paths` point at search logs (UBI or jsonl sessions)
    when the set has them; `sessions` holds click records already parsed by the loader (bestbuy).
    """

    name: str
    splits: Mapping[str, Split]
    catalog: Callable[[], Iterator[Item]] | None
    description: str = ""
    log_paths: tuple[Path, ...] = ()
    sessions: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise UsageError(
                f"dataset {self.name!r} has no split {name!r} (it has: {', '.join(self.splits)})"
            )
        return self.splits[name]

    @property
    def has_catalog(self) -> bool:
        return self.catalog is not None

    def items(self) -> Iterator[Item]:
        if self.catalog is None:
            raise UsageError(
                f"dataset {self.name!r} ships no product text, so retrieval cannot be evaluated on it"
            )
        return self.catalog()

    def catalog_fingerprint(self) -> str:
        return catalog_fingerprint(self.items())


def catalog_fingerprint(items: Iterable[Item]) -> str:
    """A short hash of every item's id and text: the key of cached embeddings and eval indexes."""
    h = hashlib.sha1()
    for item in items:
        h.update(str(item["id"]).encode("utf-8"))
        h.update(b"\x1f")
        h.update(item_text(item).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()[:12]


def hash_split(query: str, *, dev_share: int = 3, buckets: int = 10) -> str:
    """'dev' or 'train' for a query, from a stable hash of its lower-cased text.

    Query-level and deterministic: the same query text always lands on the same side, in every process
    and on every machine, so no query is ever on both sides (crowdflower and homedepot were split the
    same way upstream).
    """
    digest = hashlib.sha1(query.strip().lower().encode("utf-8")).hexdigest()
    return "dev" if int(digest, 16) % buckets < dev_share else "train"


def datasets_root() -> Path:
    """Where the shared datasets live: `$DSR_DATASETS`, else the `shared/datasets` folder beside the repo.

    The repo is found from the current directory (or any parent) holding a `pyproject.toml`, then from
    the installed package's location, so both `cd repo && dsr eval` and an editable install work.
    """
    env = os.environ.get("DSR_DATASETS")
    if env:
        return Path(env)
    starts = [Path.cwd(), Path(__file__).resolve()]
    for start in starts:
        for parent in [start, *start.parents]:
            candidate = parent.parent / "shared" / "datasets"
            if (parent / "pyproject.toml").exists() and candidate.is_dir():
                return candidate
    raise UsageError(
        "cannot find the shared datasets folder: set DSR_DATASETS to it "
        "(expected ../shared/datasets beside the repository)"
    )


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield json.loads(line)
