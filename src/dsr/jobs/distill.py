"""The distillation steps as the CLI runs them: read files, report what was rejected, call the library.

Kept out of `dsr.commands` so the commands stay thin shells and the steps can be scripted.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dsr.catalog import Item, item_text
from dsr.errors import InputError, UsageError
from dsr.reranker.distill.grades import GradeScale
from dsr.reranker.distill.teacher_train import GradedText

Log = Callable[[str], None]


def read_catalog_map(path: Path) -> tuple[dict[str, Item], int]:
    """The catalog as id -> item, and how many rows were rejected (no id/title, duplicate, unreadable)."""
    from dsr.catalog import read_catalog_items

    items, rejected = read_catalog_items(Path(path))
    return {str(it["id"]): it for it in items}, rejected


def read_graded(path: Path, log: Log | None = None) -> dict[str, dict[str, float]]:
    """query -> item id -> raw grade from a judgments file; rejected lines are reported through `log`."""
    from dsr.eval.judgments import read_judgments

    rows, rejected = read_judgments(Path(path))
    for r in rejected[:20]:
        if log:
            log(f"{path}: rejected {r}")
    if len(rejected) > 20 and log:
        log(f"{path}: ... {len(rejected) - 20} more rejected lines")
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        out[row.query][row.item_id] = float(row.grade)
    return dict(out)


@dataclass
class ExampleReport:
    examples: int = 0
    negatives: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def teacher_examples(
    judged: Mapping[str, Mapping[str, float]],
    catalog: Mapping[str, Item],
    scale: GradeScale,
    *,
    negatives_per_query: int = 0,
    negatives: Callable[[str], Sequence[str]] | None = None,
    seed: int = 0,
) -> tuple[list[GradedText], ExampleReport]:
    """Judged pairs plus, per query, unjudged items labelled with the lowest grade.

    Judgments usually cover only what an old engine showed, so the teacher never sees a clearly
    wrong item unless it is given some; `negatives(query)` proposes them (e.g. BM25 hits that were
    not judged), random catalog items otherwise.
    """
    rng = random.Random(seed)
    ids = sorted(catalog)
    report = ExampleReport()
    out: list[GradedText] = []
    for query, grades in judged.items():
        for item_id, grade in grades.items():
            if item_id not in catalog:
                report.skipped["judged item not in catalog"] = report.skipped.get("judged item not in catalog", 0) + 1
                continue
            out.append(GradedText(query, item_text(catalog[item_id]), float(grade)))
        if negatives_per_query <= 0:
            continue
        pool = [i for i in (negatives(query) if negatives else ()) if i in catalog and i not in grades]
        picked = rng.sample(pool, min(negatives_per_query, len(pool)))
        while len(picked) < negatives_per_query and len(ids) > len(grades) + len(picked):
            cand = ids[rng.randrange(len(ids))]
            if cand not in grades and cand not in picked:
                picked.append(cand)
        for item_id in picked:
            out.append(GradedText(query, item_text(catalog[item_id]), scale.low))
            report.negatives += 1
    report.examples = len(out)
    if not out:
        raise InputError("no judged pair refers to an item of the catalog")
    return out, report


def read_queries(path: Path) -> list[str]:
    """One query per line (blank lines ignored)."""
    if not Path(path).is_file():
        raise UsageError(f"queries file not found: {path}")
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
