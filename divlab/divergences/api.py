"""``divergence`` / ``estimate``: one front door for every divergence and estimator."""

from __future__ import annotations

import math

import torch

from ..distributions import Distribution
from ..distributions.base import check_seed
from ..estimators.quadrature import Grid, make_grid
from ..estimators.result import Estimate
from ._util import wlogsumexp
from .closed_form import closed_form_reason, find_closed_form, supported_pairs
from .fdiv import generic_fdivergence
from .integrability import Verdict, finiteness
from .qgrid import extra_error, integrand_grid
from .registry import DivergenceSpec, get

__all__ = ["divergence", "estimate", "gradient_weight", "log_prob_on", "quadrature_estimate", "ESTIMATORS"]

ESTIMATORS = ("auto", "closed_form", "quadrature", "mc", "samples")
#: largest ``n``: a sample size (and 1D grid size), and the points per axis of a 2D grid (the hard
#: ranges of DIVLAB_MAX_SAMPLES and DIVLAB_MAX_GRID_2D in divlab.limits)
_MAX_N, _MAX_N_2D = 10_000_000, 4097


def _spec(divergence) -> DivergenceSpec:
    if isinstance(divergence, DivergenceSpec):
        return divergence
    return get(divergence)


def log_prob_on(dist: Distribution, points: torch.Tensor) -> torch.Tensor:
    """``dist.log_prob`` at grid points, shape (N, *batch_shape)."""
    b = len(dist.batch_shape)
    if b:
        ev = points.shape[1:]
        points = points.reshape((points.shape[0],) + (1,) * b + tuple(ev))
    return dist.log_prob(points)


def _where(grid: Grid, mask: torch.Tensor) -> str:
    """Words for the first grid point in ``mask`` (reduced over batch dims)."""
    m = mask.reshape(mask.shape[0], -1).any(-1)
    idx = int(torch.nonzero(m)[0])
    pt = grid.points[idx]
    if grid.dim == 1:
        return f"x = {float(pt):.3g}"
    return f"(x, y) = ({float(pt[0]):.3g}, {float(pt[1]):.3g})"


def infinite_reason(spec: DivergenceSpec, lp, lq, grid: Grid, params: dict) -> str:
    """Why a quadrature value is +inf, in words."""
    lp, lq = torch.broadcast_tensors(lp, lq)
    p_pos, q_pos = lp > -math.inf, lq > -math.inf
    only_p, only_q = p_pos & ~q_pos, q_pos & ~p_pos
    label = spec.label(**{k: v for k, v in params.items() if not callable(v)})
    if spec.fdiv is not None:
        if bool(only_p.any()) and math.isinf(float(spec.fdiv.fprime_inf(**params))):
            return (f"{label} is infinite: the model q has no mass where the target p does "
                    f"(q = 0 < p near {_where(grid, only_p)})")
        if bool(only_q.any()) and math.isinf(float(spec.fdiv.f0(**params))):
            return (f"{label} is infinite: the model q puts mass where the target p has none "
                    f"(p = 0 < q near {_where(grid, only_q)})")
    if not bool((p_pos & q_pos).any()):
        return f"{label} is infinite: p and q do not overlap (disjoint supports)"
    if spec.key == "renyi" and bool(only_p.any()):
        return (f"{label} is infinite: for α > 1 any point with q = 0 < p makes ∫p^α q^(1−α) diverge "
                f"(near {_where(grid, only_p)})")
    return f"{label} overflowed: the density ratio p/q is too large somewhere on the grid (heavy tails of p relative to q)"


def quadrature_estimate(spec: DivergenceSpec, p: Distribution, q: Distribution, params: dict,
                        grid: Grid | None = None, n: int | None = None, verdict: Verdict | None = None) -> Estimate:
    """Trapezoid quadrature on a grid that covers the integrand (:mod:`divlab.divergences.qgrid`),
    with |I_h − I_2h| plus the integrand's tail beyond the grid and any kink between nodes as its
    error. ``verdict`` (from :func:`~divlab.divergences.integrability.finiteness`): an
    undecided integral is flagged as such instead of trusted."""
    if spec.from_logs is None:
        raise ValueError(f"divergence {spec.key!r}: quadrature is not available (estimators: {', '.join(spec.estimators)})")
    if grid is None:
        grid = integrand_grid(spec, p, q, params, n=n) or make_grid(p, q, n=n)
    pts = grid.points.to(device=p.device, dtype=p.dtype)
    lp = log_prob_on(p, pts)
    lq = log_prob_on(q, pts.to(device=q.device, dtype=q.dtype)).to(device=p.device, dtype=p.dtype)
    w = grid.weights.to(device=p.device, dtype=p.dtype)
    log_mp, log_mq = wlogsumexp(lp, w), wlogsumexp(lq, w)
    for name, lm, d in (("p", log_mp, p), ("q", log_mq, q)):
        if not bool(torch.isfinite(lm).all()):
            box = [[round(float(a[0]), 4), round(float(a[-1]), 4)] for a in grid.axes]
            raise ValueError(f"quadrature grid {box}: {name} = {d!r} has no mass on it")
    val = spec.from_logs(lp - log_mp, lq - log_mq, w, **params)
    # coarse grid (every other point), same densities: error estimate without new evaluations
    idx = grid.coarse_index()
    wc = grid.coarse().weights.to(device=w.device, dtype=w.dtype)
    lpc, lqc = lp[idx], lq[idx]
    val_c = spec.from_logs(lpc - wlogsumexp(lpc, wc), lqc - wlogsumexp(lqc, wc), wc, **params)
    vf, vc = val.detach(), val_c.detach()
    both_inf = torch.isinf(vf) & torch.isinf(vc) & (torch.sign(vf) == torch.sign(vc))
    diff = torch.where(both_inf, torch.zeros_like(vf), (vf - vc).abs())
    err = float(diff.max()) if diff.numel() else 0.0
    warning = None
    if bool(torch.isfinite(vf).all()):
        extra, warning = extra_error(spec, lp - log_mp, lq - log_mq, grid, params, vf)
        # rounding: a few ulps of the value (the sum over the grid is not exact either)
        err += extra + 16 * torch.finfo(vf.dtype).eps * float(vf.abs().max())
    mass_p, mass_q = torch.exp(log_mp).detach(), torch.exp(log_mq).detach()
    reason = None
    if bool(torch.isinf(vf).any()):
        reason = infinite_reason(spec, lp, lq, grid, params)
    elif bool(torch.isnan(vf).any()):  # pragma: no cover - guarded above; keep the message honest
        reason = "quadrature produced NaN"
    info = {"grid_shape": grid.shape, "box": [[float(a[0]), float(a[-1])] for a in grid.axes],
            "mass_p": float(mass_p.min()), "mass_q": float(mass_q.min())}
    # truncation: the mass outside the box bounds the neglected part of the integral poorly,
    # so report it alongside the refinement error
    trunc = max(0.0, 1.0 - info["mass_p"], 1.0 - info["mass_q"])
    if trunc > 1e-9:
        info["mass_outside_grid"] = trunc
    if verdict is not None and verdict.unknown and reason is None:
        warning = warning or (f"no rule decides whether this integral converges ({verdict.reason}); the value is "
                              "the integral over the grid, and the part beyond it is not bounded")
    if warning and reason is None:
        info["unreliable"] = True
        info["warning"] = warning
    return Estimate(value=val, estimator="quadrature", divergence=spec.key,
                    params={k: v for k, v in params.items() if not callable(v)},
                    error=err, n=grid.n, reason=reason, info=info)


def _discrete_reason(key, p, q, params, value):
    """Between Categoricals: the outcome behind an infinite exact sum (divlab.divergences.discrete)."""
    try:
        from .discrete import discrete_reason
    except ImportError:  # pragma: no cover - discrete ships with divlab
        return None
    try:
        return discrete_reason(key, p, q, params, value)
    except (TypeError, ValueError, AttributeError):
        return None


def _closed_reason(spec, value, params):
    if torch.isinf(value.detach()).any():
        label = spec.label(**params)
        if spec.key in ("renyi", "alpha", "tsallis"):
            return (f"{label} is infinite: ∫p^α q^(1−α) diverges for these Gaussians "
                    "(α·Σp⁻¹ + (1−α)·Σq⁻¹ is not positive definite)")
        return f"{label} is infinite"
    return None


def estimate(p, q, divergence="kl", estimator: str = "auto", *, grid: Grid | None = None, n: int | None = None,
             seed: int | None = None, options: dict | None = None, **params) -> Estimate:
    """Estimate D(p‖q) with its provenance and uncertainty (see :class:`Estimate`).

    ``p`` is the target, ``q`` the model. ``estimator="auto"`` uses a registered closed form
    when one exists for the pair of types, otherwise quadrature (density divergences) or the
    divergence's sample estimator. Parameters of the divergence go by keyword
    (``alpha=0.5``); unknown ones raise ``ValueError``. ``n`` is the grid size per axis for
    quadrature and the sample size for sampled estimators; ``seed`` seeds sampling;
    ``options`` passes estimator-specific settings.

    Before any estimator runs, :func:`~divlab.divergences.integrability.finiteness` decides
    whether the integral converges for this pair: +∞ comes back with the reason whatever
    estimator was asked for, and an undecided one is flagged in ``info``. The argument order
    (target first) and every definition that differs from TFP, POT, GeomLoss or scipy:
    docs/conventions.md.
    """
    spec = _spec(divergence)
    owner = f"divergence({spec.key!r})"
    params = spec.resolve_params(params, owner=owner)
    check_seed(owner, seed)
    if n is not None:  # a sample or grid size: refused beyond what memory holds, naming the largest allowed
        top = _MAX_N_2D if estimator == "quadrature" and getattr(p, "dim", 1) == 2 else _MAX_N
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"{owner}(n={n!r}): n must be an integer")
        if n > top:  # (each estimator names its own smallest n)
            raise ValueError(f"{owner}(n={n!r}): n must be <= {top} (the largest value allowed)")
    if estimator not in ESTIMATORS and estimator not in spec.estimator_fns:
        raise ValueError(f"{owner}: estimator={estimator!r} is unknown (allowed: {', '.join(ESTIMATORS)})")
    p, q = _as_dist(p, "p"), _as_dist(q, "q")
    if isinstance(p, Distribution) and isinstance(q, Distribution) and p.dim != q.dim:
        raise ValueError(f"{owner}: p is {p.dim}D and q is {q.dim}D; they must have the same dimension")
    verdict = finiteness(spec, p, q, params)
    if verdict.infinite:
        return _infinite_estimate(spec, p, q, params, estimator, verdict)
    est = _run(spec, p, q, params, estimator, owner, grid=grid, n=n, seed=seed, options=options, verdict=verdict)
    if verdict.status != "infinite":
        est.info.setdefault("finiteness", verdict.status if not verdict.rule else f"{verdict.status} ({verdict.rule})")
    return est


def _infinite_estimate(spec, p, q, params, estimator, verdict) -> Estimate:
    """+inf with the integrability rule's reason, whatever estimator was asked for."""
    if estimator == "auto":
        if find_closed_form(spec.key, p, q) is not None:
            estimator = "closed_form"
        elif spec.from_logs is not None and _has_density(p, q):
            estimator = "quadrature"
        else:
            estimator = next(iter(spec.estimator_fns), "auto")
    ref = p if isinstance(p, Distribution) else q
    value = torch.full((), math.inf, dtype=ref.dtype, device=ref.device)
    # keep the graph of any differentiable parameter, with a zero (finite) gradient
    for d in (p, q):
        for t in vars(d).values():
            if isinstance(t, torch.Tensor) and t.requires_grad:
                value = value + 0.0 * t.sum().to(value.dtype)
    return Estimate(value=value, estimator=estimator, divergence=spec.key,
                    params={k: v for k, v in params.items() if not callable(v)}, reason=verdict.reason,
                    info={"finiteness": f"infinite ({verdict.rule})", "decided_by": "integrability rule"})


def _run(spec, p, q, params, estimator, owner, *, grid, n, seed, options, verdict) -> Estimate:
    if estimator in ("auto", "closed_form"):
        fn = find_closed_form(spec.key, p, q)
        val = fn(p, q, **params) if fn is not None else None
        if val is not None:
            why = (closed_form_reason(spec.key, p, q, params, val) or _discrete_reason(spec.key, p, q, params, val)
                   or _closed_reason(spec, val, params))
            return Estimate(value=val, estimator="closed_form", divergence=spec.key, params=params,
                            reason=why if bool(torch.isinf(val.detach()).any()) else None)
        if estimator == "closed_form":
            pairs = supported_pairs(spec.key)
            have = ", ".join(f"({a}, {b})" for a, b in pairs) or "none"
            raise ValueError(f"{owner}: no closed form for p={type(p).__name__}, q={type(q).__name__} "
                             f"(closed forms exist for: {have})")
        if spec.from_logs is not None and isinstance(p, Distribution) and isinstance(q, Distribution) and _has_density(p, q):
            estimator = "quadrature"
        elif spec.estimator_fns:
            # point clouds (no density) go to the nearest-neighbour estimator where there is one
            cloud = not (isinstance(p, Distribution) and isinstance(q, Distribution) and _has_density(p, q))
            estimator = "knn" if cloud and "knn" in spec.estimator_fns else next(iter(spec.estimator_fns))
        else:
            raise ValueError(f"{owner}: cannot estimate between {type(p).__name__} and {type(q).__name__} "
                             f"(estimators: {', '.join(spec.estimators)})")
    if estimator == "quadrature":
        if spec.from_logs is None:
            raise ValueError(f"{owner}: estimator='quadrature' is not supported (supported: {', '.join(spec.estimators)})")
        if not (isinstance(p, Distribution) and isinstance(q, Distribution) and _has_density(p, q)):
            which = "p" if not getattr(p, "has_density", True) else "q"
            raise ValueError(f"{owner}: estimator='quadrature' integrates densities, but {which} is a "
                             f"{type(p if which == 'p' else q).__name__} without one (use a sample estimator)")
        return quadrature_estimate(spec, p, q, params, grid=grid, n=n, verdict=verdict)
    fn = spec.estimator_fns.get(estimator)
    if fn is None:
        raise ValueError(f"{owner}: estimator={estimator!r} is not supported (supported: {', '.join(spec.estimators)})")
    return fn(p, q, n=n, seed=seed, options=dict(options or {}), **params)


def divergence(p, q, divergence="kl", estimator: str = "auto", **kwargs) -> torch.Tensor:
    """D(p‖q) as a tensor, in the divergence's unit (``get(key).unit``: nats for the log-based
    ones), differentiable where the inputs are. See :func:`estimate`."""
    return estimate(p, q, divergence, estimator, **kwargs).value


def gradient_weight(divergence, r, **params) -> torch.Tensor:
    """h(r) = r² f''(r) of an f-divergence, evaluated at density ratios ``r = p/q``."""
    spec = _spec(divergence)
    params = spec.resolve_params(params, owner=f"gradient_weight({spec.key!r})")
    r = torch.as_tensor(r, dtype=torch.float64) if not isinstance(r, torch.Tensor) else r
    if spec.key == "f_divergence":
        return generic_fdivergence(params["f"]).h(r)
    if spec.fdiv is None:
        raise ValueError(f"gradient_weight({spec.key!r}): {spec.name} is not an f-divergence")
    if spec.fdiv.h is None:
        raise ValueError(f"gradient_weight({spec.key!r}): {spec.fdiv.h_note}")
    return spec.fdiv.h(r, **params)


def _has_density(p, q) -> bool:
    return all(getattr(d, "has_density", True) for d in (p, q))


def _as_dist(x, name):
    """Distributions pass through; point clouds become Empirical distributions when available."""
    if isinstance(x, Distribution):
        return x
    try:
        from ..distributions import Empirical  # type: ignore[attr-defined]
    except ImportError:
        Empirical = None
    if Empirical is not None:
        return Empirical(x)
    raise ValueError(f"divergence({name}={type(x).__name__}): {name} must be a divlab distribution")
