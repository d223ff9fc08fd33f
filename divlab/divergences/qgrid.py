"""Quadrature grids that cover the *integrand*, and the error terms a grid cannot see.

:func:`integrand_grid` builds the grid a density divergence is integrated on:

- 1D (Normal, Laplace, Student-t, Uniform and mixtures of them): a
  :class:`~divlab.estimators.quadrature.MappedGrid` with one feature per component (and, for
  the α / Rényi / Tsallis / χ² families with α outside [0, 1], one per Gaussian *product*
  p_i^α q_j^(1−α), whose centre and width differ from both), breakpoints at Laplace cusps and
  Uniform ends, and ends far enough out that the integrand's tail beyond them is negligible:
  ±40σ for Gaussian tails, ±750 b for Laplace, and for a power-law tail as far as
  x^(−ν) < 1e-16 (capped at 1e150 scales).
- 2D: the uniform tensor grid over the union of p's and q's boxes, widened to the boxes of the
  Gaussian products where the integrand's mass lives elsewhere (α > 1 or α < 0).

:func:`extra_error` adds what |I_h − I_2h| cannot see: the integrand's tail beyond the grid
(measured from its decay at the outermost nodes: a power law x^(−e) leaves g(X)·X/(e − 1), an
exponential leaves less; a tail that does not decay is reported as unbounded) and, for
integrands with a kink where p = q (TV, a user's f), a bound h·(g_i + g_(i+1)) per cell the
kink falls in (the trapezoid's error on a linear kink is h·g_i·g_(i+1)/(g_i + g_(i+1))).
"""

from __future__ import annotations

import math

import torch

from ..distributions import Laplace, Mixture, MultivariateNormal, Normal, StudentT, Uniform
from ..estimators.quadrature import make_grid, mapped_grid

__all__ = ["integrand_grid", "extra_error"]

GAUSS_REACH_LOG = 40.0  # exp(−800): below float64's smallest density
LAPLACE_REACH_LOG = 750.0
TAIL_REL = 1e-16
X_CAP = 1e150


def _comps(d):
    if d.batch_shape:
        return None
    if isinstance(d, Mixture):
        out = []
        for w, c in zip(d.weights.detach().reshape(-1).tolist(), d.components):
            if w > 0:
                sub = _comps(c)
                if sub is None:
                    return None
                out.extend((w * ww, cc) for ww, cc in sub)
        return out
    return [(1.0, d)]


def _f(t):
    return float(t.detach().reshape(-1)[0])


def _alpha_outside(spec, params):
    """The exponent a of ∫p^a q^(1−a) when the integrand's mass can sit outside p and q."""
    key = spec.key
    if key == "pearson":
        return 2.0
    if key == "neyman":
        return -1.0
    if key in ("alpha", "tsallis", "renyi"):
        a = float(params["alpha"])
        return a if (a > 1 or a < 0) else None
    return None


def _products_1d(cp, cq, a):
    """(centre, sd) of each Gaussian product p_i^a q_j^(1−a) with a positive precision."""
    out = []
    for _, ci in cp:
        for _, cj in cq:
            if isinstance(ci, Normal) and isinstance(cj, Normal):
                li, lj = 1 / _f(ci.scale) ** 2, 1 / _f(cj.scale) ** 2
                A = a * li + (1 - a) * lj
                if A > 0:
                    m = (a * li * _f(ci.loc) + (1 - a) * lj * _f(cj.loc)) / A
                    if math.isfinite(m):
                        out.append((m, 1 / math.sqrt(A)))
    return out


def _grid_1d(spec, p, q, params, n):
    cp, cq = _comps(p), _comps(q)
    if cp is None or cq is None:
        return None
    feats, cuts, lo, hi = [], [], math.inf, -math.inf
    nu_min = math.inf
    # a user's f is evaluated as q·f(p/q), not in log space: stop where p/q would overflow
    GAUSS_REACH, LAPLACE_REACH = (12.0, 60.0) if spec.key == "f_divergence" else (GAUSS_REACH_LOG, LAPLACE_REACH_LOG)
    for _, c in cp + cq:
        if isinstance(c, Normal):
            m, s = _f(c.loc), _f(c.scale)
            feats.append((m, s))
            lo, hi = min(lo, m - GAUSS_REACH * s), max(hi, m + GAUSS_REACH * s)
        elif isinstance(c, Laplace):
            m, s = _f(c.loc), _f(c.scale)
            feats.append((m, s))
            cuts.append(m)
            lo, hi = min(lo, m - LAPLACE_REACH * s), max(hi, m + LAPLACE_REACH * s)
        elif isinstance(c, StudentT):
            m, s, nu = _f(c.loc), _f(c.scale), _f(c.df)
            feats.append((m, s))
            nu_min = min(nu_min, nu)
        elif isinstance(c, Uniform) and c.dim == 1:
            a, b = _f(c.low), _f(c.high)
            feats.append((0.5 * (a + b), 0.25 * (b - a)))
            cuts += [a, b]
            lo, hi = min(lo, a), max(hi, b)
        else:
            return None
    a = _alpha_outside(spec, params)
    if a is not None:
        for m, s in _products_1d(cp, cq, a):
            feats.append((m, s))
            lo, hi = min(lo, m - GAUSS_REACH_LOG * s), max(hi, m + GAUSS_REACH_LOG * s)
    if math.isfinite(nu_min):
        # power-law tails: out to where x^(−ν) < 1e-16 (the integrand's own decay is checked
        # at the ends by extra_error)
        reach = min(X_CAP, TAIL_REL ** (-1.0 / max(nu_min, 1e-3)))
        for _, c in cp + cq:
            if isinstance(c, StudentT):
                m, s = _f(c.loc), _f(c.scale)
                lo, hi = min(lo, m - reach * s), max(hi, m + reach * s)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return None
    # an end is open when some component's support reaches past it (not a Uniform's end)
    bounded = [(_f(c.low), _f(c.high)) for _, c in cp + cq if isinstance(c, Uniform)]
    ends = (not any(a == lo for a, _ in bounded) or any(not isinstance(c, Uniform) for _, c in cp + cq),
            not any(b == hi for _, b in bounded) or any(not isinstance(c, Uniform) for _, c in cp + cq))
    kappa = 16.0
    g = mapped_grid(feats, cuts, lo, hi, kappa=kappa, dtype=p.dtype, device=p.device)
    if spec.key in KINK_AT_ONE:  # the integrand has a kink where p = q: make those points nodes
        extra = _crossings(p, q, g.points)
        if extra:
            cuts = cuts + extra
            g = mapped_grid(feats, cuts, lo, hi, kappa=kappa, dtype=p.dtype, device=p.device)
    while n is not None and g.n < n and kappa < 512:
        kappa *= 2
        g = mapped_grid(feats, cuts, lo, hi, kappa=kappa, dtype=p.dtype, device=p.device)
    g.open_ends = ends
    return g


def _crossings(p, q, x, max_n=64):
    """Points where log p = log q (sign changes of log p − log q between nodes), to 1 ulp."""
    with torch.no_grad():
        d = p.log_prob(x) - q.log_prob(x)
        ok = torch.isfinite(d)
        s = torch.sign(torch.where(ok, d, torch.zeros_like(d)))
        idx = torch.nonzero((s[1:] * s[:-1]) < 0).reshape(-1)[:max_n]
        if idx.numel() == 0:
            return []
        a, b = x[idx].clone(), x[idx + 1].clone()
        sa = s[idx]
        for _ in range(120):
            m = 0.5 * (a + b)
            sm = torch.sign(p.log_prob(m) - q.log_prob(m))
            left = sm == sa
            a = torch.where(left, m, a)
            b = torch.where(left, b, m)
        return [float(v) for v in 0.5 * (a + b)]


#: divergences whose integrand has a kink where p = q (f not smooth at u = 1)
KINK_AT_ONE = ("tv", "f_divergence")


def _grid_2d(spec, p, q, params, n):
    a = _alpha_outside(spec, params)
    if a is None:
        return None
    cp, cq = _comps(p), _comps(q)
    if cp is None or cq is None:
        return None
    boxes = [p.bounds(), q.bounds()]
    for _, ci in cp:
        for _, cj in cq:
            if isinstance(ci, MultivariateNormal) and isinstance(cj, MultivariateNormal):
                Li = torch.linalg.inv(ci.cov.detach().double())
                Lj = torch.linalg.inv(cj.cov.detach().double())
                A = a * Li + (1 - a) * Lj
                if bool((torch.linalg.eigvalsh(0.5 * (A + A.T)) > 0).all()):
                    C = torch.linalg.inv(A)
                    m = C @ (a * Li @ ci.mean.detach().double() + (1 - a) * Lj @ cj.mean.detach().double())
                    sd = torch.sqrt(torch.diagonal(C)) * 8.0
                    boxes.append(torch.stack([m - sd, m + sd], -1).to(p.dtype))
    if len(boxes) == 2:
        return None
    B = torch.stack([b.to(device=p.device, dtype=p.dtype) for b in boxes])
    box = torch.stack([B[..., 0].min(0).values, B[..., 1].max(0).values], -1).tolist()
    return make_grid(p, q, box=box, n=n)


def integrand_grid(spec, p, q, params, n=None):
    """The grid for ``spec`` between p and q (see the module docstring), or None for the default."""
    try:
        if p.dim == 1:
            return _grid_1d(spec, p, q, params, n)
        return _grid_2d(spec, p, q, params, n)
    except (ValueError, RuntimeError, OverflowError):
        return None


# --------------------------------------------------------------------------- error terms
def _pointwise(spec, lp, lq, params):
    """The additive integrand(s) at each node: a list of (values (N,), how they enter the value)."""
    key = spec.key
    if spec.fdiv is not None or key == "f_divergence":
        g = spec.from_logs(lp.reshape(1, -1), lq.reshape(1, -1), torch.ones(1, dtype=lp.dtype, device=lp.device),
                           **params)
        return [(g.reshape(-1), 1.0)]
    if key in ("renyi", "bhattacharyya"):
        a = 0.5 if key == "bhattacharyya" else float(params["alpha"])
        if a == 1.0:
            from .fdiv import FDIVS, f_from_logs

            g = f_from_logs(FDIVS["kl"], lp.reshape(1, -1), lq.reshape(1, -1), torch.ones(1, dtype=lp.dtype))
            return [(g.reshape(-1), 1.0)]
        t = torch.exp(a * lp + (1 - a) * lq)
        return [(t, "log", 1.0 / abs(a - 1) if key == "renyi" else 1.0)]
    if key == "cauchy_schwarz":
        return [(torch.exp(lp + lq), "log", 1.0), (torch.exp(2 * lp), "log", 0.5), (torch.exp(2 * lq), "log", 0.5)]
    return []


def _tail_remainder(x, g, w, open_ends=(True, True)):
    """∫ beyond both ends of the grid of g (values at nodes x), from its decay between the end node
    and the node at half its distance from the integrand's centre (a power law x^(−e) leaves
    g(X)·X/(e − 1); anything decaying faster leaves less); (remainder, bounded: bool). A closed
    end (bounded support) has no tail."""
    total, ok = 0.0, True
    n = x.numel()
    mass = float((g * w).sum())
    c = float((x * g * w).sum()) / mass if mass > 0 else 0.0
    if not math.isfinite(c):
        c = 0.0
    r = (x - c).abs()
    for side, i0 in ((1, n - 1), (0, 0)):
        if not open_ends[side]:
            continue
        g0, r0 = float(g[i0]), float(r[i0])
        if not (g0 > 0):
            continue
        if not math.isfinite(g0):
            ok = False
            continue
        # the node on the same side closest to half the end's distance
        same = (x - c) * (1 if side == 1 else -1) > 0
        cand = torch.nonzero(same & (r <= 0.5 * r0)).reshape(-1)
        if cand.numel() == 0:
            ok = False
            continue
        i1 = int(cand[torch.argmax(r[cand])])
        g1, r1 = float(g[i1]), float(r[i1])
        if not (g1 > 0) or r1 <= 0:
            ok = False
            continue
        e = (math.log(g1) - math.log(g0)) / (math.log(r0) - math.log(r1))  # local power-law exponent
        if e <= 1.05:
            ok = False
            continue
        total += g0 * r0 / (e - 1)
    return total, ok


def extra_error(spec, lp, lq, grid, params, value):
    """(error to add, warning or None): the integrand's tail beyond the grid and kinks between nodes."""
    if grid.dim != 1:
        return 0.0, None
    lp1, lq1 = lp.reshape(lp.shape[0], -1)[:, 0], lq.reshape(lq.shape[0], -1)[:, 0]
    try:
        parts = _pointwise(spec, lp1, lq1, params)
    except (RuntimeError, ValueError, TypeError):
        return 0.0, None
    x, w = grid.points, grid.weights
    err, warn = 0.0, None
    for part in parts:
        g = part[0].detach()
        if not bool(torch.isfinite(g).all()):
            continue  # infinite integrand: the value is already +inf with its reason
        rem, ok = _tail_remainder(x, g.abs(), w, getattr(grid, "open_ends", (True, True)))
        if len(part) == 3:  # enters through a log of the integral: relative error
            tot = float((g * w).sum())
            rem = part[2] * rem / tot if tot > 0 else rem
        if not ok:
            warn = ("the integrand does not decay fast enough at the ends of the grid for its tail to be bounded: "
                    "the error bar does not cover the part beyond the grid")
        err += rem
        if spec.key in KINK_AT_ONE:
            d = (lp1 - lq1).detach()
            fin = torch.isfinite(d)
            s = torch.sign(torch.where(fin, d, torch.zeros_like(d)))
            cross = (s[1:] * s[:-1] < 0) | ((s[1:] == 0) ^ (s[:-1] == 0))
            if bool(cross.any()):
                h = (x[1:] - x[:-1])
                err += float((h * (g[1:].abs() + g[:-1].abs()))[cross].sum())
    return err, warn
