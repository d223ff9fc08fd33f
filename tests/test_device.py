"""The device/dtype policy: one place, DIVLAB_DEVICE overrides, float64 on CPU."""

import pytest
import torch

import divlab as dl
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


# ----------------------------------------------------------------------------- CPU allocator
def test_cpu_allocator_setting(monkeypatch):
    from divlab import device

    monkeypatch.setenv("DIVLAB_MALLOC", "bogus")
    with pytest.raises(ValueError, match="DIVLAB_MALLOC='bogus'"):
        device.tune_cpu_allocator()
    monkeypatch.setenv("DIVLAB_MALLOC", "system")
    assert device.tune_cpu_allocator() == "system"
    monkeypatch.delenv("DIVLAB_MALLOC")
    import platform

    expected = "tuned" if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" else None
    got = device.tune_cpu_allocator()
    assert got == expected or (expected is None and got.startswith("system"))


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc malloc only")
def test_batch_steps_do_not_page_fault():
    """With the tuned thresholds a 64-member batch reuses its freed temporaries (glibc's defaults
    page-faulted ~70 000 times for these 50 steps: every 1 MB temporary was a fresh mmap)."""
    import resource

    from divlab import device

    assert device.tune_cpu_allocator() == "tuned"
    p = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])
    kw = dict(divergence=["kl", "reverse_kl"], restarts=32, steps=50, tol=0.0, polish=False, box=[-12.5, 12.5],
              n=2049, init={"loc": -1.0, "scale": 2.0})
    dl.fit(p, **kw)  # warm: the heap grows to the batch's working set once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    dl.fit(p, **kw)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 5000
