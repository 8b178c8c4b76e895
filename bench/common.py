"""What the benchmarks share, so their figures are the library's: the shared datasets read through
`dsr.eval.loaders`, ranked lists scored with `dsr.eval.metrics` (ranx, as `dsr eval` scores them),
and progress lines on stderr (stdout ends with the one JSON line).

The scripts run as `.venv/bin/python bench/x.py`, which puts bench/ first on `sys.path`, so they
`import common`. Engines come from `dsr.engines.engine_urls`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence

from dsr.catalog import Item
from dsr.eval.dataset import EvalDataset, Judgments
from dsr.eval.judgments import GAIN_SCALE
from dsr.eval.metrics import evaluate_run


def log(msg: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def catalog_rows(dataset: EvalDataset) -> list[Item]:
    """The dataset's catalog in file order, ids as strings (the form hits and judgments use)."""
    return [{**item, "id": str(item["id"])} for item in dataset.items()]


def catalog_by_id(dataset: EvalDataset) -> dict[str, Item]:
    return {item["id"]: item for item in catalog_rows(dataset)}


def grades(judgments: Judgments, *, lowest: float = 1.0) -> dict[str, dict[str, float]]:
    """Judgments back on a set's own grade scale, for code that takes grades rather than gains.

    The loaders store gain = (grade - lowest) * GAIN_SCALE as an integer (homedepot and crowdflower:
    lowest grade 1). Averaged grades come back exact (2 2/3, not the file's rounded 2.67).
    """
    return {q: {i: lowest + g / GAIN_SCALE for i, g in items.items()} for q, items in judgments.items()}


def ranked_run(ranked: Sequence[str]) -> dict[str, float]:
    """A ranked id list as a run row (item id -> score, higher first) that keeps exactly that order."""
    return {item: float(len(ranked) - r) for r, item in enumerate(ranked)}


def ranked_means(runs: Sequence[Sequence[str]], qrels: Sequence[Mapping[str, int]],
                 metrics: Sequence[str] = ("ndcg10", "recall100")) -> dict[str, float]:
    """Mean NDCG@10 / recall@100 / MRR@10 (`dsr.eval.metrics`) of ranked lists, list i judged by qrels[i].

    NDCG is ranx's: linear gain, log2(rank + 1) discount, the ideal order of the judged gains, cut
    at 10. An item is relevant for recall and MRR when its gain is > 0. As in `dsr eval`, a query
    with no relevant item is left out of the means (it has no NDCG); one that retrieved nothing counts 0.
    Queries are keyed by position, so the same text may appear twice.
    """
    keys = [str(n) for n in range(len(runs))]
    run = {k: ranked_run(r) for k, r in zip(keys, runs, strict=True)}
    judged = {k: dict(g) for k, g in zip(keys, qrels, strict=True)}
    means = evaluate_run(judged, run).means
    return {m: round(means[m], 4) for m in metrics}
