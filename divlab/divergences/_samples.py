"""Shared plumbing of the sample-based divergences (transport, kernel): turning a distribution
into a weighted point cloud, seeding, options checking, safe square roots."""

from __future__ import annotations

import torch

from ..distributions import Distribution, Empirical, GridDensity

__all__ = ["to_cloud", "safe_sqrt", "sqdist", "check_options", "seeds", "derive_seed", "is_sampled", "common_device",
           "clouds"]


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """√x with x clamped at 0 and a zero (not NaN/inf) gradient at 0 (the double-where trick)."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|x_i − y_j|² for clouds (n, d), (m, d), by explicit differences (exact 0 on the diagonal,
    never negative, unlike the ‖x‖² + ‖y‖² − 2xᵀy expansion), one coordinate at a time (no
    (n, m, d) temporary: ~3× faster in 2D)."""
    if x.shape[-1] == 0:
        return x.new_zeros(x.shape[0], y.shape[0])
    d = x[:, None, 0] - y[None, :, 0]
    C = d * d
    for k in range(1, x.shape[-1]):
        d = x[:, None, k] - y[None, :, k]
        C = C + d * d
    return C


def is_sampled(d) -> bool:
    """True when the cloud of ``d`` is a random draw (not given points, not a fixed grid)."""
    return not isinstance(d, (Empirical, GridDensity))


def derive_seed(seed: int, *path: int) -> int:
    """An independent seed for the stream named by ``path`` under ``seed``: numpy's SeedSequence
    (hashes (seed, path) into well-mixed state), 63 bits. Streams with different paths, or under
    different seeds, do not overlap the way ``seed + i`` streams do (seed s's second stream would
    be seed s + 1's first: the draws of q in one call equal the draws of p in the next)."""
    import numpy as np

    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(k) for k in path))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def seeds(seed: int | None, k: int, side: int | None = None):
    """k derived seeds, one per batch (None stays None), pairwise independent streams; ``side``
    (0 = p, 1 = q) names a further independent stream per batch."""
    if seed is None:
        return [None] * k
    path = () if side is None else (side,)
    return [derive_seed(seed, 1 + i, *path) for i in range(k)]


def to_cloud(d: Distribution, n: int, seed: int | None, owner: str, grid_max: int = 4096):
    """``(points (m, dim), weights (m,))`` for a divergence between clouds.

    - :class:`Empirical`: its points and weights (graph kept: differentiable in the points).
    - :class:`GridDensity`: the grid nodes with positive density, weighted by density times the
      trapezoid cell weight, when there are at most ``grid_max`` of them; otherwise ``n`` draws.
    - any other distribution: ``n`` draws with ``seed`` (``rsample`` when available, so the
      value is differentiable in the distribution's parameters), uniform weights.
    """
    if isinstance(d, Empirical):
        return d.cloud()
    if isinstance(d, GridDensity):
        pts, w = _grid_cloud(d)
        keep = w > 0
        if int(keep.sum()) <= grid_max:
            return pts[keep], w[keep] / w[keep].sum()
    if not isinstance(d, Distribution):
        raise ValueError(f"{owner}: expected a divlab distribution or a point cloud, got {type(d).__name__}")
    if d.batch_shape:
        raise ValueError(f"{owner}: {type(d).__name__} with batch_shape {tuple(d.batch_shape)}: sample-based "
                         "divergences take one distribution at a time")
    x = d.rsample(n, seed=seed) if d.has_rsample else d.sample(n, seed=seed)
    x = x.reshape(n, d.dim)
    return x, torch.full((n,), 1.0 / n, device=x.device, dtype=x.dtype)


def _grid_cloud(d: GridDensity):
    def tw(ax):
        dx = ax[1:] - ax[:-1]
        w = torch.zeros_like(ax)
        w[:-1] += dx / 2
        w[1:] += dx / 2
        return w

    if d.dim == 1:
        xs = d.axes[0]
        return xs[:, None], d.values * tw(xs)
    xs, ys = d.axes
    X, Y = torch.meshgrid(xs, ys, indexing="xy")  # (len(ys), len(xs)) like values
    pts = torch.stack([X.reshape(-1), Y.reshape(-1)], dim=-1)
    w = (tw(ys)[:, None] * tw(xs)[None, :] * d.values).reshape(-1)
    return pts, w


def check_options(owner: str, options: dict, allowed: dict) -> dict:
    """Fill defaults from ``allowed`` ({name: default}); unknown names raise ``ValueError``."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{owner}: unknown option {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    out = dict(allowed)
    out.update(options)
    return out


def common_device(x: torch.Tensor, y: torch.Tensor, owner: str):
    if x.device != y.device:
        raise ValueError(f"{owner}: p is on {x.device} and q on {y.device}; put them on one device")
    if x.dtype != y.dtype:
        dt = torch.promote_types(x.dtype, y.dtype)
        return x.to(dt), y.to(dt)
    return x, y


def clouds(p, q, n: int | None, seed: int | None, owner: str, default_n: int, batch: int | None = None):
    """Both sides as weighted point clouds on one device: (x, a, y, b, n).

    ``n`` draws per side for distributions (``default_n`` when None); point clouds pass through.
    The draws of p and of q come from independent streams derived from ``seed``
    (:func:`derive_seed`: (seed, 0) for p, (seed, 1) for q; with ``batch`` = i, (seed, 1 + i, 0)
    and (seed, 1 + i, 1)), so no two sides, batches or seeds share draws. The two sides must
    have the same dimension.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"{owner}(n={n!r}): n must be a positive integer")
    n = n or default_n
    if seed is None:
        sp = sq = None
    else:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"{owner}(seed={seed!r}): seed must be a non-negative integer or None")
        path = () if batch is None else (1 + int(batch),)
        sp, sq = derive_seed(seed, *path, 0), derive_seed(seed, *path, 1)
    x, a = to_cloud(p, n, sp, owner)
    y, b = to_cloud(q, n, sq, owner)
    x, y = common_device(x, y, owner)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{owner}: p is {x.shape[1]}D and q is {y.shape[1]}D; they must have the same dimension")
    return x, a.to(x.dtype), y, b.to(y.dtype), n
