import pytest
import torch

from dsr.reranker.distill import MarginMSELoss, SoftTargetCrossEntropy


def test_soft_cross_entropy_equals_hard_cross_entropy_on_one_hot_targets():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    target = torch.tensor([0, 2])
    soft = torch.nn.functional.one_hot(target, 3).float()
    expected = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(SoftTargetCrossEntropy()(logits, soft), expected)


def test_soft_cross_entropy_is_smallest_when_the_prediction_matches_the_target():
    target = torch.tensor([[0.0, 0.6, 0.4]])
    loss = SoftTargetCrossEntropy()
    matched = loss(torch.log(torch.tensor([[1e-6, 0.6, 0.4]])), target)
    other = loss(torch.log(torch.tensor([[0.2, 0.4, 0.4]])), target)
    assert matched < other


def test_soft_cross_entropy_refuses_mismatched_shapes():
    with pytest.raises(ValueError):
        SoftTargetCrossEntropy()(torch.zeros(2, 3), torch.zeros(2, 4))


def test_margin_mse_is_zero_when_margins_match_whatever_the_offset():
    a, b = torch.tensor([5.0, 1.0]), torch.tensor([4.0, 3.0])
    assert MarginMSELoss()(a, b, torch.tensor([1.0, -2.0])) == 0
    assert MarginMSELoss()(a + 10, b + 10, torch.tensor([1.0, -2.0])) == 0


def test_margin_mse_values_and_weights():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    margin = torch.tensor([0.0, 2.0])  # errors 1 and -2 -> squared 1 and 4
    assert MarginMSELoss()(a, b, margin).item() == pytest.approx(2.5)
    assert MarginMSELoss()(a, b, margin, torch.tensor([1.0, 0.0])).item() == pytest.approx(1.0)
