"""The device/dtype policy: one place, DIVLAB_DEVICE overrides, float64 on CPU."""

import pytest
import torch

from divlab import device


def test_cpu_override(monkeypatch):
    monkeypatch.setenv("DIVLAB_DEVICE", "cpu")
    assert device.get_device() == torch.device("cpu")
    assert device.get_dtype() == torch.float64


def test_bad_override_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DIVLAB_DEVICE", "tpu9")
    with pytest.raises(ValueError, match="DIVLAB_DEVICE='tpu9'"):
        device.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DIVLAB_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        device.get_device()


def test_dtype_override(monkeypatch):
    monkeypatch.setenv("DIVLAB_DEVICE", "cpu")
    monkeypatch.setenv("DIVLAB_DTYPE", "float32")
    assert device.get_dtype() == torch.float32
    monkeypatch.setenv("DIVLAB_DTYPE", "half")
    with pytest.raises(ValueError, match="DIVLAB_DTYPE='half'"):
        device.get_dtype()


def test_tensors_keep_their_graph():
    t = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    assert device.as_tensor(t) is t
    assert device.as_tensor(2.0).dtype == device.get_dtype()


def test_describe_names_device_and_dtype():
    s = device.describe()
    assert device.get_device().type in s and "torch" in s
