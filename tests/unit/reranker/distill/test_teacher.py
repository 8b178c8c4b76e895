import numpy as np
import pytest

from dsr.catalog import item_text
from dsr.errors import ModelFormatError
from dsr.modelio import read_config
from dsr.reranker.base import Candidate, Reranker
from dsr.reranker.distill import CrossEncoderTeacher
from dsr.reranker.distill.teacher import KIND


def _pairs(tiny_world, n=12):
    rows = [(q, tiny_world.catalog[i]) for q, items in tiny_world.judged.items() for i in items][:n]
    return [q for q, _ in rows], [item_text(it) for _, it in rows]


def test_teacher_gives_a_distribution_over_the_grades_and_its_expected_grade(tiny_world):
    teacher = tiny_world.teacher
    queries, texts = _pairs(tiny_world)
    probs = teacher.predict_proba(queries, texts, batch_size=5)
    assert probs.shape == (len(queries), 4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    rel = teacher.relevance(queries, texts)
    assert ((rel >= 0) & (rel <= 3)).all()
    np.testing.assert_allclose(rel, probs @ np.arange(4), atol=1e-4)


def test_batching_does_not_change_scores(tiny_world):
    queries, texts = _pairs(tiny_world)
    a = tiny_world.teacher.relevance(queries, texts, batch_size=1)
    b = tiny_world.teacher.relevance(queries, texts, batch_size=64)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_teacher_is_a_reranker(tiny_world):
    teacher = tiny_world.teacher
    assert isinstance(teacher, Reranker)
    query = next(iter(tiny_world.judged))
    cands = [Candidate(item=tiny_world.catalog[i]) for i in tiny_world.judged[query]]
    scores = teacher.score(query, cands)
    assert scores.shape == (len(cands),) and scores.dtype == np.float32
    assert teacher.score(query, []).shape == (0,)


def test_teacher_round_trip_is_exact_and_self_contained(tiny_world, tmp_path):
    teacher = tiny_world.teacher
    teacher.save(tmp_path / "teacher")
    names = {p.name for p in (tmp_path / "teacher").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    cfg = read_config(tmp_path / "teacher", kind=KIND, supported_versions=(1,))
    assert cfg["scale"] == {"low": 0.0, "high": 3.0, "classes": 4}
    loaded = CrossEncoderTeacher.load(tmp_path / "teacher", device="cpu")
    assert loaded.model_id == teacher.model_id and loaded.max_length == teacher.max_length
    queries, texts = _pairs(tiny_world)
    np.testing.assert_allclose(loaded.relevance(queries, texts), teacher.relevance(queries, texts), atol=1e-5)


def test_loading_something_else_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFormatError, match="not a dsr model directory"):
        CrossEncoderTeacher.load(tmp_path)
    (tmp_path / "config.json").write_text('{"kind": "dsr.siamese_ranker", "format_version": 1}')
    with pytest.raises(ModelFormatError, match="expected 'distill-teacher'"):
        CrossEncoderTeacher.load(tmp_path)
