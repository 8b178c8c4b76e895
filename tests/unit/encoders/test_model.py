"""The two-tower model: Encoder protocol, save/load round trip, refusal of bad model directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dsr.encoders.base import Encoder
from dsr.encoders.losses import HingeLoss, InBatchSoftmaxLoss
from dsr.encoders.model import TwoTowerModel
from dsr.errors import ModelFormatError
from dsr.logs.synthetic import make_world


@pytest.fixture(scope="module")
def world():
    return make_world(300, 30, 20, seed=5)


def _model(world, **kw):
    torch.manual_seed(0)
    return TwoTowerModel.build(world.catalog, text_buckets=1 << 10, hidden=(32,), dim=16, device="cpu", **kw)


def test_towers_are_an_encoder_with_unit_vectors(world):
    model = _model(world, use_user=True)
    assert isinstance(model, Encoder) and model.dim == 16
    items = model.encode_items(world.catalog[:7])
    queries = model.encode_queries(["sneakers", "frying pan"],
                                   [{"segment": "budget", "recent_clicks": ["p000001"]}, None])
    assert items.shape == (7, 16) and queries.shape == (2, 16) and items.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)
    # the user features change the query vector (DPSR)
    other = model.encode_queries(["sneakers"], [{"segment": "premium", "recent_clicks": ["p000002"]}])
    assert not np.allclose(queries[0], other[0])
    assert model.encode_queries([]).shape == (0, 16)


def test_save_load_round_trip(world, tmp_path):
    model = _model(world)
    model.save(tmp_path / "m", info={"note": "x"})
    loaded = TwoTowerModel.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.encode_items(world.catalog[:20]), model.encode_items(world.catalog[:20]))
    np.testing.assert_array_equal(loaded.encode_queries(["hammer"]), model.encode_queries(["hammer"]))
    assert loaded.config == model.config
    assert not list(tmp_path.glob("*.pkl"))


def test_refuses_unknown_version_other_kind_and_mismatched_dims(world, tmp_path):
    path = _model(world).save(tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())

    def write(**changes):
        (path / "config.json").write_text(json.dumps({**cfg, **changes}))

    write(format_version=99)
    with pytest.raises(ModelFormatError, match="format version 99 is not supported"):
        TwoTowerModel.load(path)
    write(kind="siamese-ranker")
    with pytest.raises(ModelFormatError, match="expected 'dsr-two-tower'"):
        TwoTowerModel.load(path)
    write(model={**cfg["model"], "dim": 32})
    with pytest.raises(ModelFormatError, match="shape"):
        TwoTowerModel.load(path)
    write()
    with pytest.raises(ModelFormatError, match="dimension 16, the index expects 64"):
        TwoTowerModel.load(path, expected_dim=64)
    (path / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelFormatError, match="unreadable weights"):
        TwoTowerModel.load(path)
    with pytest.raises(ModelFormatError, match="not a dsr model directory"):
        TwoTowerModel.load(tmp_path / "missing")


def test_hinge_loss_is_the_papers_margin_loss():
    scores = torch.tensor([[0.9, 0.1, 0.8]])
    pos = torch.tensor([0])
    only_easy = torch.tensor([[False, True, False]])
    assert float(HingeLoss(margin=0.3)(scores, pos, only_easy)) == 0.0  # 0.9 - 0.1 >= δ
    hard = torch.tensor([[False, False, True]])
    assert float(HingeLoss(margin=0.3)(scores, pos, hard)) == pytest.approx(0.3 - 0.9 + 0.8)
    both = torch.tensor([[False, True, True]])
    assert float(HingeLoss(margin=0.3)(scores, pos, both)) == pytest.approx(0.2 / 2)


def test_in_batch_softmax_prefers_the_positive():
    pos = torch.tensor([0, 1])
    negs = torch.tensor([[False, True], [True, False]])
    good = InBatchSoftmaxLoss(0.1)(torch.tensor([[0.9, 0.1], [0.1, 0.9]]), pos, negs)
    bad = InBatchSoftmaxLoss(0.1)(torch.tensor([[0.1, 0.9], [0.9, 0.1]]), pos, negs)
    assert float(good) < float(bad)
