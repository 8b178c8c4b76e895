"""The student: the served Siamese ranker, trained to reproduce the teacher's margins.

For every pair (a, b) of one query's teacher-labelled candidates the shared tower scores both and
`MarginMSELoss` pulls `tower(a) - tower(b)` towards `teacher(a) - teacher(b)`. The tower, features
and model format are exactly the ones of `dsr train ranker` (`dsr.reranker.siamese`), so the
distilled student loads and serves as the normal ranker; the teacher is never served.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from dsr.catalog import Item
from dsr.errors import UsageError
from dsr.reranker.base import Candidate
from dsr.reranker.distill.augment import ScoredPair
from dsr.reranker.distill.margin_mse import MarginMSELoss
from dsr.reranker.features import FeatureExtractor
from dsr.reranker.groups import RankGroup, graded_pairs
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.table import FeatureTable
from dsr.reranker.tower import RankerTower, TowerConfig
from dsr.reranker.trainer import check_pair_schedule, fit_pairs
from dsr.schedule import TrainSchedule

STUDENT_SCHEDULE = TrainSchedule(epochs=10, batch_size=256, lr=2e-3, patience=3, threads=2, progress=False)
"""The student's defaults; patience counts epochs without a better validation NDCG@10 (with validation groups)."""


@dataclass(frozen=True)
class StudentTrainConfig:
    schedule: TrainSchedule = STUDENT_SCHEDULE
    use_text: bool = True
    dim: int = 32
    hidden: tuple[int, int, int] = (256, 128, 64)
    embedding_lr: float = 2e-4  # the hashed text embeddings learn slower than the MLP (see the ranker's trainer)
    evals_per_epoch: int = 4

    def __post_init__(self) -> None:
        check_pair_schedule(self.schedule, "the student trainer")


@dataclass(frozen=True)
class StudentTrainSummary:
    pairs: int
    groups: int
    epochs_run: int
    best_epoch: int
    best_val: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def margin_groups(
    scored: Iterable[ScoredPair],
    catalog: Mapping[str, Item],
    *,
    max_pairs_per_query: int | None = 200,
    min_margin: float = 0.0,
    seed: int = 0,
) -> tuple[list[RankGroup], dict[str, int]]:
    """One `RankGroup` per query from teacher-scored pairs; labels are the teacher's scores.

    Candidates keep their first-stage scores and order (the features the ranker sees when serving).
    Pairs are (higher-scored, lower-scored) with a margin above `min_margin`, at most
    `max_pairs_per_query` of them per query, sampled uniformly. Returns the groups and what was
    skipped, by reason.
    """
    rng = random.Random(seed)
    by_query: dict[str, list[ScoredPair]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    for p in scored:
        if p.item_id not in catalog:
            skipped["item not in catalog"] += 1
            continue
        by_query[p.query].append(p)
    groups = []
    for query, rows in by_query.items():
        rows = sorted(rows, key=lambda r: r.rank)
        cands = _candidates(rows, catalog)
        labels = tuple(float(r.score) for r in rows)
        n = len(rows)
        pairs = [(a, b, 1.0) for a in range(n) for b in range(n) if labels[a] - labels[b] > min_margin]
        if not pairs:
            skipped["query without a pair"] += 1
            continue
        if max_pairs_per_query is not None and len(pairs) > max_pairs_per_query:
            pairs = rng.sample(pairs, max_pairs_per_query)
        groups.append(RankGroup(query, query, cands, labels, tuple(pairs), None))
    return groups, dict(skipped)


def _candidates(rows: Sequence[ScoredPair], catalog: Mapping[str, Item]) -> tuple[Candidate, ...]:
    """One query's scored pairs, in first-stage order, as the candidates the ranker sees when serving."""
    return tuple(Candidate(item=catalog[r.item_id], bm25=r.first_stage.get("bm25"), dsr=r.first_stage.get("dsr"),
                           fused_rank=k) for k, r in enumerate(rows))


def hold_out_validation(
    scored: Iterable[ScoredPair],
    judgments: Mapping[str, Mapping[str, float]],
    catalog: Mapping[str, Item],
) -> tuple[list[RankGroup], list[ScoredPair], dict[str, int]]:
    """Validation groups labelled by people, and the scored pairs left to train on.

    A student early-stops on how it ranks held-out queries for shoppers, not on how well it copies
    the teacher, so the queries of `judgments` leave the training data and their augmented
    candidates are labelled with the human grades: the lowest grade of the file (and an unjudged
    candidate) counts 0. Returns the groups, the remaining pairs and what was skipped, by reason.
    """
    low = min((g for grades in judgments.values() for g in grades.values()), default=0.0)
    held: dict[str, list[ScoredPair]] = defaultdict(list)
    train: list[ScoredPair] = []
    skipped: dict[str, int] = defaultdict(int)
    for p in scored:
        if p.query not in judgments:
            train.append(p)
        elif p.item_id in catalog:
            held[p.query].append(p)
        else:
            skipped["item not in catalog"] += 1
    groups = []
    for query, grades in judgments.items():
        if query not in held:
            skipped["validation query not augmented"] += 1
            continue
        rows = sorted(held[query], key=lambda r: r.rank)
        labels = tuple(float(grades.get(r.item_id, low)) - low for r in rows)
        pairs = graded_pairs(labels)
        if not pairs:
            skipped["validation query without a graded pair"] += 1
            continue
        groups.append(RankGroup(query, query, _candidates(rows, catalog), labels, pairs, None))
    return groups, train, dict(skipped)


def train_student(
    groups: Sequence[RankGroup],
    extractor: FeatureExtractor,
    config: StudentTrainConfig | None = None,
    *,
    val_groups: Sequence[RankGroup] = (),
) -> tuple[SiameseRanker, StudentTrainSummary]:
    """Margin-MSE training of a fresh ranker tower on groups whose labels are teacher scores.

    The schedule is the label-trained ranker's (`dsr.reranker.trainer.fit_pairs`), so a distilled
    and a label-trained student differ only in their labels and loss. With `val_groups` (human
    labels) the checkpoint with the best validation NDCG@10 is kept; without, the one with the
    lowest running margin error.
    """
    cfg = config or StudentTrainConfig()
    torch.manual_seed(cfg.schedule.seed)
    prev_threads = torch.get_num_threads()
    if cfg.schedule.threads:
        torch.set_num_threads(cfg.schedule.threads)
    try:
        table = FeatureTable.build(groups, extractor)
        n_pairs = table.pair_rows.shape[0]
        if n_pairs == 0:
            raise UsageError("no teacher-scored pairs to train the student on")
        flat_labels = torch.tensor([v for g in table.labels for v in g], dtype=torch.float32)
        margins = flat_labels[table.pair_rows[:, 0]] - flat_labels[table.pair_rows[:, 1]]
        val = FeatureTable.build(val_groups, extractor) if val_groups else None
        tower = RankerTower(TowerConfig(n_numeric=table.numeric.shape[1], use_text=cfg.use_text,
                                        buckets=extractor.config.buckets, dim=cfg.dim, hidden=cfg.hidden))
        tower.set_normalisation(table.numeric)
        loss_fn = MarginMSELoss()
        fit = fit_pairs(tower, table, val, lambda a, b, idx: loss_fn(a, b, margins[idx], table.pair_weights[idx]),
                        cfg.schedule, embedding_lr=cfg.embedding_lr, evals_per_epoch=cfg.evals_per_epoch,
                        metric="ndcg@10", val_k=(10,))
        summary = StudentTrainSummary(pairs=n_pairs, groups=len(groups), epochs_run=fit.epochs_run,
                                      best_epoch=fit.best_epoch, best_val=fit.best_val, history=fit.history)
        return SiameseRanker(extractor, tower), summary
    finally:
        torch.set_num_threads(prev_threads)


def teacher_margins(ranker: SiameseRanker, group: RankGroup) -> tuple[np.ndarray, np.ndarray]:
    """(student margin, teacher margin) for each pair of a group: how well the student follows."""
    scores = ranker.score(group.query, group.candidates, group.user)
    a = np.array([p[0] for p in group.pairs], dtype=np.int64)
    b = np.array([p[1] for p in group.pairs], dtype=np.int64)
    labels = np.asarray(group.labels, dtype=np.float64)
    return (scores[a] - scores[b]).astype(np.float64), labels[a] - labels[b]
