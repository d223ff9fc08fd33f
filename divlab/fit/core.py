"""Fitting a model to a target by minimizing a divergence with torch optimizers.

First version: the 1D ``normal`` family (parameters loc and log scale), every density
divergence of the registry by grid quadrature, Adam with a cosine learning-rate decay,
trajectory and status recorded. The target's log-density is evaluated once on a fixed grid
that covers the target and the starting model; each step evaluates only the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..distributions import Distribution, Normal
from ..divergences.registry import DivergenceSpec, get

__all__ = ["fit", "FitResult", "FitBatch", "FAMILIES"]

FAMILIES = ("normal", "student_t", "diag", "mvn", "mixture", "particles", "categorical", "categorical_topk")
OPTIMIZERS = ("adam", "sgd", "lbfgs")
MAX_STEPS = 100_000


@dataclass
class FitResult:
    """The outcome of one fit.

    ``params``: final parameters (e.g. {"loc": -2.98, "scale": 1.02});
    ``trajectory``: per-step parameters, {name: array of length steps + 1} (index 0 = start);
    ``losses``: the divergence at each trajectory point (same length);
    ``status``: "converged" | "max_steps" | "diverged: <reason>".
    """

    family: str
    divergence: str
    divergence_params: dict
    params: dict
    trajectory: dict
    losses: np.ndarray
    status: str
    steps: int
    init: dict
    lr: float
    optimizer: str
    estimator: str = "quadrature"
    seed: int | None = 0
    elapsed_s: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return get(self.divergence).label(**self.divergence_params)

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def diverged(self) -> bool:
        return self.status.startswith("diverged")

    def model(self, step: int = -1) -> Distribution:
        """The fitted model (or the model at trajectory index ``step``), for every family."""
        if self.family == "normal":
            loc, scale = float(self.trajectory["loc"][step]), float(self.trajectory["scale"][step])
            # a fitted model may sit past the bounds an input must respect (a scale that collapsed
            # below 1e-9): it is drawn as it is; only a non-finite or non-positive value is refused
            ok = math.isfinite(loc) and math.isfinite(scale) and scale > 0
            return Normal(loc, scale, validate=not ok)
        from .families import make_family

        dim = 2 if ("loc_x" in self.trajectory or "loc_x1" in self.trajectory) else 1
        k = sum(1 for name in self.trajectory if name[:1] == "w" and name[1:].isdigit())
        fam = make_family("FitResult.model", self.family, dim, k if self.family == "mixture" else None)
        vals = {k: float(v[step]) for k, v in self.trajectory.items()}
        # as for the Normal above: finite fitted values are drawn even past the input bounds (a
        # Student-t whose df grew past 1e6 on its way to a Normal)
        return fam.model(vals, validate=not all(math.isfinite(v) for v in vals.values()))

    def as_dict(self) -> dict:
        return {
            "family": self.family, "divergence": self.divergence, "divergence_params": self.divergence_params,
            "params": self.params, "status": self.status, "steps": self.steps, "init": self.init, "lr": self.lr,
            "optimizer": self.optimizer, "estimator": self.estimator, "seed": self.seed,
            "final_loss": _jsonable(self.final_loss),
            "trajectory": {k: v.tolist() for k, v in self.trajectory.items()},
            "losses": [_jsonable(x) for x in self.losses.tolist()],
        }


def _jsonable(x: float):
    return x if math.isfinite(x) else ("inf" if x > 0 else ("-inf" if x < 0 else "nan"))


def check_run_args(owner, *, optimizer, schedule, steps, lr, default_lr, restarts, tol, patience, time_budget_s,
                   also=()):
    """The optimizer's arguments of a fit, checked (ValueError naming the argument and the value):
    returns (steps, lr, restarts, tol, patience, time_budget_s); ``lr`` None takes 1.0 for LBFGS,
    else ``default_lr``; ``also``: optimizer names handled before this check, for the message."""
    if optimizer not in OPTIMIZERS:
        names = ", ".join(OPTIMIZERS + tuple(also))
        raise ValueError(f"fit(optimizer={optimizer!r}): optimizer must be one of {names}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"fit(schedule={schedule!r}): schedule must be 'cosine' or 'constant'")
    steps = _check_number(owner, "steps", steps, low=0, integer=True, high=MAX_STEPS)
    lr = (1.0 if optimizer == "lbfgs" else default_lr) if lr is None else lr
    lr = _check_number(owner, "lr", lr, low=0, low_open=True)
    restarts = _check_number(owner, "restarts", restarts, low=1, integer=True, high=4096)
    tol = _check_number(owner, "tol", tol, low=0)
    patience = _check_number(owner, "patience", patience, low=1, integer=True)
    if time_budget_s is not None:
        time_budget_s = _check_number(owner, "time_budget_s", time_budget_s, low=0, low_open=True)
    return steps, lr, restarts, tol, patience, time_budget_s


def _check_number(owner, name, v, low=None, high=None, low_open=False, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not float(v).is_integer()):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{owner}({name}={v!r}): {name} must be {kind}")
    if not math.isfinite(v):
        raise ValueError(f"{owner}({name}={v!r}): {name} must be finite")
    if low is not None and (v <= low if low_open else v < low):
        raise ValueError(f"{owner}({name}={v!r}): {name} must be {'>' if low_open else '>='} {low}")
    if high is not None and v > high:
        raise ValueError(f"{owner}({name}={v!r}): {name} must be <= {high}")
    return int(v) if integer else float(v)


def _default_init(target: Distribution) -> dict:
    box = target.bounds().detach()
    lo, hi = float(box[0, 0]), float(box[0, 1])
    return {"loc": 0.5 * (lo + hi), "scale": max((hi - lo) / 8.0, 1e-3)}


class FitBatch(list):
    """A list of :class:`FitResult` (divergence-major: every restart of the first divergence,
    then the next divergence ...) with a few helpers."""

    def by_divergence(self, key: str) -> "FitBatch":
        return FitBatch(r for r in self if r.divergence == key)

    def best(self, key: str | None = None) -> FitResult:
        """The result with the lowest final loss (among those of ``key`` if given)."""
        pool = [r for r in self if key is None or r.divergence == key]
        if not pool:
            raise ValueError(f"FitBatch.best(key={key!r}): no result for this divergence")
        return min(pool, key=lambda r: (not math.isfinite(r.final_loss), r.final_loss))

    @property
    def statuses(self) -> list[str]:
        return [r.status for r in self]


def fit(target: Distribution, family: str = "normal", divergence="kl", *, steps: int = 500, lr: float | None = None,
        init: dict | None = None, seed: int | None = 0, estimator: str = "auto", optimizer: str = "adam",
        params: dict | None = None, n: int | None = None, tol: float = 1e-10, patience: int = 20,
        schedule: str = "cosine", callback=None, restarts: int = 1, polish: bool = True, box=None,
        components: int | None = None, time_budget_s: float | None = None, options: dict | None = None,
        support=None, topk: int | None = None):
    """Fit a model of ``family`` to ``target`` by minimizing ``divergence``(target‖model).

    - ``family``: "normal" (1D: loc, scale), "student_t" (1D: loc, scale, df), "diag" (2D:
      loc_x, loc_y, scale_x, scale_y), "mvn" (2D, full covariance: ... , corr) or "mixture" of
      ``components`` = K ≤ 5 normals (1D) or 2D normals (2D), the dimension taken from the target
      (flat names w1..wK, loc1.. / loc_x1.., ...; see :mod:`divlab.fit.families`).
    - ``family="particles"``: the model is a cloud of particles moved by a flow (:func:`divlab.flow`,
      see :mod:`divlab.fit.particles`): ``divergence`` "mmd" (MMD flow), "energy" (MMD flow, energy
      kernel), "sinkhorn" (Sinkhorn flow) or "reverse_kl" = KL(q‖p), the particles being q (SVGD;
      Langevin with ``options={"flow": "langevin"}``); forward "kl" (+inf for particles) and the
      rest raise ValueError. ``init``: the starting positions ((n,) / (n, 2)) or a distribution to
      draw ``n`` (default 300) from; ``steps``, ``lr`` (default: the flow's), ``seed`` as for
      :func:`divlab.flow`, whose frames it reproduces exactly. ``params``: mmd kernel / bandwidth,
      sinkhorn epsilon (omitted ones take the flow's defaults); ``options``: the flow's options
      (``{option: value}``, or ``{key: {...}}`` per divergence), unknown ones raise. Arguments
      of the optimizer (estimator, optimizer, tol, patience, schedule, callback, restarts, box,
      components, time_budget_s) must keep their defaults; ``polish`` is ignored. Returns a
      :class:`~divlab.fit.particles.ParticleFit` (a :class:`~divlab.fit.flow.FlowResult` with
      ``divergence`` the key asked for, ``flow`` the dynamics, ``losses`` per frame in
      ``loss_name``, ``model(frame)`` the particles, ``status`` "max_steps" or "diverged: <reason>"),
      or a :class:`FitBatch` of them for a list of divergences.
    - ``family="categorical"`` / ``"categorical_topk"``: a softmax student over the outcomes of a
      :class:`~divlab.distributions.Categorical` target, fitted on exact sums (no estimator error);
      ``support`` (None, K' >= K, or labels) and ``topk`` (free outcomes of the top-k student); see
      :mod:`divlab.fit.categorical`. Returns a :class:`~divlab.fit.categorical.CategoricalFit`.
    - ``divergence``: a registry key (``dl.catalogue()``), or a list of keys (each fitted from
      the same starting points; returns a list of results).
    - ``params``: the divergence's parameters, e.g. ``{"alpha": 0.5}``; with a list of
      divergences, either one dict for all or ``{key: {...}}`` per key.
    - ``estimator``: "auto" (default: "quadrature" for density divergences, "samples" for the
      others), "quadrature" (grid, 1D or 2D), "mc" (the registry's reparameterized Monte Carlo
      estimator, ``n`` draws, the same seed every step) or "samples" (a fixed target cloud of ``n``
      points against reparameterized model clouds: mmd, energy, sinkhorn, wasserstein (1D),
      sliced_wasserstein, ksd). ``options``: per-divergence settings of the samples estimator,
      e.g. ``{"sinkhorn": {"tol": 1e-6, "max_iter": 200}}``.
    - ``init``: starting parameters by flat name (missing ones take the default: the centre of
      the target's box with an eighth of its width; mixtures spread over the box).
    - ``restarts``: R starting points per divergence: the first is ``init``, the others are drawn
      with ``seed`` around the target's box. With R > 1 or a list of divergences the result is a
      :class:`FitBatch` (a list of results, divergence-major); otherwise one :class:`FitResult`.
    - Every fit of the call runs in one batch (one tensor program per step, see
      :mod:`divlab.fit.engine` for the normal family by quadrature and :mod:`divlab.fit.generic`
      for the rest); with Adam or SGD each member's path is the one it would follow alone.
    - ``optimizer``: "adam" (default), "sgd" or "lbfgs" (strong-Wolfe line search on the sum of
      the members' losses; one step = one LBFGS iteration), or "fb_gvi" (reverse_kl with the
      normal / diag / mvn families: forward–backward Bures–Wasserstein steps of size ``lr``,
      Gauss–Hermite expectations with ``n`` nodes per axis; see :mod:`divlab.fit.fbgvi`).
      ``lr`` defaults to 0.05 (1.0 for
      lbfgs). ``schedule``: "cosine" (lr decays to lr/100 over ``steps``) or "constant".
    - Stops a member early with status "converged" when its loss changes by less than
      ``tol·(1 + |loss|)`` for ``patience`` consecutive steps; "diverged: <reason>" when the loss
      becomes infinite or NaN (the trajectory keeps every finite step; the others go on).
    - ``time_budget_s``: wall-clock budget of the run; when exceeded every unfinished member stops
      with "stopped: wall-clock budget of X s reached after step N". ``callback(step, params, loss)``
      (params by flat name; arrays when the batch has several members) returning ``False`` stops
      them with "stopped: by the caller after step N". Either way trajectories are kept.
    - ``polish`` (quadrature members of families with <= 15 unconstrained parameters): damped
      Newton steps on each finished member (kept only where they lower the loss) take it to the
      optimum to ~1e-10; they extend the trajectory (``info["polish_steps"]``).
    - ``box``: ``[lo, hi]`` (1D) or ``[[x_lo, x_hi], [y_lo, y_hi]]`` (2D) of the quadrature grid
      (default: the target and the starting models, padded); ``n``: grid points per axis
      (default 2049 in 1D, from the scales within [129, 513] in 2D), or the sample size of the
      mc / samples estimators.
    """
    from ..distributions.base import check_seed

    check_seed("fit", seed)
    if family in ("categorical", "categorical_topk"):  # a softmax student over discrete outcomes
        args = dict(locals())
        from .categorical import FIT_ARGS, fit_categorical

        return fit_categorical(**{k: v for k, v in args.items() if k in FIT_ARGS})
    if support is not None or topk is not None:
        raise ValueError(f"fit(family={family!r}): support and topk apply to the categorical families")
    if getattr(target, "is_discrete", False):
        raise ValueError(f"fit(family={family!r}): a Categorical target (discrete outcomes) is fitted by "
                         "family='categorical' or 'categorical_topk'")
    if family == "particles":  # particle flows (divlab.fit.particles); every argument passed on
        args = dict(locals())
        from .particles import fit_particles

        return fit_particles(**{k: v for k, v in args.items() if k not in ("family", "support", "topk")})
    from .engine import Member, run_batch
    from .families import make_family
    from .generic import ESTIMATORS, GMember, run_generic

    owner = "fit"
    if not isinstance(target, Distribution):
        raise ValueError(f"fit(target={target!r}): target must be a divlab distribution")
    fam = make_family(owner, family, target.dim, components)
    many = isinstance(divergence, (list, tuple))
    divs = list(divergence) if many else [divergence]
    if not divs:
        raise ValueError("fit(divergence=[]): give at least one divergence")
    if estimator != "auto" and estimator not in ESTIMATORS:
        raise ValueError(f"fit(estimator={estimator!r}): estimator must be one of auto, {', '.join(ESTIMATORS)}")
    if optimizer == "fb_gvi":  # forward–backward Bures–Wasserstein steps (divlab.fit.fbgvi), reverse KL only
        from .fbgvi import fit_fbgvi

        if many or restarts != 1:
            raise ValueError("fit(optimizer='fb_gvi'): one divergence (reverse_kl) and restarts=1")
        return fit_fbgvi(target, family, divs[0], steps=steps, lr=0.05 if lr is None else lr, init=init, tol=tol,
                         patience=patience, nodes=n, callback=callback)
    steps, lr, restarts, tol, patience, time_budget_s = check_run_args(
        owner, optimizer=optimizer, schedule=schedule, steps=steps, lr=lr, default_lr=0.05, restarts=restarts,
        tol=tol, patience=patience, time_budget_s=time_budget_s, also=("fb_gvi",))
    if n is not None:
        n = _check_number(owner, "n", n, low=3, integer=True, high=1 << 20)
    if callback is not None and not callable(callback):
        raise ValueError(f"fit(callback={callback!r}): callback must be callable")
    box = _check_box(box, target.dim)
    specs, dps, ests = [], [], []
    per_key = _is_per_key(params)
    for d in divs:
        spec: DivergenceSpec = d if isinstance(d, DivergenceSpec) else get(d)
        given = (params or {}).get(spec.key, {}) if per_key else params
        specs.append(spec)
        dps.append(spec.resolve_params(dict(given or {}), owner=f"fit(divergence={spec.key!r})"))
        ests.append(_estimator_for(spec, estimator, fam, target))
    _check_options(options, specs, ests)
    base = fam.default_init(target)
    given_init = {} if init is None else init
    if not isinstance(given_init, dict):
        raise ValueError(f"fit(init={init!r}): init must be a dict of parameters by name ({', '.join(fam.names)})")
    init0 = fam.check_init(owner, given_init, base)
    extra = [fam.check_init(owner, r, r) for r in fam.random_inits(target, restarts - 1, seed)] if restarts > 1 else []
    inits = [init0] + extra
    fast = family == "normal" and optimizer in ("adam", "sgd") and all(e == "quadrature" for e in ests)
    if seed is not None:
        torch.manual_seed(seed)
    if fast:
        box1 = None if box is None else box[0]
        members = [Member(spec, dp, ini["loc"], ini["scale"]) for spec, dp in zip(specs, dps) for ini in inits]
        outs, info = run_batch(target, members, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule, tol=tol,
                               patience=patience, n=n, box=box1, polish=polish, callback=callback,
                               time_budget_s=time_budget_s)
    else:
        members = [GMember(spec, dp, est, ini) for spec, dp, est in zip(specs, dps, ests) for ini in inits]
        outs, info = run_generic(target, fam, members, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule,
                                 tol=tol, patience=patience, n=n, box=box, seed=seed, options=options,
                                 callback=callback, time_budget_s=time_budget_s, polish=polish)
    results = []
    for k, (m, o, est, ini) in enumerate(zip(members, outs, [e for e in ests for _ in inits], inits * len(specs))):
        traj = fam.flat(np.asarray(o["theta"], dtype=float))
        extra_info = {key: info[key] for key in ("grid_box", "grid_points", "grid_shape") if key in info}
        extra_info.update(o.get("info", {}))
        results.append(FitResult(
            family=family, divergence=m.spec.key,
            divergence_params={a: b for a, b in m.dparams.items() if not callable(b)},
            params={name: float(arr[-1]) for name, arr in traj.items()}, trajectory=traj,
            losses=np.asarray(o["losses"], dtype=float), status=o["status"], steps=len(o["losses"]) - 1,
            init=dict(ini), lr=lr, optimizer=optimizer, estimator=est, seed=seed,
            elapsed_s=info["elapsed_s"] / len(members),
            info={**extra_info, "restart": k % restarts, "batch": info["batch"],
                  "polish_steps": o.get("polish_steps", 0), "batch_elapsed_s": info["elapsed_s"],
                  "components": fam.K if family == "mixture" else None},
        ))
    for r in results:
        _apply_finiteness(target, fam, r)
    if not many and restarts == 1:
        return results[0]
    return FitBatch(results)


def _apply_finiteness(target, fam, r: "FitResult") -> None:
    """The integrability rule on the fitted model: a fit whose divergence is +∞ at its final
    parameters (e.g. Pearson χ² to a Cauchy target from any Normal model: p²/q is never integrable)
    reports ∞ with the reason instead of the grid's finite number."""
    from ..divergences.integrability import finiteness
    from ..divergences.registry import get as _get

    try:
        q = fam.model(r.params)
        v = finiteness(_get(r.divergence), target, q, dict(r.divergence_params))
    except (ValueError, TypeError, RuntimeError, KeyError):
        return
    r.info["finiteness"] = v.status
    if v.infinite and math.isfinite(r.final_loss):
        r.losses = np.asarray(r.losses, dtype=float).copy()
        r.losses[-1] = math.inf
        r.status = f"diverged: {v.reason}"


def _check_box(box, dim):
    """``box`` as [[lo, hi]] (1D, also given as [lo, hi]) or [[x_lo, x_hi], [y_lo, y_hi]] (2D)."""
    if box is None:
        return None
    try:
        arr = np.asarray(box, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and dim == 1 and arr.shape == (2,):
        arr = arr.reshape(1, 2)
    if arr is None or arr.shape != (dim, 2):
        want = "[lo, hi]" if dim == 1 else "[[x_lo, x_hi], [y_lo, y_hi]]"
        raise ValueError(f"fit(box={box!r}): box must be {want}")
    if not (np.isfinite(arr).all() and (arr[:, 1] > arr[:, 0]).all()):
        raise ValueError(f"fit(box={box!r}): box must be finite with hi > lo")
    return arr.tolist()


def _estimator_for(spec: DivergenceSpec, estimator: str, fam, target) -> str:
    from .sample_losses import SAMPLE_LOSSES

    owner = f"fit(divergence={spec.key!r}, estimator={estimator!r})"
    if estimator == "auto":
        if spec.from_logs is not None:
            estimator = "quadrature"
        elif spec.key not in SAMPLE_LOSSES and "mc" in spec.estimator_fns:
            estimator = "mc"  # e.g. fisher: an expectation under the target, no batched sample loss
        else:
            estimator = "samples"
    if estimator == "quadrature":
        if spec.from_logs is None:
            raise ValueError(f"{owner}: {spec.key} has no density formula for quadrature; use estimator='samples'")
        if not getattr(target, "has_density", True):
            raise ValueError(f"{owner}: the target {type(target).__name__} has no density; use a sample-based "
                             "divergence with estimator='samples'")
    elif estimator == "mc":
        if "mc" not in spec.estimator_fns:
            have = ", ".join(k for k in spec.estimator_fns) or "none"
            raise ValueError(f"{owner}: {spec.key} has no Monte Carlo estimator (its estimators: {have})")
        if not getattr(target, "has_density", True):
            raise ValueError(f"{owner}: the target {type(target).__name__} has no density; use a sample-based "
                             "divergence with estimator='samples'")
        if not fam.has_rsample:
            raise ValueError(f"{owner}: a {fam.describe()} has no reparameterized sampler (the component choice "
                             "is discrete); use estimator='quadrature' or 'samples'")
    elif estimator == "samples":
        if spec.key not in SAMPLE_LOSSES:
            raise ValueError(f"{owner}: no sample estimator for fitting {spec.key} (sample-based divergences: "
                             f"{', '.join(SAMPLE_LOSSES)}); density divergences use 'quadrature' or 'mc'")
        if spec.key == "wasserstein" and fam.dim != 1:
            raise ValueError(f"{owner}: exact Wasserstein fits are 1D only; use sliced_wasserstein or sinkhorn in 2D")
        if spec.key == "ksd" and not getattr(target, "has_density", True):
            raise ValueError(f"{owner}: KSD needs the target's score; {type(target).__name__} has no density")
    return estimator


def _check_options(options, specs, ests):
    from .generic import SAMPLE_OPTIONS

    if options is None:
        return
    if not isinstance(options, dict):
        raise ValueError(f"fit(options={options!r}): options must be a dict {{divergence key: {{option: value}}}}")
    keys = {s.key for s, e in zip(specs, ests) if e == "samples"}
    for k, o in options.items():
        if k not in keys or not isinstance(o, dict):
            raise ValueError(f"fit(options={options!r}): options are per divergence fitted with estimator='samples' "
                             f"(here: {', '.join(sorted(keys)) or 'none'})")
        bad = sorted(set(o) - set(SAMPLE_OPTIONS.get(k, {})))
        if bad:
            allowed = ", ".join(SAMPLE_OPTIONS.get(k, {})) or "none"
            raise ValueError(f"fit(options={{{k!r}: ...}}): unknown option {bad[0]!r} (allowed: {allowed})")


def _is_per_key(params) -> bool:
    return isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values())
