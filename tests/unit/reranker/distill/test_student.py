"""The tiny end-to-end distillation: teacher trained, pairs augmented, student follows the teacher."""

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from dsr.reranker.distill import (
    STUDENT_SCHEDULE,
    AugmentConfig,
    StudentTrainConfig,
    augment,
    hold_out_validation,
    margin_groups,
    read_scored,
    teacher_margins,
    train_student,
)
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.siamese import SiameseRanker

from .conftest import OverlapCandidates


@pytest.fixture(scope="module")
def distilled(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("augmented")
    queries = list(tiny_world.judged)
    augment(queries, tiny_world.teacher, tiny_world.catalog, out, sources=[OverlapCandidates(tiny_world.world.catalog)],
            judged=tiny_world.judged, config=AugmentConfig(k=8, shard_queries=16, batch_size=32))
    groups, _ = margin_groups(read_scored(out), tiny_world.catalog, max_pairs_per_query=60)
    train, held = groups[:-6], groups[-6:]
    extractor = FeatureExtractor(FeatureConfig(buckets=1 << 12), tiny_world.catalog)
    ranker, summary = train_student(train, extractor, StudentTrainConfig(
        schedule=STUDENT_SCHEDULE.replace(epochs=30, batch_size=64, lr=3e-3), dim=16, hidden=(32, 16, 8)))
    return ranker, summary, train, held


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_world):
    out = tmp_path_factory.mktemp("scored")
    augment(list(tiny_world.judged), tiny_world.teacher, tiny_world.catalog, out,
            sources=[OverlapCandidates(tiny_world.world.catalog)], judged=tiny_world.judged,
            config=AugmentConfig(k=8, shard_queries=16, batch_size=32))
    return list(read_scored(out))


def test_margin_groups_orient_pairs_by_the_teacher(tiny_world, distilled):
    _, _, train, _ = distilled
    for g in train:
        assert all(g.labels[a] > g.labels[b] for a, b, _ in g.pairs)
        assert len(g.pairs) <= 60
        assert [c.fused_rank for c in g.candidates] == list(range(len(g.candidates)))


def test_student_margins_follow_the_teacher(distilled):
    ranker, summary, train, held = distilled
    assert summary.history[-1]["train_loss"] < summary.history[0]["train_loss"]
    student, teacher = map(np.concatenate, zip(*(teacher_margins(ranker, g) for g in train), strict=True))
    rho_train = spearmanr(student, teacher).statistic
    s_held, t_held = map(np.concatenate, zip(*(teacher_margins(ranker, g) for g in held), strict=True))
    rho_held = spearmanr(s_held, t_held).statistic
    print(f"spearman train={rho_train:.3f} held-out={rho_held:.3f}")
    assert rho_train > 0.5, rho_train
    assert rho_held > 0.3, rho_held  # queries the student never saw: a loose, honest bound


def test_the_student_saves_and_loads_as_the_normal_ranker(tiny_world, distilled, tmp_path):
    ranker, _, _, held = distilled
    ranker.save(tmp_path / "student", extra={"distilled_from": "teacher"})
    loaded = SiameseRanker.load(tmp_path / "student", catalog=tiny_world.catalog)
    g = held[0]
    np.testing.assert_allclose(loaded.score(g.query, g.candidates), ranker.score(g.query, g.candidates), atol=1e-6)


def test_validation_queries_leave_the_training_data_and_are_labelled_by_people(tiny_world, scored):
    held = {q: tiny_world.judged[q] for q in list(tiny_world.judged)[:5]}
    val, rest, skipped = hold_out_validation(scored, {**held, "never augmented": {"x": 2.0}}, tiny_world.catalog)
    assert {r.query for r in rest}.isdisjoint(held) and len(rest) == sum(r.query not in held for r in scored)
    assert skipped["validation query not augmented"] == 1
    assert {g.query for g in val} <= set(held) and val
    for g in val:
        ids = [c.item["id"] for c in g.candidates]
        assert list(g.labels) == [held[g.query].get(i, 0.0) for i in ids]  # grades 0..3; unjudged counts 0
        assert all(g.labels[a] > g.labels[b] for a, b, _ in g.pairs)


def test_the_student_early_stops_on_the_human_labelled_validation(tiny_world, scored):
    held = {q: tiny_world.judged[q] for q in list(tiny_world.judged)[:6]}
    val, rest, _ = hold_out_validation(scored, held, tiny_world.catalog)
    groups, _ = margin_groups(rest, tiny_world.catalog, max_pairs_per_query=60)
    extractor = FeatureExtractor(FeatureConfig(buckets=1 << 12), tiny_world.catalog)
    _, summary = train_student(groups, extractor, StudentTrainConfig(
        schedule=STUDENT_SCHEDULE.replace(epochs=6, batch_size=64, patience=2), dim=16, hidden=(32, 16, 8)),
        val_groups=val)
    val_ndcg = [h["val_ndcg@10"] for h in summary.history]
    assert len(val_ndcg) == 4 * summary.epochs_run or summary.epochs_run < 6  # four checks an epoch
    best = val_ndcg.index(max(val_ndcg))
    assert summary.best_val["ndcg@10"] == max(val_ndcg)
    assert math.ceil(summary.history[best]["epoch"]) == summary.best_epoch
    if summary.epochs_run < 6:  # stopped early: two epochs' checks after the best were all worse
        assert len(val_ndcg) - 1 - best >= 2 * 4
