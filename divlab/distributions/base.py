"""The distribution contract shared by every divlab distribution.

A distribution lives in 1D (event shape ``()``, points are scalars) or 2D (event shape
``(2,)``). Parameters are torch tensors on one device and dtype; they may carry a batch shape
(torch-style broadcasting), which is what lets the fitting engine evaluate many models at once.

Every distribution offers ``log_prob``, ``sample`` (seeded), ``rsample`` where it is
reparameterizable (``has_rsample``), a quadrature box (``bounds``), a smallest feature length
(``min_scale``, used to pick grid resolution) and a JSON spec (``to_spec`` / ``from_spec``).
Invalid parameters raise ``ValueError`` naming the object, the parameter and the value, e.g.
``Normal(scale=-1.0): scale must be > 0``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, ClassVar

import torch

from .. import device as _device

__all__ = ["Distribution", "fmt_value", "check_finite", "check_positive", "check_magnitude", "check_scale",
           "check_seed", "rng", "MAX_ABS", "MIN_SCALE", "REL_SCALE"]

LOG_2PI = math.log(2.0 * math.pi)

#: largest magnitude of a location, bound, point or scale (beyond it a quadrature box, a grid or
#: a transport cost overflows or loses every digit): refused at construction with this value named
MAX_ABS = 1e9
#: smallest scale (standard deviation, width, noise): below it squares underflow
MIN_SCALE = 1e-9
#: smallest scale relative to the distance of the location from 0: float64 holds about 16
#: digits, so a bump narrower than 1e-10·|loc| cannot be resolved by any grid or sampler
REL_SCALE = 1e-10


def fmt_value(v: Any) -> str:
    """Compact printable form of a parameter value for error messages."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        if v.numel() == 1:
            return repr(float(v.reshape(())))
        if v.numel() > 8:
            flat = v.reshape(-1)[:8].tolist()
            return "[" + ", ".join(f"{x:.4g}" for x in flat) + ", ...] (shape " + str(tuple(v.shape)) + ")"
        return str(v.tolist())
    if isinstance(v, float):
        return repr(v)
    return repr(v)


def check_finite(owner: str, name: str, value: torch.Tensor) -> None:
    if not torch.isfinite(value).all():
        raise ValueError(f"{owner}({name}={fmt_value(value)}): {name} must be finite (no NaN or inf)")


def check_positive(owner: str, name: str, value: torch.Tensor) -> None:
    check_finite(owner, name, value)
    if not (value > 0).all():
        raise ValueError(f"{owner}({name}={fmt_value(value)}): {name} must be > 0")


def check_magnitude(owner: str, name: str, value: torch.Tensor, limit: float = MAX_ABS) -> None:
    """Finite, and ``|value| <= limit`` everywhere (the error names the largest value allowed)."""
    check_finite(owner, name, value)
    v = value.detach()
    if v.numel() and bool((v.abs() > limit).any()):
        raise ValueError(f"{owner}({name}={fmt_value(value)}): |{name}| must be <= {limit:g} "
                         "(the largest value allowed)")


def check_scale(owner: str, name: str, value: torch.Tensor, loc: torch.Tensor | None = None) -> None:
    """A scale: finite, in [MIN_SCALE, MAX_ABS], and (given ``loc``) at least REL_SCALE·|loc|."""
    check_positive(owner, name, value)
    check_magnitude(owner, name, value)
    v = value.detach()
    if bool((v < MIN_SCALE).any()):
        raise ValueError(f"{owner}({name}={fmt_value(value)}): {name} must be >= {MIN_SCALE:g} (the smallest value allowed)")
    if loc is not None:
        floor = REL_SCALE * loc.detach().abs()
        try:
            bad = bool((v < floor).any())
        except RuntimeError:
            bad = False  # shapes that do not broadcast are reported by the caller
        if bad:
            raise ValueError(f"{owner}({name}={fmt_value(value)}): {name} must be >= {REL_SCALE:g}·|loc| = "
                             f"{float(floor.max()):g} here (float64 cannot resolve a narrower bump this far from 0)")


def check_seed(owner: str, seed) -> None:
    """A seed: None or an integer in [0, 2**63 - 1] (not a bool, not a string)."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"{owner}(seed={seed!r}): seed must be an integer in [0, 2**63 - 1] or None")


@contextlib.contextmanager
def rng(seed: int | None, device: torch.device):
    """Seed torch's generators for the duration of a block without touching global state.

    With ``seed=None`` the global generator is used (and advanced) as usual.
    """
    if seed is None:
        yield
        return
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"sample(seed={seed!r}): seed must be a non-negative integer or None")
    dev = torch.device(device)
    if dev.type == "cuda":
        ctx = torch.random.fork_rng(devices=[dev], device_type="cuda")
    elif dev.type == "mps":
        ctx = torch.random.fork_rng(devices=[dev], device_type="mps")
    else:
        ctx = torch.random.fork_rng(devices=[])
    with ctx:
        torch.manual_seed(seed)
        yield


class Distribution:
    """Base class. Subclasses set ``spec_type``, ``dim`` and implement the abstract parts."""

    spec_type: ClassVar[str] = ""
    has_rsample: ClassVar[bool] = False
    #: ``True`` when the distribution is a Gaussian or a mixture of Gaussians (closed forms).
    is_gaussian: ClassVar[bool] = False

    dim: int = 1
    batch_shape: torch.Size = torch.Size()

    # ------------------------------------------------------------------ device / dtype
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def event_shape(self) -> torch.Size:
        return torch.Size() if self.dim == 1 else torch.Size([self.dim])

    def _set_device(self, *tensors: torch.Tensor) -> None:
        t = tensors[0]
        self._device = t.device
        self._dtype = t.dtype

    # ------------------------------------------------------------------ core interface
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not define log_prob")

    def prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_prob(x).exp()

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient of ``log_prob`` with respect to ``x`` (by autograd), same shape as ``x``."""
        x = self._as_points(x).detach().requires_grad_(True)
        with torch.enable_grad():
            lp = self.log_prob(x)
            (g,) = torch.autograd.grad(lp.sum(), x)
        return g

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` draws, shape ``(n, *batch_shape, *event_shape)``, no gradient."""
        n = self._check_n(n)
        with torch.no_grad(), rng(seed, self.device):
            return self._sample(n)

    def rsample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Reparameterized draws (differentiable in the parameters) where ``has_rsample``."""
        if not self.has_rsample:
            raise TypeError(
                f"{type(self).__name__} has no reparameterized sampler (has_rsample=False); "
                "use sample(), or a score-function estimator"
            )
        n = self._check_n(n)
        with rng(seed, self.device):
            return self._rsample(n)

    def _sample(self, n: int) -> torch.Tensor:
        return self._rsample(n)

    def _rsample(self, n: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} has no reparameterized sampler")

    def bounds(self) -> torch.Tensor:
        """Quadrature box, shape ``(dim, 2)`` as ``[[lo, hi], ...]``, holding essentially all mass
        (the union over the batch). Heavy-tailed distributions are truncated; the quadrature
        reports how much mass its grid captured."""
        raise TypeError(f"{type(self).__name__} does not define bounds")  # pragma: no cover

    def min_scale(self) -> float:
        """Smallest length over which the density changes appreciably (sets grid spacing)."""
        raise TypeError(f"{type(self).__name__} does not define min_scale")  # pragma: no cover

    def to_spec(self) -> dict:
        raise TypeError(f"{type(self).__name__} does not define to_spec")  # pragma: no cover

    # ------------------------------------------------------------------ helpers
    def _check_n(self, n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{type(self).__name__}.sample(n={n!r}): n must be a positive integer")
        return n

    def _as_points(self, x) -> torch.Tensor:
        x = _device.as_tensor(x, device=self.device, dtype=self.dtype) if not (
            isinstance(x, torch.Tensor) and x.device == self.device and x.dtype == self.dtype
        ) else x
        if self.dim >= 2 and (x.dim() == 0 or x.shape[-1] != self.dim):
            raise ValueError(
                f"{type(self).__name__}.log_prob(x with shape {tuple(x.shape)}): {self.dim}D points must have "
                f"a last dimension of size {self.dim}"
            )
        return x

    def _batch_x(self, x: torch.Tensor) -> torch.Tensor:
        """Points as given; broadcasting with batch parameters is torch's."""
        return x

    def __repr__(self) -> str:
        spec = self.to_spec()
        args = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "type")
        return f"{type(self).__name__}({args})"


def tolist(t: torch.Tensor):
    """Tensor -> Python float or nested lists (for JSON specs)."""
    t = t.detach().cpu()
    if t.dim() == 0:
        return float(t)
    return t.tolist()
