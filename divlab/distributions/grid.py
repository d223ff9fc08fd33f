"""Densities tabulated on a 1D or 2D grid: what a drawn distribution becomes."""

from __future__ import annotations

import torch

from .. import device as _device
from .base import Distribution, fmt_value, tolist

__all__ = ["GridDensity"]


def _trapz_weights(x: torch.Tensor) -> torch.Tensor:
    dx = x[1:] - x[:-1]
    w = torch.zeros_like(x)
    w[:-1] += dx / 2
    w[1:] += dx / 2
    return w


def _linear_inverse(a: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse CDF on [0, 1] of the density proportional to a + (b - a) t (a, b >= 0)."""
    d = b - a
    s = a + b
    # solve a t + d t^2 / 2 = u (a + b) / 2 for t in [0, 1]
    disc = (a * a + d * u * s).clamp_min(0)
    root = torch.sqrt(disc)
    # stable form t = u s / (a + sqrt(a^2 + d u s)); falls back to u when the cell is empty
    denom = a + root
    t = torch.where(denom > 0, u * s / torch.where(denom > 0, denom, torch.ones_like(denom)), u)
    return t.clamp(0, 1)


class GridDensity(Distribution):
    """A density tabulated on a grid, interpolated linearly (1D) or bilinearly (2D).

    1D: ``GridDensity(x, values)`` with ``x`` strictly increasing, ``values >= 0``.
    2D: ``GridDensity((xs, ys), values)`` with ``values`` of shape ``(len(ys), len(xs))``
    (row = y). Values are normalized so that the interpolant integrates to 1 exactly; outside
    the grid the density is 0. Sampling is exact for the interpolant (inverse CDF per cell).
    """

    spec_type = "grid"
    MAX_POINTS = 1_000_000

    def __init__(self, x, values, *, device=None, dtype=None, validate: bool = True):
        owner = "GridDensity"
        two_d = isinstance(x, (tuple, list)) and len(x) == 2 and not _is_number_list(x)
        like = values if isinstance(values, torch.Tensor) and values.is_floating_point() else None
        dev, dt = _device.resolve(device, dtype, like=like)

        def conv(name, v):
            try:
                if isinstance(v, (bool, str, bytes)):
                    raise TypeError(type(v).__name__)
                return _device.as_tensor(v, device=dev, dtype=dt)
            except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
                raise ValueError(f"{owner}({name}={v!r:.60}): {name} must be an array of numbers") from exc

        vals = conv("values", values)
        if two_d:
            axes = [conv("x", x[0]), conv("y", x[1])]
            self.dim = 2
        else:
            axes = [conv("x", x)]
            self.dim = 1
        for name, ax in zip("xy", axes):
            if ax.dim() != 1 or ax.numel() < 2:
                raise ValueError(f"{owner}({name}={fmt_value(ax)}): {name} must be a 1D array with at least 2 points")
            check = torch.isfinite(ax).all() and bool((ax.abs() <= 1e9).all()) and (ax[1:] > ax[:-1]).all()
            if validate and not check:
                raise ValueError(f"{owner}({name}={fmt_value(ax)}): {name} must be finite, strictly increasing "
                                 "and within ±1e9 (the largest value allowed)")
        expected = tuple(a.numel() for a in reversed(axes))
        if tuple(vals.shape) != expected:
            raise ValueError(
                f"{owner}(values with shape {tuple(vals.shape)}): values must have shape {expected}"
                + (" (rows = y, columns = x)" if self.dim == 2 else "")
            )
        if vals.numel() > self.MAX_POINTS:
            raise ValueError(f"{owner}(values with {vals.numel()} points): at most {self.MAX_POINTS} grid points")
        if validate:
            if not torch.isfinite(vals).all():
                raise ValueError(f"{owner}(values={fmt_value(vals)}): values must be finite (no NaN or inf)")
            if (vals < 0).any():
                raise ValueError(f"{owner}(values={fmt_value(vals)}): values must be >= 0")
        self.axes = axes
        if self.dim == 1:
            mass = (_trapz_weights(axes[0]) * vals).sum()
        else:
            mass = (_trapz_weights(axes[1])[:, None] * _trapz_weights(axes[0])[None, :] * vals).sum()
        if validate and not mass > 0:
            raise ValueError(f"{owner}(values={fmt_value(vals)}): the grid has zero mass (all values are 0)")
        if validate and not torch.isfinite(mass):
            raise ValueError(f"{owner}(values={fmt_value(vals)}): values are too large (their integral overflows; "
                             "scale them down: they are normalized anyway)")
        self.values = vals / mass
        self.batch_shape = torch.Size()
        self._set_device(self.values)

    # ----------------------------------------------------------------- density
    def _interp1(self, x: torch.Tensor) -> torch.Tensor:
        xs, v = self.axes[0], self.values
        i = torch.searchsorted(xs, x.detach().contiguous(), right=True).clamp(1, xs.numel() - 1) - 1
        x0, x1 = xs[i], xs[i + 1]
        t = (x - x0) / (x1 - x0)
        val = v[i] * (1 - t) + v[i + 1] * t
        inside = (x >= xs[0]) & (x <= xs[-1])
        return torch.where(inside, val, torch.zeros_like(val))

    def _interp2(self, pts: torch.Tensor) -> torch.Tensor:
        xs, ys, v = self.axes[0], self.axes[1], self.values
        x, y = pts[..., 0], pts[..., 1]
        i = torch.searchsorted(xs, x.detach().contiguous(), right=True).clamp(1, xs.numel() - 1) - 1
        j = torch.searchsorted(ys, y.detach().contiguous(), right=True).clamp(1, ys.numel() - 1) - 1
        s = (x - xs[i]) / (xs[i + 1] - xs[i])
        t = (y - ys[j]) / (ys[j + 1] - ys[j])
        val = ((1 - s) * (1 - t) * v[j, i] + s * (1 - t) * v[j, i + 1]
               + (1 - s) * t * v[j + 1, i] + s * t * v[j + 1, i + 1])
        inside = (x >= xs[0]) & (x <= xs[-1]) & (y >= ys[0]) & (y <= ys[-1])
        return torch.where(inside, val, torch.zeros_like(val))

    def prob(self, x):
        x = self._as_points(x)
        return self._interp1(x) if self.dim == 1 else self._interp2(x)

    def log_prob(self, x):
        d = self.prob(x)
        pos = d > 0
        return torch.where(pos, torch.log(torch.where(pos, d, torch.ones_like(d))), torch.full_like(d, float("-inf")))

    # ----------------------------------------------------------------- sampling
    def _sample(self, n):
        if self.dim == 1:
            xs, v = self.axes[0], self.values
            cell = (v[:-1] + v[1:]) / 2 * (xs[1:] - xs[:-1])
            k = torch.multinomial(cell, n, replacement=True)
            u = torch.rand(n, device=self.device, dtype=self.dtype)
            t = _linear_inverse(v[k], v[k + 1], u)
            return xs[k] + t * (xs[k + 1] - xs[k])
        xs, ys, v = self.axes[0], self.axes[1], self.values
        f00, f10, f01, f11 = v[:-1, :-1], v[:-1, 1:], v[1:, :-1], v[1:, 1:]
        area = (xs[1:] - xs[:-1])[None, :] * (ys[1:] - ys[:-1])[:, None]
        cell = (f00 + f10 + f01 + f11) / 4 * area
        k = torch.multinomial(cell.reshape(-1), n, replacement=True)
        j, i = k // (xs.numel() - 1), k % (xs.numel() - 1)
        a00, a10, a01, a11 = f00[j, i], f10[j, i], f01[j, i], f11[j, i]
        u1 = torch.rand(n, device=self.device, dtype=self.dtype)
        u2 = torch.rand(n, device=self.device, dtype=self.dtype)
        s = _linear_inverse((a00 + a01) / 2, (a10 + a11) / 2, u1)  # x-marginal is linear in s
        g0 = (1 - s) * a00 + s * a10
        g1 = (1 - s) * a01 + s * a11
        t = _linear_inverse(g0, g1, u2)  # y given x is linear in t
        x = xs[i] + s * (xs[i + 1] - xs[i])
        y = ys[j] + t * (ys[j + 1] - ys[j])
        return torch.stack([x, y], dim=-1)

    # ----------------------------------------------------------------- geometry
    def bounds(self):
        return torch.stack([torch.stack([a[0], a[-1]]) for a in self.axes]).detach()

    def min_scale(self):
        return float(min((a[1:] - a[:-1]).min() for a in self.axes))

    @property
    def mean(self):
        if self.dim == 1:
            w = _trapz_weights(self.axes[0]) * self.values
            return (w * self.axes[0]).sum()
        w = _trapz_weights(self.axes[1])[:, None] * _trapz_weights(self.axes[0])[None, :] * self.values
        return torch.stack([(w * self.axes[0][None, :]).sum(), (w * self.axes[1][:, None]).sum()])

    def to_spec(self):
        if self.dim == 1:
            return {"type": "grid", "x": tolist(self.axes[0]), "values": tolist(self.values)}
        return {"type": "grid", "x": tolist(self.axes[0]), "y": tolist(self.axes[1]), "values": tolist(self.values)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        if "y" in spec:
            return cls((spec["x"], spec["y"]), spec["values"], **kw)
        return cls(spec["x"], spec["values"], **kw)

    spec_keys = ("x", "values", "y")

    def __repr__(self):
        shape = tuple(a.numel() for a in self.axes)
        return f"GridDensity({self.dim}D, {shape} points, box={self.bounds().tolist()})"


def _is_number_list(x) -> bool:
    return all(isinstance(v, (int, float)) for v in x)
