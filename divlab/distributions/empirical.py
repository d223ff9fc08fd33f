"""Empirical distributions: weighted point clouds (samples, particles, data).

An :class:`Empirical` has no density, so density divergences (KL, JS, ...) do not apply to
it; the sample-based divergences (Wasserstein, Sinkhorn, MMD, energy) do. The point
locations keep their autograd graph, so a divergence between clouds is differentiable with
respect to the points (particle flows).
"""

from __future__ import annotations

import torch

from .. import device as _device
from .base import Distribution, check_finite, check_magnitude, fmt_value, tolist

__all__ = ["Empirical"]


class Empirical(Distribution):
    """Σ_i w_i δ_{x_i}: a weighted point cloud in 1D (points of shape ``(n,)``) or in d dimensions
    (``(n, d)``, any d ≥ 2; ``(n, 1)`` is 1D). Sample divergences (MMD, energy, Sinkhorn, sliced
    Wasserstein) and the sample estimators of KL / Rényi (``knn``, ``nn_ratio``, ``kde``, ``dv``,
    ``nwj``) take any d; pictures and grids are 1D/2D only.

    ``weights`` (default uniform) must be finite, >= 0 and not all 0; they are normalized.
    ``sample`` resamples the points with replacement (multinomial on the weights). There is no
    density: ``log_prob`` raises ``TypeError``. ``bounds`` is the bounding box of the points
    with positive weight, widened by 10 % of its width (or by 1 for a single point).
    """

    spec_type = "empirical"
    has_density = False
    has_rsample = False

    def __init__(self, points, weights=None, *, device=None, dtype=None, validate: bool = True):
        owner = "Empirical"
        try:
            if isinstance(points, (bool, str, bytes)):
                raise TypeError(type(points).__name__)
            x = _device.as_tensor(points, device=device, dtype=dtype)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise ValueError(f"{owner}(points={points!r:.60}): points must be an array of numbers") from exc
        if x.dim() == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() not in (1, 2) or (x.dim() == 2 and x.shape[1] < 1) or x.shape[0] < 1:
            raise ValueError(f"{owner}(points with shape {tuple(x.shape)}): points must have shape (n,) "
                             "in 1D or (n, d) in d dimensions, with n >= 1")
        self.dim = 1 if x.dim() == 1 else int(x.shape[1])
        n = x.shape[0]
        if weights is None:
            w = torch.full((n,), 1.0 / n, device=x.device, dtype=x.dtype)
        else:
            try:
                if isinstance(weights, (bool, str, bytes)):
                    raise TypeError(type(weights).__name__)
                w = _device.as_tensor(weights, device=x.device, dtype=x.dtype)
            except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
                raise ValueError(f"{owner}(weights={weights!r:.60}): weights must be an array of numbers") from exc
            if tuple(w.shape) != (n,):
                raise ValueError(f"{owner}(weights with shape {tuple(w.shape)}): need one weight per point, "
                                 f"shape ({n},)")
        if validate:
            check_magnitude(owner, "points", x.detach())
            check_magnitude(owner, "weights", w.detach(), 1e300)
            if (w.detach() < 0).any():
                raise ValueError(f"{owner}(weights={fmt_value(w)}): weights must be >= 0")
            if not w.detach().sum() > 0:
                raise ValueError(f"{owner}(weights={fmt_value(w)}): weights must not sum to 0")
        self.points = x
        self.weights = w / w.sum()
        self.batch_shape = torch.Size()
        self._set_device(x)

    @property
    def n(self) -> int:
        return int(self.points.shape[0])

    def cloud(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(points as ``(n, dim)``, weights ``(n,)``) — the layout the sample divergences use."""
        return self.points.reshape(self.n, self.dim), self.weights

    def log_prob(self, x):
        raise TypeError("Empirical has no density (a point cloud): use a sample-based divergence "
                        "(wasserstein, sinkhorn, sliced_wasserstein, mmd, energy), or smooth it into a GridDensity")

    def prob(self, x):
        return self.log_prob(x)

    def score(self, x):
        raise TypeError("Empirical has no density, so no score: use a sample-based divergence")

    def _sample(self, n):
        idx = torch.multinomial(self.weights.detach(), n, replacement=True)
        return self.points.detach()[idx]

    @property
    def mean(self):
        if self.dim == 1:
            return (self.weights * self.points).sum()
        return (self.weights[:, None] * self.points).sum(0)

    def bounds(self):
        x, w = self.cloud()
        x = x.detach()[w.detach() > 0]
        lo, hi = x.min(0).values, x.max(0).values
        width = hi - lo
        pad = torch.where(width > 0, 0.1 * width, torch.ones_like(width))
        return torch.stack([lo - pad, hi + pad], dim=-1)

    def min_scale(self):
        """A kernel-density-like length: Silverman's n^(-1/5) times the smallest spread (1 if none)."""
        x, w = self.cloud()
        x, w = x.detach(), w.detach()
        m = (w[:, None] * x).sum(0)
        sd = ((w[:, None] * (x - m) ** 2).sum(0)).sqrt()
        sd = sd[sd > 0]
        if sd.numel() == 0:
            return 1.0
        return float(sd.min()) * self.n ** (-0.2)

    def to_spec(self):
        return {"type": "empirical", "points": tolist(self.points), "weights": tolist(self.weights)}

    @classmethod
    def from_spec_args(cls, spec, **kw):
        if "points" not in spec:
            raise ValueError("empirical spec: missing key 'points'")
        return cls(spec["points"], spec.get("weights"), **kw)

    spec_keys = ("points", "weights")

    def __repr__(self):
        return f"Empirical({self.dim}D, {self.n} points)"
