import numpy as np
import pytest

from dsr.reranker.distill import GradeScale


def test_integer_grades_are_one_hot():
    scale = GradeScale(1, 3, 3)
    np.testing.assert_allclose(scale.soft_targets([1, 2, 3]), np.eye(3))


def test_an_averaged_grade_splits_between_its_neighbours_and_keeps_its_mean():
    scale = GradeScale(1, 3, 3)
    t = scale.soft_targets([2.33, 1.5])
    np.testing.assert_allclose(t[0], [0.0, 0.67, 0.33], atol=1e-6)
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(scale.expected(t), [2.33, 1.5], atol=1e-6)


def test_grades_outside_the_scale_are_clipped():
    scale = GradeScale(0, 3, 4)
    np.testing.assert_allclose(scale.soft_targets([-1, 7]), [[1, 0, 0, 0], [0, 0, 0, 1]])


def test_fit_and_config_round_trip():
    scale = GradeScale.fit([1.0, 2.33, 3.0])
    assert scale == GradeScale(1.0, 3.0, 3)
    assert GradeScale.from_config(scale.to_config()) == scale


def test_a_scale_needs_two_different_grades():
    with pytest.raises(ValueError, match="two different grades"):
        GradeScale.fit([2.0, 2.0])
    with pytest.raises(ValueError):
        GradeScale(1, 1, 3)
