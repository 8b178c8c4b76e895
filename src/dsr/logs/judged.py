"""Human relevance judgments as training data (the DSR paper trains on clicks *and* human labels).

A judgments file (`query<TAB>item_id<TAB>grade`, e.g. the Home Depot set) becomes triples: well graded
items are positives, poorly graded ones of the same query are hard negatives (the engine returned
them, a person said no), and every positive also gets a random-catalog negative.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from dsr.errors import InputError
from dsr.logs.problems import reject
from dsr.logs.records import LoadReport
from dsr.logs.triples import Triple


def read_graded(path: Path | str, *, known_items: Collection[str] | None = None,
                max_errors: int | None = 100) -> tuple[dict[str, dict[str, float]], LoadReport]:
    """query -> {item id: grade} from a tsv with a `query, item_id, grade` header; bad rows reported."""
    path = Path(path)
    report = LoadReport()
    out: dict[str, dict[str, float]] = defaultdict(dict)
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:3]] != ["query", "item_id", "grade"]:
            raise InputError(f"{path}: expected a header 'query<TAB>item_id<TAB>grade'")
        for n, row in enumerate(reader, start=2):
            report.lines_read += 1
            raw = "\t".join(row)
            if len(row) < 3 or not row[0].strip() or not row[1].strip():
                reject(report, n, "expected query, item_id and grade", raw, max_errors=max_errors, source=str(path))
                continue
            try:
                grade = float(row[2])
            except ValueError:
                reject(report, n, f"grade {row[2]!r} is not a number", raw, max_errors=max_errors, source=str(path))
                continue
            if known_items is not None and row[1] not in known_items:
                reject(report, n, f"unknown item id {row[1]!r}", raw, max_errors=max_errors, source=str(path))
                continue
            q = row[0].strip()
            out[q][row[1]] = max(grade, out[q].get(row[1], grade))
    report.sessions = len(out)
    return dict(out), report


def judged_triples(
    graded: dict[str, dict[str, float]],
    item_ids: Sequence[str],
    *,
    positive_min: float = 2.5,
    negative_max: float = 2.0,
    random_negatives: int = 1,
    seed: int = 0,
) -> list[Triple]:
    """Triples from graded pairs: positives graded >= positive_min (weighted by grade), hard negatives
    graded <= negative_max for the same query, plus `random_negatives` random catalog items each."""
    rng = np.random.default_rng(seed)
    triples: list[Triple] = []
    for query, grades in graded.items():
        pos = [(i, g) for i, g in grades.items() if g >= positive_min]
        hard = [i for i, g in grades.items() if g <= negative_max]
        for item, g in pos:
            weight = 1.0 + (g - positive_min)
            if hard:
                triples.append(Triple(query, item, hard[int(rng.integers(0, len(hard)))], weight, "hard"))
            for _ in range(random_negatives):
                cand = item_ids[int(rng.integers(0, len(item_ids)))]
                if cand not in grades:
                    triples.append(Triple(query, item, cand, weight, "random"))
            if not hard and not random_negatives:
                triples.append(Triple(query, item, None, weight, "in_batch"))
    if not triples:
        raise InputError(f"no judged pair has a grade >= {positive_min}: nothing to learn from")
    return triples
