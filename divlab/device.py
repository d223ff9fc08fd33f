"""Device and dtype policy: the one place that decides where tensors live.

Order of preference: ``DIVLAB_DEVICE`` environment variable if set, else CUDA, then MPS,
then CPU. Numbers are float64 on the CPU and float32 on accelerators (``DIVLAB_DTYPE``
overrides with ``float32`` or ``float64``).

Every numerical tolerance that depends on the dtype lives here too (:func:`tiny`,
:func:`eps`), so that no magic epsilon is scattered through the code.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

__all__ = ["get_device", "get_dtype", "as_tensor", "tiny", "eps", "describe", "resolve"]

_VALID_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@lru_cache(maxsize=None)
def _auto_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def get_device() -> torch.device:
    """The device divlab computes on: ``DIVLAB_DEVICE`` if set, else cuda -> mps -> cpu."""
    name = os.environ.get("DIVLAB_DEVICE", "").strip().lower()
    if not name or name == "auto":
        return torch.device(_auto_device())
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"DIVLAB_DEVICE={name!r}: not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DIVLAB_DEVICE={name!r}: CUDA is not available on this machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"DIVLAB_DEVICE={name!r}: MPS is not available on this machine")
    return dev


def get_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """float64 on CPU, float32 on accelerators; ``DIVLAB_DTYPE`` overrides."""
    name = os.environ.get("DIVLAB_DTYPE", "").strip().lower()
    if name:
        if name not in _VALID_DTYPES:
            raise ValueError(f"DIVLAB_DTYPE={name!r}: must be one of {sorted(_VALID_DTYPES)}")
        dt = _VALID_DTYPES[name]
        dev = torch.device(device) if device is not None else get_device()
        if dt == torch.float64 and dev.type == "mps":
            raise ValueError("DIVLAB_DTYPE='float64': MPS does not support float64")
        return dt
    dev = torch.device(device) if device is not None else get_device()
    return torch.float64 if dev.type == "cpu" else torch.float32


def resolve(device=None, dtype=None, like: torch.Tensor | None = None):
    """Resolve (device, dtype): explicit arguments first, then ``like``, then the policy."""
    if device is None:
        device = like.device if like is not None else get_device()
    device = torch.device(device)
    if dtype is None:
        if like is not None and like.is_floating_point():
            dtype = like.dtype
        else:
            dtype = get_dtype(device)
    return device, dtype


def as_tensor(x, device=None, dtype=None) -> torch.Tensor:
    """Convert ``x`` to a floating tensor on the policy device/dtype.

    A floating tensor passed in keeps its device, dtype and autograd graph unless
    ``device``/``dtype`` are given explicitly.
    """
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() and device is None and dtype is None:
            return x
        dev, dt = resolve(device, dtype, like=x)
        return x.to(device=dev, dtype=dt)
    dev, dt = resolve(device, dtype)
    return torch.as_tensor(x, device=dev, dtype=dt)


def tiny(dtype: torch.dtype) -> float:
    """Smallest positive normal number of ``dtype`` (floor for logs and divisions)."""
    return torch.finfo(dtype).tiny


def eps(dtype: torch.dtype) -> float:
    """Machine epsilon of ``dtype``."""
    return torch.finfo(dtype).eps


def describe() -> str:
    """One line for the UI: which device and dtype are in use."""
    dev = get_device()
    dt = get_dtype(dev)
    name = dev.type
    if dev.type == "cuda":
        name = f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"{name}, {str(dt).replace('torch.', '')}, torch {torch.__version__}"
