"""Device and dtype policy: the one place that decides where tensors live.

Order of preference: ``DIVLAB_DEVICE`` environment variable if set, else CUDA, then MPS,
then CPU. Numbers are float64 on the CPU and float32 on accelerators (``DIVLAB_DTYPE``
overrides with ``float32`` or ``float64``).

Every numerical tolerance that depends on the dtype lives here too (:func:`tiny`,
:func:`eps`), so that no magic epsilon is scattered through the code.

CPU memory (:func:`tune_cpu_allocator`, applied when divlab is imported): a fit step makes
temporaries of the batch's size (a 64-member batch on a 2049-point grid: 1 MB each, ~16 MB per
step). glibc's malloc serves blocks over 128 kB with mmap and returns freed memory at the top of
the heap to the system at once, so every step page-faults all of it anew: 4.6 million page faults
and ~3× the time for one 64-member, 500-step fit. divlab raises the mmap threshold to 4 MB and the
trim threshold to 32 MB (glibc only; at most 32 MB of freed memory is kept; the peak resident
memory of that fit is unchanged). ``DIVLAB_MALLOC=system`` leaves malloc as it is.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
import os
import platform
from functools import lru_cache

import torch

__all__ = ["get_device", "get_dtype", "as_tensor", "tiny", "eps", "describe", "resolve", "tune_cpu_allocator",
           "one_cpu_thread"]

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


#: glibc mallopt parameters (malloc.h) and divlab's values for them
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 4 << 20
TRIM_THRESHOLD_BYTES = 32 << 20
#: what :func:`tune_cpu_allocator` did: "tuned", "system" (DIVLAB_MALLOC=system), or why not
CPU_ALLOCATOR = "not applied"


@contextmanager
def one_cpu_thread():
    """One intra-op CPU thread for the block, restored on exit. For small problems, where the
    thread pool's hand-off costs more than the arithmetic (on a busy 2-core machine: 10-20× for
    unrolled autograd through Sinkhorn, milliseconds per op in the fitting engine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tune_cpu_allocator() -> str:
    """Keep freed batch temporaries in the heap instead of returning them to the system after
    every step (see the module docstring). Applied once at import; returns what was done."""
    global CPU_ALLOCATOR
    mode = os.environ.get("DIVLAB_MALLOC", "").strip().lower() or "tuned"
    if mode not in ("tuned", "system"):
        raise ValueError(f"DIVLAB_MALLOC={mode!r}: must be 'tuned' or 'system'")
    if mode == "system":
        CPU_ALLOCATOR = "system"
    elif platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        CPU_ALLOCATOR = "system (not glibc)"
    else:
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
        except (OSError, AttributeError) as exc:  # no loadable libc or no mallopt: leave malloc alone
            CPU_ALLOCATOR = f"system (mallopt unavailable: {exc})"
        else:
            CPU_ALLOCATOR = "tuned" if ok else "system (mallopt refused)"
    return CPU_ALLOCATOR


tune_cpu_allocator()
