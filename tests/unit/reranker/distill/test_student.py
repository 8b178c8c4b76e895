"""The tiny end-to-end distillation: teacher trained, pairs augmented, student follows the teacher."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from dsr.reranker.distill import (
    AugmentConfig,
    StudentTrainConfig,
    augment,
    margin_groups,
    read_scored,
    teacher_margins,
    train_student,
)
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.siamese import SiameseRanker

from .conftest import OverlapCandidates

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def distilled(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("augmented")
    queries = list(tiny_world.judged)
    augment(queries, tiny_world.teacher, tiny_world.catalog, out, sources=[OverlapCandidates(tiny_world.world.catalog)],
            judged=tiny_world.judged, config=AugmentConfig(k=8, shard_queries=16, batch_size=32))
    groups, _ = margin_groups(read_scored(out), tiny_world.catalog, max_pairs_per_query=60)
    train, held = groups[:-6], groups[-6:]
    extractor = FeatureExtractor(FeatureConfig(buckets=1 << 12), tiny_world.catalog)
    ranker, summary = train_student(train, extractor, StudentTrainConfig(epochs=30, batch_size=64, dim=16,
                                                                        hidden=(32, 16, 8), lr=3e-3))
    return ranker, summary, train, held


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
