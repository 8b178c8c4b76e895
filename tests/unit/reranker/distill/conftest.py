"""One tiny teacher per test session, trained on the synthetic world (seconds, not minutes)."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import torch

from dsr.catalog import item_text
from dsr.logs.synthetic import SyntheticWorld, make_world
from dsr.reranker.distill import (
    TEACHER_SCHEDULE,
    CrossEncoderTeacher,
    GradedText,
    GradeScale,
    TeacherTrainConfig,
    train_teacher,
)
from dsr.text import term_overlap

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class OverlapCandidates:
    """A real (if crude) candidate source: catalog items ranked by query-token overlap."""

    name = "bm25"

    def __init__(self, catalog: Sequence[dict]) -> None:
        self.catalog = catalog
        self.calls = 0

    def candidates(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        self.calls += 1
        out = []
        for q in queries:
            scored = [(row["id"], term_overlap(q, item_text(row))) for row in self.catalog]
            scored = [s for s in scored if s[1] > 0]
            scored.sort(key=lambda s: (-s[1], s[0]))
            out.append(scored[:k])
        return out


@dataclass(frozen=True)
class TinyWorld:
    world: SyntheticWorld
    catalog: dict[str, dict]
    judged: dict[str, dict[str, float]]  # query -> item -> grade 0..3 (a few per query)
    teacher: CrossEncoderTeacher


def _judgments(world: SyntheticWorld, rng: random.Random) -> dict[str, dict[str, float]]:
    ids = [row["id"] for row in world.catalog]
    out: dict[str, dict[str, float]] = {}
    for q in world.queries:
        rel = sorted(q.relevant.items())
        picked = dict(rng.sample(rel, min(3, len(rel))))
        for item_id in rng.sample(ids, 3):
            picked.setdefault(item_id, float(q.relevant.get(item_id, 0)))
        out[q.text] = {k: float(v) for k, v in picked.items()}
    return out


@pytest.fixture(scope="session")
def tiny_world() -> TinyWorld:
    torch.set_num_threads(2)
    world = make_world(n_items=200, n_queries=30, n_users=5, seed=3)
    catalog = world.items_by_id
    judged = _judgments(world, random.Random(0))
    examples = [GradedText(q, item_text(catalog[i]), g) for q, items in judged.items() for i, g in items.items()]
    teacher, _ = train_teacher(
        examples, GradeScale(0, 3, 4),
        TeacherTrainConfig(schedule=TEACHER_SCHEDULE.replace(batch_size=16, lr=1e-4), max_length=20, max_pairs=96,
                           head_lr=5e-3, freeze_layers=4),
    )
    return TinyWorld(world, catalog, judged, teacher)
