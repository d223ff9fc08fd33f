"""Named 2D targets: banana, ring, two moons. Each has an exact (or exactly defined) density."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import device as _device
from .base import LOG_2PI, Distribution, check_finite, check_magnitude, check_positive, check_scale, fmt_value, tolist

__all__ = ["Banana", "Ring", "TwoMoons"]


def _scalars(owner, names, values, device, dtype):
    dev, dt = _device.resolve(device, dtype)
    out = []
    for n, v in zip(names, values):
        shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
        if isinstance(v, (bool, str, bytes)):
            raise ValueError(f"{owner}({n}={shown}): {n} must be a number")
        try:
            t = _device.as_tensor(v, device=dev, dtype=dt)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise ValueError(f"{owner}({n}={shown}): {n} must be a number") from exc
        if t.dim() != 0:
            raise ValueError(f"{owner}({n}={shown}): {n} must be a single number")
        out.append(t)
    return out


class Banana(Distribution):
    """Banana: x1 ~ N(0, s1²), x2 | x1 ~ N(b (x1² − s1²), s2²).

    A shear of a Gaussian (Jacobian 1), so the density is exact and sampling is
    reparameterizable. ``curvature`` b bends it (b > 0 opens upwards).
    """

    spec_type = "banana"
    has_rsample = True
    dim = 2
    #: largest |curvature| and scale1 (the quadrature box reaches b·35·s1² + 6 s2 above the axis)
    MAX_CURVATURE, MAX_SCALE1 = 1e3, 1e4

    def __init__(self, curvature=0.3, scale1=1.5, scale2=0.5, *, device=None, dtype=None, validate=True):
        self.curvature, self.scale1, self.scale2 = _scalars(
            "Banana", ("curvature", "scale1", "scale2"), (curvature, scale1, scale2), device, dtype)
        if validate:
            check_magnitude("Banana", "curvature", self.curvature, self.MAX_CURVATURE)
            check_scale("Banana", "scale1", self.scale1)
            check_magnitude("Banana", "scale1", self.scale1, self.MAX_SCALE1)
            check_scale("Banana", "scale2", self.scale2)
        self._set_device(self.curvature)

    def _shift(self, x1):
        return self.curvature * (x1 * x1 - self.scale1**2)

    def log_prob(self, x):
        x = self._as_points(x)
        x1, x2 = x[..., 0], x[..., 1]
        z1 = x1 / self.scale1
        z2 = (x2 - self._shift(x1)) / self.scale2
        return -0.5 * (z1 * z1 + z2 * z2) - torch.log(self.scale1 * self.scale2) - LOG_2PI

    def _rsample(self, n):
        z = torch.randn((n, 2), device=self.device, dtype=self.dtype)
        x1 = self.scale1 * z[:, 0]
        return torch.stack([x1, self._shift(x1) + self.scale2 * z[:, 1]], dim=-1)

    def bounds(self):
        k = 6.0
        s1, s2, b = float(self.scale1), float(self.scale2), float(self.curvature)
        lo2 = min(-b * s1**2, b * (k * k - 1) * s1**2) - k * s2
        hi2 = max(-b * s1**2, b * (k * k - 1) * s1**2) + k * s2
        return torch.tensor([[-k * s1, k * s1], [lo2, hi2]], device=self.device, dtype=self.dtype)

    def min_scale(self):
        # the thinnest direction: s2 across the curve (bent by the curvature)
        return float(self.scale2) / math.sqrt(1.0 + (2 * float(self.curvature) * 2 * float(self.scale1)) ** 2) ** 0.5

    def to_spec(self):
        return {"type": "banana", "curvature": tolist(self.curvature), "scale1": tolist(self.scale1),
                "scale2": tolist(self.scale2)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec.get("curvature", 0.3), spec.get("scale1", 1.5), spec.get("scale2", 0.5), **kw)

    spec_keys = ("curvature", "scale1", "scale2")


class Ring(Distribution):
    """Ring: density ∝ exp(−(|x| − radius)² / (2 width²)) in the plane, centred at ``center``.

    Normalizing constant (exact): 2π [w² exp(−r0²/2w²) + r0 w √(π/2) (1 + erf(r0 / (w√2)))].
    Sampling: uniform angle, radius by rejection from N(r0, w²) with acceptance ∝ r.
    """

    spec_type = "ring"
    dim = 2

    def __init__(self, radius=2.0, width=0.3, center=(0.0, 0.0), *, device=None, dtype=None, validate=True):
        self.radius, self.width = _scalars("Ring", ("radius", "width"), (radius, width), device, dtype)
        try:
            if isinstance(center, (bool, str, bytes)):
                raise TypeError(type(center).__name__)
            self.center = _device.as_tensor(center, device=self.radius.device, dtype=self.radius.dtype)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise ValueError(f"Ring(center={center!r:.60}): center must be a 2-vector of numbers") from exc
        if self.center.shape != (2,):
            raise ValueError(f"Ring(center={fmt_value(self.center)}): center must be a 2-vector")
        if validate:
            check_scale("Ring", "radius", self.radius)
            check_scale("Ring", "width", self.width)
            check_magnitude("Ring", "center", self.center)
            if float(self.width) < 1e-10 * (float(self.radius) + float(self.center.abs().max())):
                raise ValueError(f"Ring(width={float(self.width)!r}): width must be >= 1e-10·(radius + |center|) "
                                 "(float64 cannot resolve a thinner ring this far from 0)")
        r0, w = float(self.radius), float(self.width)
        z = 2 * math.pi * (w * w * math.exp(-r0 * r0 / (2 * w * w))
                           + r0 * w * math.sqrt(math.pi / 2) * (1 + math.erf(r0 / (w * math.sqrt(2)))))
        self._log_z = math.log(z)
        self._set_device(self.radius)

    def log_prob(self, x):
        x = self._as_points(x)
        r = torch.linalg.vector_norm(x - self.center, dim=-1)
        return -0.5 * ((r - self.radius) / self.width) ** 2 - self._log_z

    def _sample(self, n):
        r0, w = float(self.radius), float(self.width)
        rmax = r0 + 9 * w
        out = []
        got = 0
        while got < n:
            m = max(2 * (n - got), 64)
            r = r0 + w * torch.randn(m, device=self.device, dtype=self.dtype)
            u = torch.rand(m, device=self.device, dtype=self.dtype)
            acc = r[(r > 0) & (u * rmax < r)]
            out.append(acc)
            got += acc.numel()
        r = torch.cat(out)[:n]
        th = 2 * math.pi * torch.rand(n, device=self.device, dtype=self.dtype)
        return self.center + torch.stack([r * torch.cos(th), r * torch.sin(th)], dim=-1)

    def bounds(self):
        h = float(self.radius) + 9 * float(self.width)
        c = self.center.detach()
        return torch.stack([c - h, c + h], dim=-1)

    def min_scale(self):
        return float(self.width)

    def to_spec(self):
        return {"type": "ring", "radius": tolist(self.radius), "width": tolist(self.width),
                "center": tolist(self.center)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec.get("radius", 2.0), spec.get("width", 0.3), spec.get("center", (0.0, 0.0)), **kw)

    spec_keys = ("radius", "width", "center")


class TwoMoons(Distribution):
    """Two interleaved half circles (the classic 'two moons') blurred by isotropic noise.

    Outer moon (cos θ, sin θ), inner moon (1 − cos θ, 0.5 − sin θ), θ ~ U[0, π], each with
    probability ½, plus N(0, noise² I). The density is the θ-integral of a Gaussian, evaluated
    by Gauss–Legendre quadrature in θ with ``nodes`` points per moon (error below 1e-12 for
    the default nodes and noise >= 0.05). Sampling is exact.
    """

    spec_type = "two_moons"
    dim = 2
    #: most Gauss–Legendre nodes per moon (the default 128 is exact to 1e-12 for noise >= 0.05)
    MAX_NODES = 4096

    def __init__(self, noise=0.1, nodes: int = 128, *, device=None, dtype=None, validate=True):
        (self.noise,) = _scalars("TwoMoons", ("noise",), (noise,), device, dtype)
        if validate:
            check_positive("TwoMoons", "noise", self.noise)
            check_magnitude("TwoMoons", "noise", self.noise)
            if float(self.noise) < 0.05:
                raise ValueError(f"TwoMoons(noise={float(self.noise)!r}): noise must be >= 0.05")
        if isinstance(nodes, bool) or not isinstance(nodes, int) or not 8 <= nodes <= self.MAX_NODES:
            raise ValueError(f"TwoMoons(nodes={nodes!r}): nodes must be an integer in [8, {self.MAX_NODES}] "
                             f"({self.MAX_NODES} is the largest value allowed)")
        t, wt = np.polynomial.legendre.leggauss(nodes)
        th = (t + 1) * math.pi / 2
        self._set_device(self.noise)
        th = torch.as_tensor(th, device=self.device, dtype=self.dtype)
        outer = torch.stack([torch.cos(th), torch.sin(th)], -1)
        inner = torch.stack([1 - torch.cos(th), 0.5 - torch.sin(th)], -1)
        self._centers = torch.cat([outer, inner])  # (2 nodes, 2)
        w = torch.as_tensor(wt / 2, device=self.device, dtype=self.dtype)  # sums to 1 per moon
        self._log_w = torch.log(torch.cat([w, w]) / 2)
        self._mid = torch.tensor([0.5, 0.25], device=self.device, dtype=self.dtype)

    def log_prob(self, x):
        x = self._as_points(x)
        # −|x − c_k|²/2s² = −|y|²/2s² + y·c_k/s² − |c_k|²/2s², with y and c_k relative to the
        # moons' middle (small numbers near the moons): one fused matmul over the nodes instead of
        # an (N, 2·nodes, 2) temporary (a 513² grid took 1 GB and 15 s; now about 1 s)
        y = x - self._mid
        c = self._centers - self._mid
        s2 = self.noise**2
        shape = y.shape[:-1]
        y2 = y.reshape(-1, 2)
        bias = self._log_w - 0.5 * (c * c).sum(-1) / s2
        lg = torch.addmm(bias, y2, c.T / s2)
        out = torch.logsumexp(lg, dim=-1) - 0.5 * (y2 * y2).sum(-1) / s2 - torch.log(s2) - LOG_2PI
        return out.reshape(shape)

    def _sample(self, n):
        th = math.pi * torch.rand(n, device=self.device, dtype=self.dtype)
        which = torch.rand(n, device=self.device, dtype=self.dtype) < 0.5
        outer = torch.stack([torch.cos(th), torch.sin(th)], -1)
        inner = torch.stack([1 - torch.cos(th), 0.5 - torch.sin(th)], -1)
        base = torch.where(which[:, None], outer, inner)
        return base + self.noise * torch.randn((n, 2), device=self.device, dtype=self.dtype)

    def bounds(self):
        k = 8 * float(self.noise)
        return torch.tensor([[-1 - k, 2 + k], [-0.5 - k, 1 + k]], device=self.device, dtype=self.dtype)

    def min_scale(self):
        return float(self.noise)

    def to_spec(self):
        return {"type": "two_moons", "noise": tolist(self.noise)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        return cls(spec.get("noise", 0.1), **kw)

    spec_keys = ("noise",)
