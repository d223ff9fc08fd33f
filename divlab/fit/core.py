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


def _random_inits(target: Distribution, restarts: int, seed: int | None, dtype=torch.float64) -> list[dict]:
    """Random starting points around the target's box: loc uniform on the middle half of the box,
    scale log-uniform between 1/40 and 1/8 of its width (drawn on the CPU: same on every device)."""
    box = target.bounds().detach()
    lo, hi = float(box[0, 0]), float(box[0, 1])
    c, wd = 0.5 * (lo + hi), hi - lo
    gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
    u = torch.rand(restarts, 2, generator=gen, dtype=dtype)
    locs = c + (u[:, 0] - 0.5) * wd / 2
    scales = torch.exp(math.log(wd / 40) + u[:, 1] * math.log(5.0))
    return [{"loc": float(a), "scale": float(b)} for a, b in zip(locs, scales)]


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


def fit(target: Distribution, family: str = "normal", divergence="kl", *, steps: int = 500, lr: float = 0.05,
        init: dict | None = None, seed: int | None = 0, estimator: str = "quadrature", optimizer: str = "adam",
        params: dict | None = None, n: int | None = None, tol: float = 1e-10, patience: int = 20,
        schedule: str = "cosine", callback=None, restarts: int = 1, polish: bool = True, box=None):
    """Fit a model of ``family`` to ``target`` by minimizing ``divergence``(target‖model).

    - ``divergence``: a registry key (``dl.catalogue()``), or a list of keys (each fitted from
      the same starting points; returns a list of results).
    - ``params``: the divergence's parameters, e.g. ``{"alpha": 0.5}``; with a list of
      divergences, either one dict for all or ``{key: {...}}`` per key.
    - ``init``: starting parameters, ``{"loc": .., "scale": ..}`` for ``normal``; default: the
      centre of the target's box with an eighth of its width.
    - ``restarts``: R starting points per divergence: the first is ``init``, the others are drawn
      with ``seed`` around the target's box. With R > 1 or a list of divergences the result is a
      :class:`FitBatch` (a list of results, divergence-major); otherwise one :class:`FitResult`.
    - Every fit of the call runs in one batch (one tensor program per step, see
      :mod:`divlab.fit.engine`); each member's path is the one it would follow alone on the same grid.
    - ``schedule``: "cosine" (lr decays to lr/100 over ``steps``) or "constant".
    - Stops a member early with status "converged" when its loss changes by less than
      ``tol·(1 + |loss|)`` for ``patience`` consecutive steps; "diverged: <reason>" when the loss
      becomes infinite or NaN (the trajectory keeps every finite step; the others go on).
    - ``polish``: after the first-order steps, damped Newton steps on each finished member
      (kept only where they lower the loss) take it to the optimum to ~1e-10; a member whose
      gradient then vanishes is "converged".
    - ``box``: ``[lo, hi]`` of the quadrature grid (default: the target and the starting models,
      padded by half on each side); ``n``: grid points (default 2049).
    """
    from .engine import Member, run_batch

    owner = "fit"
    if not isinstance(target, Distribution):
        raise ValueError(f"fit(target={target!r}): target must be a divlab distribution")
    if family not in FAMILIES:
        raise ValueError(f"fit(family={family!r}): family must be one of {', '.join(FAMILIES)}")
    if target.dim != 1:
        raise ValueError(f"fit(family={family!r}): the normal family is 1D but the target is {target.dim}D")
    many = isinstance(divergence, (list, tuple))
    divs = list(divergence) if many else [divergence]
    if not divs:
        raise ValueError("fit(divergence=[]): give at least one divergence")
    if estimator != "quadrature":
        raise ValueError(f"fit(estimator={estimator!r}): estimator must be 'quadrature'")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"fit(optimizer={optimizer!r}): optimizer must be one of {', '.join(OPTIMIZERS)}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"fit(schedule={schedule!r}): schedule must be 'cosine' or 'constant'")
    steps = _check_number(owner, "steps", steps, low=0, integer=True, high=MAX_STEPS)
    lr = _check_number(owner, "lr", lr, low=0, low_open=True)
    restarts = _check_number(owner, "restarts", restarts, low=1, integer=True, high=4096)
    tol = _check_number(owner, "tol", tol, low=0)
    patience = _check_number(owner, "patience", patience, low=1, integer=True)
    if box is not None:
        try:
            bl, bh = (float(x) for x in box)
        except (TypeError, ValueError):
            raise ValueError(f"fit(box={box!r}): box must be [lo, hi]") from None
        if not (math.isfinite(bl) and math.isfinite(bh) and bh > bl):
            raise ValueError(f"fit(box={box!r}): box must be finite with hi > lo")
        box = [bl, bh]
    specs, dps = [], []
    per_key = _is_per_key(params)
    for d in divs:
        spec: DivergenceSpec = d if isinstance(d, DivergenceSpec) else get(d)
        if spec.from_logs is None:
            raise ValueError(f"fit(divergence={spec.key!r}): only density divergences can be fitted by quadrature here")
        given = (params or {}).get(spec.key, {}) if per_key else params
        specs.append(spec)
        dps.append(spec.resolve_params(dict(given or {}), owner=f"fit(divergence={spec.key!r})"))
    base = _default_init(target)
    init = dict(base if init is None else init)
    unknown = sorted(set(init) - {"loc", "scale"})
    if unknown:
        raise ValueError(f"fit(init={init!r}): unknown parameter {unknown[0]!r} (allowed: loc, scale)")
    loc0 = _check_number("fit(init)", "loc", init.get("loc", base["loc"]))
    scale0 = _check_number("fit(init)", "scale", init.get("scale", base["scale"]), low=0, low_open=True)
    inits = [{"loc": loc0, "scale": scale0}] + (_random_inits(target, restarts - 1, seed) if restarts > 1 else [])
    if seed is not None:
        torch.manual_seed(seed)
    members = [Member(spec, dp, ini["loc"], ini["scale"]) for spec, dp in zip(specs, dps) for ini in inits]
    outs, info = run_batch(target, members, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule, tol=tol,
                           patience=patience, n=n, box=box, polish=polish, callback=callback)
    results = []
    for k, (m, o) in enumerate(zip(members, outs)):
        th = o["theta"]
        traj = {"loc": th[:, 0].copy(), "scale": np.exp(th[:, 1])}
        results.append(FitResult(
            family=family, divergence=m.spec.key,
            divergence_params={a: b for a, b in m.dparams.items() if not callable(b)},
            params={"loc": float(traj["loc"][-1]), "scale": float(traj["scale"][-1])}, trajectory=traj,
            losses=np.asarray(o["losses"], dtype=float), status=o["status"], steps=len(o["losses"]) - 1,
            init={"loc": m.loc, "scale": m.scale}, lr=lr, optimizer=optimizer, seed=seed,
            elapsed_s=info["elapsed_s"] / len(members),
            info={"grid_box": info["grid_box"], "grid_points": info["grid_points"], "restart": k % restarts,
                  "batch": info["batch"], "polish_steps": o.get("polish_steps", 0),
                  "batch_elapsed_s": info["elapsed_s"]},
        ))
    if not many and restarts == 1:
        return results[0]
    return FitBatch(results)


def _is_per_key(params) -> bool:
    return isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values())
