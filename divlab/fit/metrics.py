"""Mode metrics: does the model cover the target's modes, and how much of each sits in the other?

For a target p and a model q (1D or 2D), by quadrature on one grid covering both:

- ``modes``: the target's modes, local maxima of p on the grid whose prominence (height above
  the highest saddle that connects them to a higher peak; the highest peak's prominence is its
  height) is at least ``prominence`` × max p (default 1 %), so that grid noise and flat
  shoulders do not count;
- ``modes_covered``: how many of them lie inside q's 95 % highest-density region (HDR), i.e.
  q(mode) ≥ t_q where ∫_{q ≥ t_q} q = 0.95;
- ``coverage`` = ∫_{q ≥ t_q} p: the mass of p inside q's 95 % HDR (mass-covering fits → near 1;
  a fit sitting on one of two equal modes → about ½);
- ``precision`` = ∫_{p ≥ t_p} q: the mass of q inside p's 95 % HDR (mode-seeking fits → near
  1; a wide covering fit that spills into the valley between modes → lower).

For p = q both are exactly the level (0.95). For Normal p and q the HDR is an interval and the
numbers are differences of Φ (the tests check that, and the 2D ellipse case against scipy's
noncentral χ²). Grid accuracy: the HDR boundary is resolved to a grid cell, so the error is
O(h · density at the boundary), about 1e-4 in 1D (4097 points) and 1e-3 in 2D (257²).

Particles (an :class:`~divlab.Empirical` model, e.g. a flow's frame) have no density: they are
smoothed by a Gaussian kernel density estimate with Scott's bandwidth n^(−1/(d+4)) × the
per-axis standard deviation (the ``kde_bandwidth`` argument overrides the factor), so their HDR
is the KDE's. An Empirical target is smoothed the same way.

:func:`mode_metrics_along` applies this to every step of a :class:`FitResult` (its
``model(step)``) or every frame of a :class:`FlowResult`, on one grid and one target evaluation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..distributions import Distribution, Empirical
from ..estimators.quadrature import make_grid

__all__ = ["mode_metrics", "mode_metrics_along", "find_modes", "hdr_threshold", "LEVEL"]

LEVEL = 0.95
GRID_N = {1: 4097, 2: 257}


# --------------------------------------------------------------------------- building blocks
def hdr_threshold(dens: np.ndarray, w: np.ndarray, level: float = LEVEL) -> float:
    """t such that Σ_{dens ≥ t} dens·w = level·Σ dens·w (the level-HDR's density threshold on a
    grid with quadrature weights w), interpolated between the two grid values that bracket it."""
    mass = dens * w
    order = np.argsort(-dens, kind="stable")
    cum = np.cumsum(mass[order])
    total = cum[-1]
    if not total > 0:
        return math.inf
    k = int(np.searchsorted(cum, level * total))
    k = min(k, dens.size - 1)
    if k == 0:
        return float(dens[order[0]])
    # between the (k−1)-th and k-th largest values, linear in the accumulated mass
    lo, hi = cum[k - 1], cum[k]
    frac = (level * total - lo) / (hi - lo) if hi > lo else 1.0
    d_prev, d_k = dens[order[k - 1]], dens[order[k]]
    return float(d_prev + frac * (d_k - d_prev))


def find_modes(dens: np.ndarray, shape: tuple, prominence: float = 0.01, max_candidates: int = 64):
    """Flat indices of the peaks of ``dens`` (values on a grid of ``shape``) with prominence ≥
    ``prominence`` × max, highest first, and their prominences.

    Candidates are the grid's local maxima (over the 3 or 3×3 neighbourhood). A candidate's
    prominence is its height minus the key saddle: the highest level v at which the connected
    component of {dens ≥ v} holding it (8-connected in 2D) also holds a higher candidate, found
    by bisection on v (to 1e-6 of the maximum; ``scipy.ndimage.label``). The highest peak's
    prominence is its height.
    """
    from scipy import ndimage

    d = np.asarray(dens, dtype=float).reshape(shape)
    top = float(d.max()) if d.size else 0.0
    if not top > 0:
        return [], []
    size = 3 if d.ndim == 1 else (3, 3)
    peaks = (d == ndimage.maximum_filter(d, size=size, mode="nearest")) & (d > prominence * top)
    cand = np.flatnonzero(peaks.reshape(-1))
    flat = d.reshape(-1)
    cand = cand[np.argsort(-flat[cand], kind="stable")][:max_candidates]
    # a plateau gives several equal neighbours: keep one per connected plateau
    structure = np.ones((3,) * d.ndim)
    keep_idx, proms = [], []
    for k, c in enumerate(cand):
        h = flat[c]
        higher = [int(j) for j in cand[:k] if flat[j] > h or (flat[j] == h and j in keep_idx)]
        if not higher:
            keep_idx.append(int(c))
            proms.append(h)
            continue
        lo, hi = 0.0, h  # connected at lo (everything is), find the highest connecting level
        for _ in range(40):
            if hi - lo <= 1e-6 * top:
                break
            mid = 0.5 * (lo + hi)
            lab, _ = ndimage.label(d >= mid, structure=structure)
            lf = lab.reshape(-1)
            if lf[c] in {lf[j] for j in higher}:
                lo = mid
            else:
                hi = mid
        pr = h - lo
        if pr >= prominence * top and pr > 0:
            keep_idx.append(int(c))
            proms.append(pr)
    return keep_idx, proms


def _kde_log_density(points: torch.Tensor, weights: torch.Tensor, at: torch.Tensor, factor: float | None):
    """Gaussian KDE of the weighted cloud (n, d) at points (N, d), log-density (N,). Bandwidth
    per axis: factor × std (factor default n_eff^(−1/(d+4)), Scott's rule)."""
    n, d = points.shape
    w = weights / weights.sum()
    mean = w @ points
    std = torch.sqrt((w @ (points - mean) ** 2).clamp_min(0))
    n_eff = 1.0 / float((w * w).sum())
    f = n_eff ** (-1.0 / (d + 4)) if factor is None else float(factor)
    fallback = float(std.max()) if float(std.max()) > 0 else 1.0
    h = torch.where(std > 0, std, torch.full_like(std, fallback)) * f
    out = []
    ps, lw = points / h, torch.log(w)[None, :]
    const = -torch.log(h).sum() - 0.5 * d * math.log(2 * math.pi)
    for a in range(0, at.shape[0], 16384):
        d2 = torch.cdist(at[a:a + 16384] / h, ps).square()
        out.append(torch.logsumexp(lw - 0.5 * d2, dim=1) + const)
    return torch.cat(out), h


class _Side:
    """A distribution's density on points, exact or by KDE for point clouds."""

    def __init__(self, d: Distribution, kde_bandwidth):
        self.d, self.kde = d, not getattr(d, "has_density", True)
        self.factor = kde_bandwidth
        if self.kde:
            if not isinstance(d, Empirical):
                raise ValueError(f"mode_metrics: {type(d).__name__} has no density and is not a point cloud")
            self.pts, self.w = d.cloud()
            self.pts, self.w = self.pts.detach(), self.w.detach()

    def bounds(self, dev, dt):
        if not self.kde:
            return self.d.bounds().detach().to(device=dev, dtype=dt).reshape(self.d.dim, 2)
        _, h = _kde_log_density(self.pts, self.w, self.pts[:1], self.factor)
        lo, hi = self.pts.min(0).values - 5 * h, self.pts.max(0).values + 5 * h
        return torch.stack([lo, hi], -1).to(device=dev, dtype=dt)

    def density(self, pts2d: torch.Tensor) -> np.ndarray:
        """Density at points (N, d) as numpy."""
        with torch.no_grad():
            if self.kde:
                lp, _ = _kde_log_density(self.pts.to(device=pts2d.device, dtype=pts2d.dtype),
                                         self.w.to(device=pts2d.device, dtype=pts2d.dtype), pts2d, self.factor)
            else:
                x = pts2d[:, 0] if self.d.dim == 1 else pts2d
                lp = self.d.log_prob(x.to(device=self.d.device, dtype=self.d.dtype)).reshape(-1)
        return lp.exp().cpu().numpy().astype(float)


def _check(owner, target, model):
    for name, d in (("target", target), ("model", model)):
        if not isinstance(d, Distribution):
            raise ValueError(f"{owner}({name}={d!r}): {name} must be a divlab distribution")
        if d.batch_shape:
            raise ValueError(f"{owner}({name}={type(d).__name__} with batch_shape {tuple(d.batch_shape)}): "
                             f"give one {name} distribution")
    if target.dim != model.dim:
        raise ValueError(f"{owner}: the target is {target.dim}D and the model {model.dim}D; they must match")


def _check_args(owner, level, prominence, grid_n):
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"{owner}(level={level!r}): level must be in (0, 1)")
    if isinstance(prominence, bool) or not isinstance(prominence, (int, float)) or not 0 <= prominence < 1:
        raise ValueError(f"{owner}(prominence={prominence!r}): prominence must be in [0, 1)")
    if grid_n is not None and (isinstance(grid_n, bool) or not isinstance(grid_n, int) or not 17 <= grid_n <= 20001):
        raise ValueError(f"{owner}(grid_n={grid_n!r}): grid_n must be an integer in [17, 20001]")


def _grid(boxes, dim, n, dev, dt):
    b = torch.stack(boxes)
    lo, hi = b[..., 0].min(0).values, b[..., 1].max(0).values
    return make_grid(box=torch.stack([lo, hi], -1).tolist(), n=n, device=dev, dtype=dt)


class _Target:
    """The target's density on the metric grid, its HDR threshold and its modes."""

    def __init__(self, target, grid, level, prominence, kde_bandwidth):
        side = _Side(target, kde_bandwidth)
        pts = grid.points if grid.dim == 2 else grid.points[:, None]
        self.w = grid.weights.cpu().numpy().astype(float)
        self.p = side.density(pts)
        self.p_mass = float((self.p * self.w).sum())
        self.t_p = hdr_threshold(self.p, self.w, level)
        idx, prom = find_modes(self.p, grid.shape, prominence)
        mpts = pts
        self.modes = mpts[idx].cpu().numpy()  # (M, d)
        self.prominences = prom


def _metrics(tg: _Target, q: np.ndarray, q_at_modes: np.ndarray, level: float) -> dict:
    w = tg.w
    qm = float((q * w).sum())
    if not qm > 0:
        return {"modes": len(tg.modes), "modes_covered": 0, "coverage": 0.0, "precision": 0.0,
                "reason": "the model has no mass on the grid"}
    t_q = hdr_threshold(q, w, level)
    coverage = float((tg.p * w)[q >= t_q].sum() / tg.p_mass)
    precision = float((q * w)[tg.p >= tg.t_p].sum() / qm)
    covered = q_at_modes >= t_q
    return {"modes": len(tg.modes), "modes_covered": int(covered.sum()), "coverage": coverage, "precision": precision,
            "covered": covered.tolist(), "threshold_q": t_q}


# --------------------------------------------------------------------------- public API
def mode_metrics(target: Distribution, model: Distribution, *, level: float = LEVEL, prominence: float = 0.01,
                 grid_n: int | None = None, kde_bandwidth: float | None = None) -> dict:
    """Mode coverage of ``model`` (q) against ``target`` (p), 1D or 2D (see the module docstring).

    Returns ``{"modes": int, "modes_covered": int, "coverage": float, "precision": float,
    "mode_locations": [[x] or [x, y], ...], "covered": [bool per mode], "threshold_p",
    "threshold_q"}``. ``level``: the HDR level (0.95); ``prominence``: minimal mode prominence
    as a fraction of the target's peak density; ``grid_n``: grid points per axis (default 4097
    in 1D, 257 in 2D); ``kde_bandwidth``: the KDE factor for point clouds (default Scott's).
    """
    owner = "mode_metrics"
    _check(owner, target, model)
    _check_args(owner, level, prominence, grid_n)
    dev, dt = target.device, target.dtype
    qs = _Side(model, kde_bandwidth)
    ps = _Side(target, kde_bandwidth)
    grid = _grid([ps.bounds(dev, dt), qs.bounds(dev, dt)], target.dim, grid_n or GRID_N[target.dim], dev, dt)
    tg = _Target(target, grid, level, prominence, kde_bandwidth)
    pts = grid.points if grid.dim == 2 else grid.points[:, None]
    q = qs.density(pts)
    q_modes = qs.density(torch.as_tensor(tg.modes, device=dev, dtype=dt).reshape(-1, target.dim)) \
        if len(tg.modes) else np.zeros(0)
    out = _metrics(tg, q, q_modes, level)
    out["mode_locations"] = tg.modes.tolist()
    out["threshold_p"] = tg.t_p
    return out


def mode_metrics_along(target: Distribution, result, *, every: int = 1, level: float = LEVEL,
                       prominence: float = 0.01, grid_n: int | None = None,
                       kde_bandwidth: float | None = None) -> dict:
    """:func:`mode_metrics` at every ``every``-th step of a fit or frame of a flow.

    ``result``: a :class:`~divlab.FitResult` (models ``result.model(step)`` for the steps of its
    trajectory) or a :class:`~divlab.fit.flow.FlowResult` (each frame's particles, smoothed by
    a Gaussian KDE, see the module docstring); the last step is always included. One grid (the
    target's box and every model's) and one evaluation of the target serve all steps. The default
    2D grid for a flow is 129² (each frame's KDE costs grid points × particles), 257² for a fit.
    Returns ``{"steps": [...], "modes": int, "modes_covered": array, "coverage": array,
    "precision": array, "mode_locations": ...}`` (arrays of the length of ``steps``).
    """
    from .core import FitResult
    from .flow import FlowResult

    owner = "mode_metrics_along"
    _check_args(owner, level, prominence, grid_n)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"{owner}(every={every!r}): every must be a positive integer")
    if isinstance(result, FlowResult):
        idx = list(range(0, len(result.steps), every))
        steps = [result.steps[i] for i in idx]
        models = [result.particles(i) for i in idx]
        if idx[-1] != len(result.steps) - 1:
            idx.append(len(result.steps) - 1)
            steps.append(result.steps[-1])
            models.append(result.particles(-1))
    elif isinstance(result, FitResult):
        T = len(result.losses)
        steps = list(range(0, T, every))
        if steps[-1] != T - 1:
            steps.append(T - 1)
        models = [result.model(s) for s in steps]
    else:
        raise ValueError(f"{owner}(result={type(result).__name__}): result must be a FitResult or a FlowResult")
    if not isinstance(target, Distribution):
        raise ValueError(f"{owner}(target={target!r}): target must be a divlab distribution")
    dev, dt = target.device, target.dtype
    sides = []
    for m in models:
        _check(owner, target, m)
        sides.append(_Side(m, kde_bandwidth))
    ps = _Side(target, kde_bandwidth)
    if grid_n is None:  # a flow's frames are KDEs (smooth, biased by the bandwidth): a coarser 2D grid will do
        grid_n = 129 if (isinstance(result, FlowResult) and target.dim == 2) else GRID_N[target.dim]
    grid = _grid([ps.bounds(dev, dt)] + [s.bounds(dev, dt) for s in sides], target.dim, grid_n, dev, dt)
    tg = _Target(target, grid, level, prominence, kde_bandwidth)
    pts = grid.points if grid.dim == 2 else grid.points[:, None]
    mode_pts = torch.as_tensor(tg.modes, device=dev, dtype=dt).reshape(-1, target.dim)
    rows = []
    for s in sides:
        q = s.density(pts.to(dt))
        qm = s.density(mode_pts) if len(tg.modes) else np.zeros(0)
        rows.append(_metrics(tg, q, qm, level))
    return {"steps": steps, "modes": len(tg.modes), "mode_locations": tg.modes.tolist(),
            "modes_covered": np.array([r["modes_covered"] for r in rows]),
            "coverage": np.array([r["coverage"] for r in rows]),
            "precision": np.array([r["precision"] for r in rows])}
