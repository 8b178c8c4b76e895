"""One device policy: the GPU when present; a GPU asked for but absent gives the CPU with a warning."""

from __future__ import annotations

import warnings

import pytest

from dsr import device
from dsr.errors import UsageError


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "torch_cuda_available", lambda: False)
    monkeypatch.setattr(device, "faiss_gpu_count", lambda: 0)


@pytest.fixture
def faiss_gpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "torch_cuda_available", lambda: False)
    monkeypatch.setattr(device, "faiss_gpu_count", lambda: 1)


def test_auto_and_none_pick_the_cpu_without_a_gpu(no_gpu: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert device.resolve_device(None) == "cpu"
        assert device.resolve_device("auto") == "cpu"
        assert device.resolve_device("auto", faiss=True) == "cpu"


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_falls_back_to_the_cpu_with_a_warning(no_gpu: None, name: str) -> None:
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert device.resolve_device(name) == "cpu"


def test_the_sidecar_falls_back_the_same_way_and_names_the_faiss_gpu_extra(no_gpu: None) -> None:
    with pytest.warns(UserWarning, match=r"dsr\[gpu\]"):
        assert device.resolve_device("cuda", faiss=True) == "cpu"


def test_a_faiss_gpu_counts_for_the_sidecar_but_not_for_torch(faiss_gpu_only: None) -> None:
    assert device.resolve_device("auto", faiss=True) == "cuda"
    assert device.resolve_device("cuda", faiss=True) == "cuda"
    assert device.resolve_device("auto") == "cpu"


def test_torch_device_objects_and_the_cpu_pass_through() -> None:
    import torch

    assert device.resolve_device("cpu") == "cpu"
    assert device.resolve_device(torch.device("cpu")) == "cpu"
    assert device.resolve_device("cpu", faiss=True) == "cpu"


def test_the_sidecar_accepts_only_auto_cpu_or_cuda() -> None:
    with pytest.raises(UsageError, match="use auto, cpu, cuda"):
        device.resolve_device("cuda:1", faiss=True)


def test_a_malformed_torch_device_is_refused() -> None:
    with pytest.raises(RuntimeError):
        device.resolve_device("gpu0")


def test_importing_the_module_needs_neither_torch_nor_faiss() -> None:
    import subprocess
    import sys

    code = ("import sys, dsr.device; "
            "print(int('torch' in sys.modules), int('faiss' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "0"]


def test_training_threads_default_to_the_physical_cores_but_at_most_two() -> None:
    assert 1 <= device.default_threads() <= min(2, device.physical_cores())
    assert device.default_threads(cap=1) == 1


def test_threads_are_set_for_torch_and_setting_them_again_changes_nothing() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        device.use_threads(1)
        assert torch.get_num_threads() == 1
        device.use_threads(1)  # the inter-op pool can be sized once; a second call must not fail
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(UsageError, match="threads must be >= 1"):
        device.use_threads(0)
