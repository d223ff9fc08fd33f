"""Fitting a model to a target by minimizing a divergence with torch optimizers.

First version: the 1D ``normal`` family (parameters loc and log scale), every density
divergence of the registry by grid quadrature, Adam with a cosine learning-rate decay,
trajectory and status recorded. The target's log-density is evaluated once on a fixed grid
that covers the target and the starting model; each step evaluates only the model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..distributions import Distribution, Normal
from ..divergences.api import infinite_reason, log_prob_on
from ..divergences.registry import DivergenceSpec, get
from ..divergences._util import wlogsumexp
from ..estimators.quadrature import make_grid

__all__ = ["fit", "FitResult", "FAMILIES"]

FAMILIES = ("normal",)
OPTIMIZERS = ("adam", "sgd")
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
        """The fitted model (or the model at trajectory index ``step``)."""
        if self.family == "normal":
            return Normal(float(self.trajectory["loc"][step]), float(self.trajectory["scale"][step]))
        raise ValueError(f"FitResult(family={self.family!r}): unknown family")  # pragma: no cover

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


def fit(target: Distribution, family: str = "normal", divergence="kl", *, steps: int = 500, lr: float = 0.05,
        init: dict | None = None, seed: int | None = 0, estimator: str = "quadrature", optimizer: str = "adam",
        params: dict | None = None, n: int | None = None, tol: float = 1e-10, patience: int = 20,
        schedule: str = "cosine", callback=None):
    """Fit a model of ``family`` to ``target`` by minimizing ``divergence``(target‖model).

    - ``divergence``: a registry key (``dl.catalogue()``), or a list of keys (each fitted from
      the same ``init``; returns a list of results).
    - ``params``: the divergence's parameters, e.g. ``{"alpha": 0.5}``.
    - ``init``: starting parameters, ``{"loc": .., "scale": ..}`` for ``normal``; default: the
      centre of the target's box with an eighth of its width.
    - ``schedule``: "cosine" (lr decays to lr/100 over ``steps``) or "constant".
    - Stops early with status "converged" when the loss changes by less than
      ``tol·(1 + |loss|)`` for ``patience`` consecutive steps; "diverged: <reason>" when the loss
      becomes infinite or NaN (the trajectory keeps every finite step).
    """
    if isinstance(divergence, (list, tuple)):
        if not divergence:
            raise ValueError("fit(divergence=[]): give at least one divergence")
        return [fit(target, family, d, steps=steps, lr=lr, init=init, seed=seed, estimator=estimator,
                    optimizer=optimizer, params=(params or {}).get(d, {}) if _is_per_key(params) else params,
                    n=n, tol=tol, patience=patience, schedule=schedule, callback=callback) for d in divergence]
    owner = "fit"
    if not isinstance(target, Distribution):
        raise ValueError(f"fit(target={target!r}): target must be a divlab distribution")
    if family not in FAMILIES:
        raise ValueError(f"fit(family={family!r}): family must be one of {', '.join(FAMILIES)}")
    if target.dim != 1:
        raise ValueError(f"fit(family={family!r}): the normal family is 1D but the target is {target.dim}D")
    spec: DivergenceSpec = divergence if isinstance(divergence, DivergenceSpec) else get(divergence)
    if spec.from_logs is None:
        raise ValueError(f"fit(divergence={spec.key!r}): only density divergences can be fitted by quadrature here")
    if estimator != "quadrature":
        raise ValueError(f"fit(estimator={estimator!r}): estimator must be 'quadrature'")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"fit(optimizer={optimizer!r}): optimizer must be one of {', '.join(OPTIMIZERS)}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"fit(schedule={schedule!r}): schedule must be 'cosine' or 'constant'")
    steps = _check_number(owner, "steps", steps, low=0, integer=True, high=MAX_STEPS)
    lr = _check_number(owner, "lr", lr, low=0, low_open=True)
    dparams = spec.resolve_params(dict(params or {}), owner=f"fit(divergence={spec.key!r})")
    init = dict(_default_init(target) if init is None else init)
    unknown = sorted(set(init) - {"loc", "scale"})
    if unknown:
        raise ValueError(f"fit(init={init!r}): unknown parameter {unknown[0]!r} (allowed: loc, scale)")
    base = _default_init(target)
    loc0 = _check_number("fit(init)", "loc", init.get("loc", base["loc"]))
    scale0 = _check_number("fit(init)", "scale", init.get("scale", base["scale"]), low=0, low_open=True)
    init = {"loc": loc0, "scale": scale0}

    dev, dt = target.device, target.dtype
    if seed is not None:
        torch.manual_seed(seed)
    # a fixed grid covering the target and the starting model, padded for the model to move
    grid = make_grid(target, Normal(loc0, scale0, device=dev, dtype=dt), pad=0.25, n=n or 2049)
    pts, w = grid.points, grid.weights
    with torch.no_grad():
        lp = log_prob_on(target, pts)
        lp = lp - wlogsumexp(lp, w)
    loc = torch.tensor(loc0, device=dev, dtype=dt, requires_grad=True)
    log_scale = torch.tensor(math.log(scale0), device=dev, dtype=dt, requires_grad=True)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([loc, log_scale], lr=lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr / 100)
             if schedule == "cosine" else None)

    def loss_fn():
        lq = Normal(loc, log_scale.exp(), validate=False).log_prob(pts)
        lmass = wlogsumexp(lq, w)
        return spec.from_logs(lp, lq - lmass, w, **dparams), lq, lmass

    locs, scales, losses = [], [], []
    status = "max_steps"
    t0 = time.perf_counter()
    calm = 0
    box = [float(grid.axes[0][0]), float(grid.axes[0][-1])]
    for step in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        loss, lq, lmass = loss_fn()
        lval = float(loss.detach())
        if not math.isfinite(float(lmass.detach())):
            status = (f"diverged: the model q left the computation grid [{box[0]:.3g}, {box[1]:.3g}] at step {step} "
                      f"(loc = {float(loc):.4g}, scale = {float(log_scale.exp()):.4g})")
            break
        if math.isnan(lval):
            status = f"diverged: loss is NaN after step {step} at lr = {lr:g}"
            break
        if math.isinf(lval):
            why = infinite_reason(spec, lp, (lq - lmass).detach(), grid, dparams)
            status = f"diverged: at step {step}, {why}"
            break
        locs.append(float(loc.detach()))
        scales.append(float(log_scale.detach().exp()))
        losses.append(lval)
        if callback is not None:
            callback(step, {"loc": locs[-1], "scale": scales[-1]}, lval)
        if step == steps:
            break
        if step > 0 and abs(losses[-1] - losses[-2]) <= tol * (1 + abs(lval)):
            calm += 1
            if calm >= patience:
                status = "converged"
                break
        else:
            calm = 0
        loss.backward()
        gl, gs = loc.grad, log_scale.grad
        if not (torch.isfinite(gl) and torch.isfinite(gs)):
            status = f"diverged: gradient is not finite after step {step} at lr = {lr:g}"
            break
        opt.step()
        if sched is not None:
            sched.step()
        if not (torch.isfinite(loc.detach()) and torch.isfinite(log_scale.detach())) or float(log_scale) > 700:
            status = f"diverged: parameters overflowed after step {step} at lr = {lr:g}"
            break
    elapsed = time.perf_counter() - t0
    if not losses:  # diverged at the very start: record the start so the trajectory is never empty
        locs, scales, losses = [loc0], [scale0], [float("inf")]
    traj = {"loc": np.asarray(locs), "scale": np.asarray(scales)}
    return FitResult(
        family=family, divergence=spec.key, divergence_params={k: v for k, v in dparams.items() if not callable(v)},
        params={"loc": locs[-1], "scale": scales[-1]}, trajectory=traj, losses=np.asarray(losses), status=status,
        steps=len(losses) - 1, init=init, lr=lr, optimizer=optimizer, seed=seed, elapsed_s=elapsed,
        info={"grid_box": box, "grid_points": grid.n},
    )


def _is_per_key(params) -> bool:
    return isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values())
