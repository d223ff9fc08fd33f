"""Exploring a divergence's geometry over the normal family: local optima and landscapes.

Both run on the batched engine (:mod:`divlab.fit.engine`): ``local_optima`` fits from many
starting points at once and groups the end points; ``landscape`` evaluates the divergence on a
whole (loc, log scale) lattice as one batch of models (a few chunks when it is large).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..distributions import Distribution, Normal
from ..divergences.registry import DivergenceSpec, get
from ..estimators.quadrature import make_grid
from .core import FAMILIES, FitBatch, _check_number, fit
from .engine import Member, batch_values

__all__ = ["Optimum", "Optima", "local_optima", "Landscape", "landscape", "default_ranges", "sweep"]

#: model-lattice points × grid points per chunk of a landscape
CHUNK_ELEMENTS = 1 << 22


@dataclass
class Optimum:
    """One distinct end point of the fits: its parameters, value and share of the starts."""

    params: dict
    value: float
    share: float  # fraction of all starts that ended here (its basin share)
    count: int
    is_global: bool
    members: list = field(default_factory=list)  # indices into Optima.fits

    def as_dict(self) -> dict:
        return {"params": self.params, "value": self.value, "share": self.share, "count": self.count,
                "is_global": self.is_global}


class Optima(list):
    """A list of :class:`Optimum`, lowest value first; ``fits`` holds every fit of the search and
    ``unresolved`` the number that diverged or did not settle."""

    fits: FitBatch
    unresolved: int = 0

    @property
    def global_optimum(self) -> Optimum:
        return self[0]


#: families whose optima local_optima can group (a mixture's components can swap labels)
OPTIMA_FAMILIES = ("normal", "student_t", "diag", "mvn")


def _check_target(owner, target, family, allowed=("normal",)):
    if not isinstance(target, Distribution):
        raise ValueError(f"{owner}(target={target!r}): target must be a divlab distribution")
    if family not in FAMILIES:
        raise ValueError(f"{owner}(family={family!r}): family must be one of {', '.join(FAMILIES)}")
    if family in allowed and family != "normal":
        return
    if family not in allowed:
        if len(allowed) > 1:
            raise ValueError(f"{owner}(family={family!r}): supported families are {', '.join(allowed)} "
                             "(a mixture's optima are defined only up to relabelling its components)")
        raise ValueError(f"{owner}(family={family!r}): only the 1D normal family is supported here "
                         "(its (loc, log scale) plane); use dl.fit(..., restarts=R) for the other families")
    if target.dim != 1:
        raise ValueError(f"{owner}(family={family!r}): the normal family is 1D but the target is {target.dim}D")


def _spec(owner, divergence) -> DivergenceSpec:
    if isinstance(divergence, (list, tuple)):
        raise ValueError(f"{owner}(divergence={divergence!r}): give one divergence key")
    spec = divergence if isinstance(divergence, DivergenceSpec) else get(divergence)
    if spec.from_logs is None:
        raise ValueError(f"{owner}(divergence={spec.key!r}): only density divergences are supported here")
    return spec


def local_optima(target: Distribution, family: str = "normal", divergence="reverse_kl", *, restarts: int = 32,
                 seed: int | None = 0, steps: int = 500, lr: float = 0.05, params: dict | None = None,
                 tol: float = 1e-3, init: dict | None = None, n: int | None = None) -> Optima:
    """Distinct local optima of ``divergence``(target‖model) over the family, with their basins.

    Families: normal, student_t (1D), diag, mvn (2D). Runs ``restarts`` fits in one batch (starts
    drawn with ``seed`` around the target's box, see :func:`fit`), keeps those that converged, and
    groups end points closer than ``tol`` in a scale-free metric (locations in units of the
    scale along their axis, log scales, log df, correlations). Each :class:`Optimum` reports its parameters, value, the share
    of all starts that reached it (an estimate of its basin's share of the start region) and
    whether it is the lowest (``is_global``; within ``tol`` of the lowest value). Sorted by value.
    """
    owner = "local_optima"
    _check_target(owner, target, family, allowed=OPTIMA_FAMILIES)
    spec = _spec(owner, divergence)
    restarts = _check_number(owner, "restarts", restarts, low=1, integer=True, high=4096)
    tol = _check_number(owner, "tol", tol, low=0, low_open=True)
    fits = fit(target, family, spec, restarts=restarts, seed=seed, steps=steps, lr=lr, params=params, init=init,
               n=n)
    fits = fits if isinstance(fits, FitBatch) else FitBatch([fits])
    return group_optima(fits, tol)


def group_optima(fits: FitBatch, tol: float = 1e-3) -> Optima:
    """Group the converged, finite end points of ``fits`` (one divergence) into distinct optima
    (see :func:`local_optima`)."""
    ok = [i for i, r in enumerate(fits) if r.converged and math.isfinite(r.final_loss)]
    ok.sort(key=lambda i: fits[i].final_loss)
    clusters: list[list[int]] = []
    for i in ok:
        pi = fits[i].params
        for c in clusters:
            if _distance(pi, fits[c[0]].params) <= tol:
                c.append(i)
                break
        else:
            clusters.append([i])
    out = Optima()
    out.fits = fits
    out.unresolved = len(fits) - len(ok)
    best = min((fits[c[0]].final_loss for c in clusters), default=math.inf)
    for c in clusters:
        r = fits[c[0]]
        out.append(Optimum(
            params=_mean_params([fits[i].params for i in c]),
            value=float(min(fits[i].final_loss for i in c)), share=len(c) / len(fits), count=len(c),
            is_global=r.final_loss <= best + tol * (1 + abs(best)), members=list(c)))
    out.sort(key=lambda o: o.value)
    return out


def optima_of(target: Distribution, choices, family: str = "normal", *, restarts: int = 12, steps: int = 250,
              seed: int | None = 0, tol: float = 1e-3) -> list[Optima]:
    """The distinct optima of several divergences at once (one batch of ``restarts`` starts each,
    as :func:`local_optima` does for one): ``choices`` are divergence keys or (key, params) pairs;
    returns one :class:`Optima` per choice, in order. Cheap enough to mark a page's fits (Fit 1D
    draws them as dashed curves): 3 divergences x 12 starts x 250 steps in one batch."""
    owner = "optima_of"
    _check_target(owner, target, family, allowed=OPTIMA_FAMILIES)
    norm = [(c, {}) if isinstance(c, str) else (c[0], dict(c[1])) for c in choices]
    if not norm:
        return []
    keys = [k for k, _ in norm]
    if len(set(keys)) == len(keys):  # one batch for all (parameters by key)
        batch = fit(target, family, keys, params={k: p for k, p in norm}, restarts=restarts, seed=seed, steps=steps)
        batch = batch if isinstance(batch, FitBatch) else FitBatch([batch])
        return [group_optima(FitBatch(r for r in batch if r.divergence == k), tol) for k in keys]
    out = []
    for k, prm in norm:  # the same key with several parameter values: one batch each
        b = fit(target, family, k, params=prm, restarts=restarts, seed=seed, steps=steps)
        out.append(group_optima(b if isinstance(b, FitBatch) else FitBatch([b]), tol))
    return out


def _positive(name: str) -> bool:
    return name.startswith("scale") or name == "df"


def _distance(a: dict, b: dict) -> float:
    """Scale-free distance between two fitted parameter sets: location differences in units of
    ``b``'s scale along that axis, differences of log scales (and log df), of correlations."""
    d = 0.0
    for k, va in a.items():
        vb = b[k]
        if _positive(k):
            d = max(d, abs(math.log(va) - math.log(vb)))
        elif k.startswith("loc"):
            d = max(d, abs(va - vb) / b["scale" + k[3:]])
        else:
            d = max(d, abs(va - vb))
    return d


def _mean_params(ps: list[dict]) -> dict:
    """The centre of a cluster: arithmetic means, geometric for scales and df."""
    return {k: float(np.exp(np.mean([math.log(p[k]) for p in ps]))) if _positive(k)
            else float(np.mean([p[k] for p in ps])) for k in ps[0]}


def default_ranges(target: Distribution) -> tuple[list, list]:
    """(loc range, log-scale range) around the target's box: the middle half of the box for loc,
    scales from 1/40 to 1/4 of its width."""
    box = target.bounds().detach()
    lo, hi = float(box[0, 0]), float(box[0, 1])
    c, w = 0.5 * (lo + hi), hi - lo
    return [c - w / 4, c + w / 4], [math.log(w / 40), math.log(w / 4)]


@dataclass
class Landscape:
    """The divergence over a (loc, log scale) lattice.

    ``values[j, i]`` is D(target‖N(loc[i], exp(log_scale[j])²)) (rows: log scale, columns: loc);
    ``argmin``: the lattice point with the lowest value.
    """

    divergence: str
    divergence_params: dict
    loc: np.ndarray
    log_scale: np.ndarray
    values: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def scale(self) -> np.ndarray:
        return np.exp(self.log_scale)

    @property
    def argmin(self) -> dict:
        v = np.where(np.isnan(self.values), np.inf, self.values)
        j, i = np.unravel_index(int(np.argmin(v)), v.shape)
        return {"loc": float(self.loc[i]), "scale": float(np.exp(self.log_scale[j])), "value": float(v[j, i])}

    def as_dict(self) -> dict:
        return {"divergence": self.divergence, "divergence_params": self.divergence_params,
                "loc": self.loc.tolist(), "log_scale": self.log_scale.tolist(),
                "values": [[x if math.isfinite(x) else None for x in row] for row in self.values.tolist()]}


def _check_range(owner, name, r):
    try:
        a, b = (float(x) for x in r)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}({name}={r!r}): {name} must be [low, high]") from None
    if not (math.isfinite(a) and math.isfinite(b) and b > a):
        raise ValueError(f"{owner}({name}={r!r}): {name} must be finite with high > low")
    return a, b


def landscape(target: Distribution, family: str = "normal", divergence="reverse_kl", *, loc_range=None,
              log_scale_range=None, n=(81, 61), params: dict | None = None, grid_n: int | None = None) -> Landscape:
    """D(target‖model) over a lattice of ``n = (n_loc, n_log_scale)`` normal models.

    Every model is evaluated by quadrature on one grid that covers the target and all models
    (spacing from the narrowest model), in batches of at most ``CHUNK_ELEMENTS`` values.
    Ranges default to :func:`default_ranges`. Infinite values stay +inf (an answer, not an error).
    """
    owner = "landscape"
    _check_target(owner, target, family)
    spec = _spec(owner, divergence)
    dparams = spec.resolve_params(dict(params or {}), owner=f"{owner}(divergence={spec.key!r})")
    try:
        n_loc, n_ls = (int(x) for x in n)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}(n={n!r}): n must be (n_loc, n_log_scale)") from None
    for k, v in (("n_loc", n_loc), ("n_log_scale", n_ls)):
        if not 2 <= v <= 2001:
            raise ValueError(f"{owner}(n={n!r}): {k} must be in [2, 2001]")
    dl_r, ds_r = default_ranges(target)
    lo_l, hi_l = _check_range(owner, "loc_range", dl_r if loc_range is None else loc_range)
    lo_s, hi_s = _check_range(owner, "log_scale_range", ds_r if log_scale_range is None else log_scale_range)
    dev, dt = target.device, target.dtype
    locs = np.linspace(lo_l, hi_l, n_loc)
    lss = np.linspace(lo_s, hi_s, n_ls)
    L, S = np.meshgrid(locs, lss)  # (n_ls, n_loc)
    theta = torch.tensor(np.stack([L.ravel(), S.ravel()], -1), device=dev, dtype=dt)
    corners = Normal(torch.tensor([lo_l, hi_l, lo_l, hi_l], device=dev, dtype=dt),
                     torch.exp(torch.tensor([lo_s, lo_s, hi_s, hi_s], device=dev, dtype=dt)), validate=False)
    grid = make_grid(target, corners, n=grid_n)
    chunk = max(1, CHUNK_ELEMENTS // grid.n)
    vals = []
    for a in range(0, theta.shape[0], chunk):
        th = theta[a: a + chunk]
        members = [Member(spec, dparams, 0.0, 1.0) for _ in range(th.shape[0])]
        vals.append(batch_values(target, members, th, grid).cpu())
    values = torch.cat(vals).numpy().reshape(n_ls, n_loc)
    return Landscape(divergence=spec.key, divergence_params={k: v for k, v in dparams.items() if not callable(v)},
                     loc=locs, log_scale=lss, values=values,
                     info={"grid_box": [float(grid.axes[0][0]), float(grid.axes[0][-1])], "grid_points": grid.n,
                           "chunks": len(vals)})


def sweep(target: Distribution, family: str = "normal", divergence="alpha", *, param: str = "alpha", values=(),
          warm: bool = True, init: dict | None = None, params: dict | None = None, steps: int = 500,
          lr: float = 0.05, seed: int | None = 0, n: int | None = None) -> FitBatch:
    """Fit ``divergence`` for each value of its parameter ``param`` (e.g. α from 0 to 1).

    With ``warm`` (default) each fit starts where the previous one ended (the previous start if
    it diverged), so the sweep follows one branch of optima as the parameter moves and shows
    where that branch ends (a jump to another optimum). Without ``warm`` every value starts from
    ``init``. All fits share one quadrature grid (the first fit's). Returns a :class:`FitBatch`
    in the order of ``values``; each result's ``divergence_params`` holds its value.
    """
    owner = "sweep"
    _check_target(owner, target, family)
    spec = _spec(owner, divergence)
    names = [p.name for p in spec.params if p.kind == "number"]
    if param not in names:
        raise ValueError(f"{owner}(param={param!r}): divergence {spec.key!r} has no numeric parameter {param!r} "
                         f"(allowed: {', '.join(names) or 'none'})")
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{owner}(values={values!r}): values must be a list of numbers") from None
    if not vals:
        raise ValueError(f"{owner}(values={values!r}): give at least one value")
    base = dict(params or {})
    if param in base:
        raise ValueError(f"{owner}(params={base!r}): {param!r} is swept; do not also fix it in params")
    per_value = [spec.resolve_params({**base, param: v}, owner=f"{owner}(divergence={spec.key!r})") for v in vals]
    if not warm:
        batch = FitBatch()
        first = fit(target, family, spec, params=per_value[0], init=init, steps=steps, lr=lr, seed=seed, n=n)
        box = first.info["grid_box"]
        batch.append(first)
        for dp in per_value[1:]:
            batch.append(fit(target, family, spec, params=dp, init=init, steps=steps, lr=lr, seed=seed, n=n, box=box))
        return batch
    out = FitBatch()
    start, box = init, None
    for dp in per_value:
        r = fit(target, family, spec, params=dp, init=start, steps=steps, lr=lr, seed=seed, n=n, box=box)
        box = box or r.info["grid_box"]
        out.append(r)
        if not r.diverged:
            start = dict(r.params)
        else:
            start = dict(r.init)
    return out
