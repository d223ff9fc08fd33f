"""Parametric distributions: Normal, MultivariateNormal (2D), StudentT, Laplace, Uniform."""

from __future__ import annotations

import math

import torch

from .. import device as _device
from .base import (LOG_2PI, Distribution, check_finite, check_magnitude, check_positive, check_scale, fmt_value,
                   tolist)

__all__ = ["Normal", "MultivariateNormal", "StudentT", "Laplace", "Uniform"]

# Normal quadrature box: loc +- 8 scale leaves a tail mass of 1.2e-15.
NORMAL_BOX = 8.0


def _params(owner: str, names, values, device, dtype):
    """Convert parameters to tensors sharing one device and dtype."""
    like = next((v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()), None)
    dev, dt = _device.resolve(device, dtype, like=like)
    out = []
    for name, v in zip(names, values):
        if v is None:
            raise ValueError(f"{owner}({name}=None): {name} is required")
        if isinstance(v, (bool, str, bytes)):
            raise ValueError(f"{owner}({name}={v!r}): {name} must be a number or an array of numbers")
        try:
            t = _device.as_tensor(v, device=dev, dtype=dt)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
            why = f" (larger than {torch.finfo(dt).max:.4g})" if isinstance(exc, OverflowError) else ""
            raise ValueError(f"{owner}({name}={shown}): {name} must be a number or an array of numbers{why}") from exc
        if t.numel() == 0:
            raise ValueError(f"{owner}({name}={v!r}): {name} must not be empty")
        out.append(t)
    return out


def _broadcast(owner: str, names, tensors, event: int = 0) -> torch.Size:
    """The batch shape of parameters that must broadcast (``event`` trailing dims excluded)."""
    try:
        return torch.broadcast_shapes(*(t.shape[:t.dim() - event] for t in tensors))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, tensors))
        raise ValueError(f"{owner}({shapes}): the parameters' shapes do not broadcast together") from None


class Normal(Distribution):
    """Univariate normal N(loc, scale²). Reparameterizable.

    >>> Normal(0.0, 1.0).log_prob(torch.tensor(0.0, dtype=torch.float64))  # -0.9189...
    """

    spec_type = "normal"
    has_rsample = True
    is_gaussian = True
    dim = 1

    def __init__(self, loc=0.0, scale=1.0, *, device=None, dtype=None, validate: bool = True):
        self.loc, self.scale = _params("Normal", ("loc", "scale"), (loc, scale), device, dtype)
        self.batch_shape = _broadcast("Normal", ("loc", "scale"), (self.loc, self.scale))
        if validate:
            check_magnitude("Normal", "loc", self.loc)
            check_scale("Normal", "scale", self.scale, self.loc)
        self._set_device(self.loc)

    def log_prob(self, x):
        x = self._as_points(x)
        z = (x - self.loc) / self.scale
        return -0.5 * z * z - torch.log(self.scale) - 0.5 * LOG_2PI

    def _rsample(self, n):
        shape = (n,) + tuple(self.batch_shape)
        eps = torch.randn(shape, device=self.device, dtype=self.dtype)
        return self.loc + self.scale * eps

    @property
    def mean(self):
        return self.loc.expand(self.batch_shape)

    @property
    def variance(self):
        return (self.scale**2).expand(self.batch_shape)

    def bounds(self):
        lo = (self.loc - NORMAL_BOX * self.scale).min()
        hi = (self.loc + NORMAL_BOX * self.scale).max()
        return torch.stack([lo, hi]).reshape(1, 2).detach()

    def min_scale(self):
        return float(self.scale.detach().min())

    def to_spec(self):
        return {"type": "normal", "loc": tolist(self.loc), "scale": tolist(self.scale)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec["loc"], spec["scale"], **kw)

    spec_keys = ("loc", "scale")


class MultivariateNormal(Distribution):
    """d-dimensional normal N(mean, cov), d ≥ 2, with full covariance (2D in the pages; any d for
    closed forms and sample estimators). Give ``cov`` or ``scale_tril`` (L, cov = L Lᵀ); the
    default ``cov`` is the identity of the mean's size.

    Computations use the Cholesky factor and triangular solves.
    """

    spec_type = "mvn"
    has_rsample = True
    is_gaussian = True
    dim = 2

    def __init__(self, mean=(0.0, 0.0), cov=None, *, scale_tril=None, device=None, dtype=None,
                 validate: bool = True):
        owner = "MultivariateNormal"
        if cov is None and scale_tril is None:
            k = len(mean) if isinstance(mean, (list, tuple)) else (int(mean.shape[-1]) if hasattr(mean, "shape") and len(mean.shape) else 2)
            cov = [[1.0 if i == j else 0.0 for j in range(k)] for i in range(k)]
        if cov is not None and scale_tril is not None:
            raise ValueError(f"{owner}(cov=..., scale_tril=...): give cov or scale_tril, not both")
        second = cov if cov is not None else scale_tril
        self.mean, second = _params(owner, ("mean", "cov" if cov is not None else "scale_tril"),
                                    (mean, second), device, dtype)
        if self.mean.dim() == 0 or self.mean.shape[-1] < 2:
            raise ValueError(f"{owner}(mean={fmt_value(self.mean)}): mean must have at least 2 entries "
                             "(use Normal in 1D)")
        k = int(self.mean.shape[-1])
        self.dim = k
        name = "cov" if cov is not None else "scale_tril"
        if second.dim() < 2 or second.shape[-2:] != (k, k):
            raise ValueError(f"{owner}({name}={fmt_value(second)}): {name} must be a {k}x{k} matrix "
                             f"(the mean has {k} entries)")
        if validate:
            check_magnitude(owner, "mean", self.mean)
            check_magnitude(owner, name, second, 1e18 if name == "cov" else 1e9)
        if cov is not None:
            if validate:
                asym = (second - second.transpose(-1, -2)).abs().max()
                scale = second.abs().max().clamp_min(1.0)
                if asym > 1e-9 * scale:
                    raise ValueError(f"{owner}(cov={fmt_value(second)}): cov must be symmetric")
            self.cov = 0.5 * (second + second.transpose(-1, -2))
            L, info = torch.linalg.cholesky_ex(self.cov)
            if validate and (info != 0).any():
                ev = torch.linalg.eigvalsh(self.cov.detach())
                raise ValueError(
                    f"{owner}(cov={fmt_value(second)}): cov must be positive definite "
                    f"(eigenvalues {fmt_value(ev)})"
                )
            self.scale_tril = L
        else:
            L = torch.tril(second)
            if validate and not (torch.diagonal(L, dim1=-2, dim2=-1) > 0).all():
                raise ValueError(f"{owner}(scale_tril={fmt_value(second)}): the diagonal of scale_tril must be > 0")
            self.scale_tril = L
            self.cov = L @ L.transpose(-1, -2)
        if validate:
            sd = torch.diagonal(self.scale_tril, dim1=-2, dim2=-1).detach()
            if bool((sd < 1e-9).any()):
                raise ValueError(f"{owner}({name}={fmt_value(second)}): the covariance is too close to singular "
                                 f"(a Cholesky diagonal of {float(sd.min()):.3g}; the smallest allowed is 1e-9)")
        self.batch_shape = self._mvn_batch(owner, name)
        self._set_device(self.mean)

    def _mvn_batch(self, owner, name):
        try:
            return torch.broadcast_shapes(self.mean.shape[:-1], self.scale_tril.shape[:-2])
        except RuntimeError:
            raise ValueError(f"{owner}(mean {tuple(self.mean.shape)}, {name} {tuple(self.scale_tril.shape)}): the "
                             "parameters' batch shapes do not broadcast together") from None

    def log_prob(self, x):
        x = self._as_points(x)
        diff = (x - self.mean).unsqueeze(-1)
        L = self.scale_tril
        shape = torch.broadcast_shapes(diff.shape[:-2], L.shape[:-2])
        k = self.dim
        z = torch.linalg.solve_triangular(L.expand(shape + (k, k)), diff.expand(shape + (k, 1)), upper=False)
        maha = (z.squeeze(-1) ** 2).sum(-1)
        half_logdet = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        return -0.5 * maha - half_logdet - 0.5 * k * LOG_2PI

    def _rsample(self, n):
        shape = (n,) + tuple(self.batch_shape) + (self.dim,)
        eps = torch.randn(shape, device=self.device, dtype=self.dtype)
        return self.mean + (self.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    @property
    def variance(self):
        return torch.diagonal(self.cov, dim1=-2, dim2=-1)

    def bounds(self):
        sd = self.variance.detach().sqrt()
        m = self.mean.detach()
        lo = (m - NORMAL_BOX * sd).reshape(-1, self.dim).min(0).values
        hi = (m + NORMAL_BOX * sd).reshape(-1, self.dim).max(0).values
        return torch.stack([lo, hi], dim=-1)

    def min_scale(self):
        return float(torch.linalg.eigvalsh(self.cov.detach()).min().clamp_min(0).sqrt())

    def to_spec(self):
        return {"type": "mvn", "mean": tolist(self.mean), "cov": tolist(self.cov)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec["mean"], spec["cov"], **kw)

    spec_keys = ("mean", "cov")


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, location and scale. Heavy-tailed.

    The quadrature box is truncated at ``loc ± STUDENT_BOX_CAP · scale``: for small ``df`` a
    little mass lies outside, and quadrature reports the mass its grid captured.
    """

    spec_type = "student_t"
    has_rsample = True
    dim = 1
    TAIL = 1e-12
    BOX_CAP = 200.0
    #: df range: above MAX_DF the t is a Normal to every digit (and lgamma differences cancel)
    MIN_DF, MAX_DF = 1e-3, 1e6

    def __init__(self, df=3.0, loc=0.0, scale=1.0, *, device=None, dtype=None, validate: bool = True):
        self.df, self.loc, self.scale = _params("StudentT", ("df", "loc", "scale"), (df, loc, scale), device, dtype)
        self.batch_shape = _broadcast("StudentT", ("df", "loc", "scale"), (self.df, self.loc, self.scale))
        if validate:
            check_positive("StudentT", "df", self.df)
            check_magnitude("StudentT", "df", self.df, self.MAX_DF)
            if bool((self.df.detach() < self.MIN_DF).any()):
                raise ValueError(f"StudentT(df={fmt_value(self.df)}): df must be >= {self.MIN_DF:g} (the smallest "
                                 "value allowed: below it the quadrature box and the sampler overflow)")
            check_magnitude("StudentT", "loc", self.loc)
            check_scale("StudentT", "scale", self.scale, self.loc)
        self._set_device(self.loc)

    def log_prob(self, x):
        x = self._as_points(x)
        nu = self.df
        z = (x - self.loc) / self.scale
        return (torch.lgamma((nu + 1) / 2) - torch.lgamma(nu / 2) - 0.5 * torch.log(nu * math.pi)
                - torch.log(self.scale) - (nu + 1) / 2 * torch.log1p(z * z / nu))

    def _rsample(self, n):
        shape = (n,) + tuple(self.batch_shape)
        nu = self.df.expand(shape)
        z = torch.randn(shape, device=self.device, dtype=self.dtype)
        g = torch._standard_gamma(nu / 2)  # reparameterized in df (implicit gradient)
        return self.loc + self.scale * z * torch.rsqrt(2 * g / nu)

    def _half_width(self):
        from scipy import stats

        df = self.df.detach().cpu().reshape(-1).min().item()
        return min(float(stats.t.isf(self.TAIL / 2, df)), self.BOX_CAP)

    def bounds(self):
        w = self._half_width()
        lo = (self.loc - w * self.scale).min()
        hi = (self.loc + w * self.scale).max()
        return torch.stack([lo, hi]).reshape(1, 2).detach()

    def min_scale(self):
        return float(self.scale.detach().min())

    @property
    def mean(self):
        return torch.where(self.df > 1, self.loc, torch.full_like(self.loc, float("nan")))

    def to_spec(self):
        return {"type": "student_t", "df": tolist(self.df), "loc": tolist(self.loc), "scale": tolist(self.scale)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec["df"], spec["loc"], spec["scale"], **kw)

    spec_keys = ("df", "loc", "scale")


class Laplace(Distribution):
    """Laplace(loc, scale): density exp(-|x - loc| / scale) / (2 scale). Reparameterizable."""

    spec_type = "laplace"
    has_rsample = True
    dim = 1
    BOX = 36.0  # exp(-36) ~ 2e-16 tail mass

    def __init__(self, loc=0.0, scale=1.0, *, device=None, dtype=None, validate: bool = True):
        self.loc, self.scale = _params("Laplace", ("loc", "scale"), (loc, scale), device, dtype)
        self.batch_shape = _broadcast("Laplace", ("loc", "scale"), (self.loc, self.scale))
        if validate:
            check_magnitude("Laplace", "loc", self.loc)
            check_scale("Laplace", "scale", self.scale, self.loc)
        self._set_device(self.loc)

    def log_prob(self, x):
        x = self._as_points(x)
        return -(x - self.loc).abs() / self.scale - torch.log(2 * self.scale)

    def _rsample(self, n):
        shape = (n,) + tuple(self.batch_shape)
        finfo = torch.finfo(self.dtype)
        u = torch.rand(shape, device=self.device, dtype=self.dtype) * 2 - 1
        u = u.clamp(-1 + finfo.eps, 1 - finfo.eps)
        return self.loc - self.scale * torch.sign(u) * torch.log1p(-u.abs())

    @property
    def mean(self):
        return self.loc.expand(self.batch_shape)

    @property
    def variance(self):
        return (2 * self.scale**2).expand(self.batch_shape)

    def bounds(self):
        lo = (self.loc - self.BOX * self.scale).min()
        hi = (self.loc + self.BOX * self.scale).max()
        return torch.stack([lo, hi]).reshape(1, 2).detach()

    def min_scale(self):
        return float(self.scale.detach().min())

    def to_spec(self):
        return {"type": "laplace", "loc": tolist(self.loc), "scale": tolist(self.scale)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec["loc"], spec["scale"], **kw)

    spec_keys = ("loc", "scale")


class Uniform(Distribution):
    """Uniform on an interval [low, high] (1D) or a box (2D: ``low`` and ``high`` are 2-vectors)."""

    spec_type = "uniform"
    has_rsample = True

    def __init__(self, low=0.0, high=1.0, *, device=None, dtype=None, validate: bool = True):
        self.low, self.high = _params("Uniform", ("low", "high"), (low, high), device, dtype)
        if validate:
            check_magnitude("Uniform", "low", self.low)
            check_magnitude("Uniform", "high", self.high)
        if self.low.shape != self.high.shape and (self.low.dim() > 1 or self.high.dim() > 1):
            raise ValueError(f"Uniform(low={fmt_value(self.low)}, high={fmt_value(self.high)}): low and high must "
                             "have the same shape (numbers in 1D, 2-vectors for a 2D box)")
        if self.low.shape != self.high.shape and self.low.dim() > 0 and self.high.dim() > 0:
            try:
                torch.broadcast_shapes(self.low.shape, self.high.shape)
            except RuntimeError:
                raise ValueError(
                    f"Uniform(low={fmt_value(self.low)}, high={fmt_value(self.high)}): low and high must have the same shape"
                ) from None
        two_d = (self.low.dim() > 0 and self.low.shape[-1] == 2) or (self.high.dim() > 0 and self.high.shape[-1] == 2)
        self.dim = 2 if two_d else 1
        if validate and not (self.high > self.low).all():
            raise ValueError(
                f"Uniform(low={fmt_value(self.low)}, high={fmt_value(self.high)}): high must be > low"
            )
        if validate:
            width = (self.high - self.low).detach()
            floor = torch.maximum(torch.full_like(width, 1e-9),
                                  1e-10 * torch.maximum(self.low.detach().abs(), self.high.detach().abs()))
            if bool((width < floor).any()):
                raise ValueError(f"Uniform(low={fmt_value(self.low)}, high={fmt_value(self.high)}): high - low must "
                                 f"be >= {float(floor.max()):g} here (1e-9, and 1e-10·|bound|: float64 cannot "
                                 "resolve a narrower interval)")
        shape = torch.broadcast_shapes(self.low.shape, self.high.shape)
        self.batch_shape = shape[:-1] if self.dim == 2 else shape
        self._set_device(self.low)

    def log_prob(self, x):
        x = self._as_points(x)
        inside = (x >= self.low) & (x <= self.high)
        log_vol = torch.log(self.high - self.low)
        if self.dim == 2:
            inside = inside.all(-1)
            log_vol = log_vol.sum(-1)
        neg_inf = torch.full_like(log_vol, float("-inf")) if log_vol.dim() else torch.tensor(
            float("-inf"), device=self.device, dtype=self.dtype)
        return torch.where(inside, -log_vol, neg_inf)

    def _rsample(self, n):
        shape = (n,) + tuple(torch.broadcast_shapes(self.low.shape, self.high.shape))
        u = torch.rand(shape, device=self.device, dtype=self.dtype)
        return self.low + (self.high - self.low) * u

    @property
    def mean(self):
        return (self.low + self.high) / 2

    @property
    def variance(self):
        return (self.high - self.low) ** 2 / 12

    def bounds(self):
        if self.dim == 1:
            return torch.stack([self.low.detach().min(), self.high.detach().max()]).reshape(1, 2)
        lo = self.low.detach().reshape(-1, 2).min(0).values
        hi = self.high.detach().reshape(-1, 2).max(0).values
        return torch.stack([lo, hi], dim=-1)

    def min_scale(self):
        return float((self.high - self.low).detach().min())

    def to_spec(self):
        return {"type": "uniform", "low": tolist(self.low), "high": tolist(self.high)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec["low"], spec["high"], **kw)

    spec_keys = ("low", "high")
