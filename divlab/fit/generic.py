"""The batched engine for every model family and estimator (the general path of ``dl.fit``).

Same design as :mod:`divlab.fit.engine` (the specialised, fastest path for the 1D normal family
by quadrature): a batch of B members (divergence, its parameters, estimator, starting point)
lives in one tensor ``theta`` (B, P) of unconstrained parameters (:mod:`divlab.fit.families`);
each step evaluates all B models at once, computes each distinct (divergence, parameters,
estimator) group on its slice of the batch (a loop over groups, never over members), and takes
one optimizer step on the summed loss. Members are independent, so with Adam or SGD every
member follows exactly the path it would follow alone.

Estimators:

- ``quadrature``: the target's log-density once on a shared grid (1D or 2D tensor-product
  trapezoid, :func:`divlab.estimators.make_grid`), the B models' log-densities per step; both
  normalized on the grid. A model that leaves the grid (its mass there differs from 1 by more
  than ``MASS_TOL``) or becomes narrower than the grid spacing stops with that reason.
- ``mc``: the registry's Monte Carlo estimator (``spec.estimator_fns["mc"]``) on the batched
  model distribution, with the same seed every step (common random numbers: a deterministic
  objective whose optimum is within O(1/√n) of the true one). The draws of a member depend on
  its position in the batch (the batch is sampled as one tensor), so an mc member's path is
  statistically, not numerically, the one it would follow alone.
- ``samples``: a fixed target cloud against reparameterized model clouds
  (:mod:`divlab.fit.sample_losses`).

Optimizers: ``adam`` (default) and ``sgd`` (per-element, as in the normal engine), and
``lbfgs``: :class:`torch.optim.LBFGS` with a strong-Wolfe line search on the *sum* of the
members' losses. The members are independent, so the sum's minimum is every member's minimum,
but LBFGS's curvature pairs and line search are shared by the batch: a member's path (not its
end point) depends on its batch-mates. One recorded step = one LBFGS iteration; ``lr`` is the
line search's first trial step (no schedule); when the line search finds no step the curvature
history is dropped (the next direction is the steepest descent).

Stops: per member "converged" (loss change below ``tol·(1 + |loss|)`` for ``patience`` steps),
"max_steps", "diverged: <reason>" (loss NaN/inf, gradient not finite, parameters overflowed,
left the grid); for the whole batch "stopped: wall-clock budget of X s reached after step N"
(``time_budget_s``) and "stopped: by the caller after step N" (``callback`` returned False).
Every returned trajectory is finite and non-empty.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..distributions import Distribution
from ..divergences._samples import to_cloud
from ..divergences._util import wlogsumexp
from ..divergences.api import infinite_reason, log_prob_on
from ..divergences.registry import DivergenceSpec
from ..estimators.quadrature import LIMITS, Grid, make_grid
from . import sample_losses as sl
from .engine import (ADAM_EPS, BETA1, BETA2, CHECK_EVERY, CONVERGED, GRAD_BAD, LEFT_GRID, LOSS_INF, LOSS_NAN,
                     MASS_TOL, MAX_STEPS, OK, OVERFLOW, STOPPED_BUDGET, STOPPED_CALLER, _lr_factor, _threads_for,
                     stop_status)
from .families import Family

__all__ = ["GMember", "run_generic", "prepare_generic_grid", "ESTIMATORS", "DEFAULT_SAMPLES", "DEFAULT_MC"]

ESTIMATORS = ("quadrature", "mc", "samples")
#: points per side of the samples estimator (the target cloud, and each model cloud: a mixture's
#: components share them)
DEFAULT_SAMPLES = 256
#: draws of the mc estimator
DEFAULT_MC = 2048
#: |parameter| above which a member is declared overflowed
MAX_RAW = 700.0
#: half-width of a starting model inside the 2D grid, in its standard deviations
START_SDS = 5.0
PAD_2D = 0.25
POINTS_PER_SCALE_2D = 4.0
MAX_N_2D = 193
#: the Newton polish runs for families with at most this many unconstrained parameters
MAX_POLISH_PARAMS = 15
BAD_TRIAL = 1e6  # LBFGS: the loss reported for a trial point where a member fails
NARROW = 1.0  # a model narrower than this many grid spacings is no longer resolved

SAMPLE_OPTIONS = {
    "sinkhorn": {"tol": 1e-4, "max_iter": 10, "scaling": 0.5, "warm": True},
    "sliced_wasserstein": {},
    "wasserstein": {},
    "mmd": {},
    "energy": {},
    "ksd": {},
}


@dataclass
class GMember:
    """One fit of a generic batch."""

    spec: DivergenceSpec
    dparams: dict
    estimator: str
    init: dict  # flat parameters
    lr: float | None = None


def _group_key(m: GMember):
    items = []
    for k, v in sorted(m.dparams.items()):
        items.append((k, ("callable", id(v)) if callable(v) else v))
    return (m.spec.key, tuple(items), m.estimator)


class _Col(Distribution):
    """A target whose draws get a singleton batch axis ((n, 1[, 2])), so that the registry's Monte
    Carlo estimators broadcast one set of target draws against B batched models."""

    def __init__(self, base: Distribution):
        self.base, self.dim = base, base.dim
        self.has_rsample = base.has_rsample
        self.has_density = getattr(base, "has_density", True)
        self._set_device(base.bounds())

    def log_prob(self, x):
        return self.base.log_prob(x)

    def _rsample(self, n):
        return self.base._rsample(n).unsqueeze(1)

    def _sample(self, n):
        return self.base._sample(n).unsqueeze(1)

    def bounds(self):
        return self.base.bounds()

    def min_scale(self):
        return self.base.min_scale()

    def to_spec(self):
        return self.base.to_spec()


class _Objective:
    """Each member's loss (B,) at parameters theta (B, P), group by group."""

    def __init__(self, target: Distribution, fam: Family, members: list[GMember], grid: Grid | None, *,
                 n: int | None, seed: int | None, options: dict):
        self.target, self.fam, self.members, self.grid = target, fam, members, grid
        self.dev, self.dt = target.device, target.dtype
        self.seed = 0 if seed is None else int(seed)
        groups: dict = {}
        for i, m in enumerate(members):
            groups.setdefault(_group_key(m), []).append(i)
        self.groups = []
        order = []
        self.quad = any(m.estimator == "quadrature" for m in members)
        self.qmask = torch.tensor([m.estimator == "quadrature" for m in members], device=self.dev)
        if self.quad:
            self.pts = grid.points.to(device=self.dev, dtype=self.dt)
            self.w = grid.weights.to(device=self.dev, dtype=self.dt)
            self.xq = self.pts if fam.dim == 1 else (self.pts[:, 0].contiguous(), self.pts[:, 1].contiguous())
            with torch.no_grad():
                lp = log_prob_on(target, self.pts)
                self.lp = (lp - wlogsumexp(lp, self.w)).reshape(-1, 1)
        gen = torch.Generator().manual_seed(self.seed)
        for gi, idx in enumerate(groups.values()):
            m = members[idx[0]]
            sel = torch.tensor(idx, device=self.dev)
            g = {"spec": m.spec, "dparams": m.dparams, "estimator": m.estimator, "sel": sel, "idx": idx}
            if m.estimator == "quadrature":
                g["lp"] = self.lp.expand(-1, len(idx))
            elif m.estimator == "mc":
                g["fn"] = m.spec.estimator_fns["mc"]
                g["p"] = _Col(target)
                g["n"] = n or DEFAULT_MC
                g["seed"] = self.seed * 7919 + gi
            else:
                self._prepare_samples(g, n, gen, options.get(m.spec.key, {}))
            self.groups.append(g)
            order.extend(idx)
        self.inverse = None
        if order != list(range(len(members))):
            self.inverse = torch.argsort(torch.tensor(order, device=self.dev))

    def _prepare_samples(self, g, n, gen, opts):
        key = g["spec"].key
        m = n or DEFAULT_SAMPLES
        owner = f"fit(divergence={key!r}, estimator='samples')"
        x, a = to_cloud(self.target, m, self.seed, owner)
        g["x"], g["a"] = x.detach().to(device=self.dev, dtype=self.dt), a.detach().to(device=self.dev, dtype=self.dt)
        # a mixture's cloud splits the m points among its K components (weights w_k / m_k)
        g["eps"] = self.fam.noise(max(m // self.fam.K, 8), gen, torch.float64).to(device=self.dev, dtype=self.dt)
        g["opts"] = dict(SAMPLE_OPTIONS.get(key, {}), **opts)
        g["cache"] = {}
        if key == "sinkhorn":
            g["state"] = sl.SinkhornState()
        if key == "sliced_wasserstein":
            L = int(g["dparams"].get("n_projections", 100))
            if self.fam.dim == 1:
                dirs = torch.ones((1, 1), dtype=torch.float64)
            else:
                pg = torch.Generator().manual_seed(self.seed + 1)
                phi = torch.rand(L, generator=pg, dtype=torch.float64) * (2 * math.pi)
                dirs = torch.stack([phi.cos(), phi.sin()], -1)
            g["dirs"] = dirs.to(device=self.dev, dtype=self.dt)

    def log_q(self, theta):
        lq = self.fam.log_prob(theta, self.xq)
        lmass = wlogsumexp(lq, self.w)
        return lq - lmass, lmass

    def __call__(self, theta):
        """(values (B,), log model mass on the grid (B,), 0 for non-quadrature members)."""
        vals = []
        lmass = torch.zeros(theta.shape[0], device=self.dev, dtype=self.dt)
        lqn = None
        if self.quad:
            lqn, lm = self.log_q(theta)
            lmass = torch.where(self.qmask, lm, lmass)
        for g in self.groups:
            th = theta[g["sel"]]
            est, spec, dp = g["estimator"], g["spec"], g["dparams"]
            if est == "quadrature":
                v = spec.from_logs(g["lp"], lqn[:, g["sel"]], self.w, **dp)
            elif est == "mc":
                q = self.fam.dist(th)
                try:
                    v = g["fn"](g["p"], q, n=g["n"], seed=g["seed"], options={}, **dp).value
                except ValueError as exc:
                    raise ValueError(f"fit(divergence={spec.key!r}, estimator='mc'): the registry's Monte Carlo "
                                     f"estimator does not take a batch of models ({exc}); use another estimator") from None
            else:
                v = self._samples(g, th)
            vals.append(v.reshape(-1))
        v = vals[0] if len(vals) == 1 else torch.cat(vals)
        return (v if self.inverse is None else v[self.inverse]), lmass

    def _samples(self, g, th):
        key, dp, o = g["spec"].key, g["dparams"], g["opts"]
        if self.fam.key == "student_t":
            y, b = self.fam.cloud(th, g["eps"], gamma_seed=self.seed)
        else:
            y, b = self.fam.cloud(th, g["eps"])
        x, a = g["x"], g["a"]
        if key == "mmd":
            return sl.batched_mmd2(x, a, y, b, kernel=dp["kernel"], bandwidth=dp["bandwidth"],
                                   statistic=dp["statistic"], cache=g["cache"])
        if key == "energy":
            return sl.batched_mmd2(x, a, y, b, kernel="energy", bandwidth=1.0, statistic=dp["statistic"],
                                   cache=g["cache"])
        if key == "sinkhorn":
            return sl.batched_sinkhorn(x, a, y, b, epsilon=dp["epsilon"], debias=bool(dp["debias"]),
                                       state=g["state"], tol=float(o["tol"]), max_iter=int(o["max_iter"]),
                                       scaling=float(o["scaling"]), warm=bool(o["warm"]))
        if key == "wasserstein":
            order = int(dp["order"])
            return sl._root(sl.batched_w1d(x[:, 0], a, y[..., 0], b, order), order)
        if key == "sliced_wasserstein":
            return sl.batched_sliced(x, a, y, b, int(dp["order"]), g["dirs"])
        if key == "ksd":
            with torch.enable_grad():
                yy = y if y.requires_grad else y.detach().requires_grad_(True)
                lp = self.target.log_prob(yy if self.fam.dim == 2 else yy[..., 0])
                (s,) = torch.autograd.grad(lp.sum(), yy, create_graph=True)
            return sl.batched_ksd2(yy, b, s, bandwidth=dp["bandwidth"], statistic=dp["statistic"])
        raise ValueError(f"fit(divergence={key!r}, estimator='samples'): no batched sample estimator")  # pragma: no cover

    def member_info(self) -> list[dict]:
        """Per member: the samples estimator's sizes, and Sinkhorn's iteration counts (total over
        the run, shared by the member's group) and its last marginal error."""
        out = [dict() for _ in self.members]
        for g in self.groups:
            d = {}
            if g["estimator"] == "samples":
                d = {"samples_target": int(g["x"].shape[0]), "samples_model": int(g["eps"].shape[0] * g["eps"].shape[1])}
            elif g["estimator"] == "mc":
                d = {"mc_draws": g["n"]}
            st = g.get("state")
            if st is not None:
                d.update(sinkhorn_iterations=st.iterations, sinkhorn_solves=st.calls,
                         sinkhorn_marginal_error=st.last_error, sinkhorn_unconverged_solves=st.not_converged)
            for i in g["idx"]:
                out[i] = dict(d)
        return out


def prepare_generic_grid(target: Distribution, fam: Family, inits: list[dict], n=None, box=None) -> Grid:
    """The shared quadrature grid (interactive speed first: give ``n`` or ``box`` for more).
    1D: the target and every starting model, padded by half the width on each side (as the
    normal engine), 2049 points by default. 2D: the target's box united with ±``START_SDS`` standard deviations of every starting model, padded by ``PAD_2D``
    of its width on each side (so that a forward-KL optimum, as wide as the whole target, is not
    truncated); ``POINTS_PER_SCALE_2D`` points per smallest scale within [129, ``MAX_N_2D``]
    per axis (the trapezoid rule on a Gaussian of width σ errs by ~exp(−2π²σ²/h²): 4 points per σ
    leave ~1e-137), or ``n``. The box is a compromise with speed: a forward-KL optimum as wide as
    a three-blob target keeps ~5 sd inside it (mass lost ~1e-7, optimum moved by ~1e-6); give
    ``box`` for more."""
    dev, dt = target.device, target.dtype
    if box is not None:
        return make_grid(target, box=box, n=n or (2049 if fam.dim == 1 else 129), device=dev, dtype=dt)
    starts = [fam.model(f, device=dev, dtype=dt) for f in _distinct(inits)]
    if fam.dim == 1:
        if n is None:  # 2049 points, more where the box is wide for the smallest scale (heavy tails)
            n = max(2049, make_grid(target, *starts, pad=0.5).n)
        return make_grid(target, *starts, pad=0.5, n=n)
    tb = target.bounds().detach().to(device="cpu", dtype=torch.float64)
    lo, hi = tb[:, 0].clone(), tb[:, 1].clone()
    for d in starts:
        sb = d.bounds().detach().to(device="cpu", dtype=torch.float64)  # ±8 sd
        c, half = sb.mean(-1), (sb[:, 1] - sb[:, 0]) / 2 * (START_SDS / 8.0)
        lo, hi = torch.minimum(lo, c - half), torch.maximum(hi, c + half)
    width = hi - lo
    lo, hi = lo - PAD_2D * width, hi + PAD_2D * width
    if n is None:
        scale = min([target.min_scale()] + [d.min_scale() for d in starts])
        need = int(math.ceil(float((hi - lo).max()) / max(scale, 1e-300) * POINTS_PER_SCALE_2D))
        n = min(max(need, LIMITS[2]["min_n"]), MAX_N_2D)
    return make_grid(box=torch.stack([lo, hi], -1).tolist(), n=n, device=dev, dtype=dt)


def _distinct(inits):
    seen, out = set(), []
    for f in inits:
        k = tuple(sorted(f.items()))
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out


def run_generic(target: Distribution, fam: Family, members: list[GMember], *, steps: int, lr: float,
                optimizer: str = "adam", schedule: str = "cosine", tol: float = 1e-10, patience: int = 20,
                n: int | None = None, box=None, seed: int | None = 0, options: dict | None = None, callback=None,
                time_budget_s: float | None = None, grid: Grid | None = None, polish: bool = True,
                polish_steps: int = 30):
    """Run every member; returns (per-member dicts with status, theta (T, P), losses (T,), code,
    batch info). See the module docstring and :func:`divlab.fit.core.fit`."""
    if grid is None and any(m.estimator == "quadrature" for m in members):
        grid = prepare_generic_grid(target, fam, [m.init for m in members], n=n, box=box)
    # elements per elementwise pass: grid points per quadrature member, n² (kernel / cost matrices)
    # per samples member, n per mc member; small problems run on one CPU thread (engine._threads_for)
    m = n or DEFAULT_SAMPLES
    size = sum((grid.n if m_.estimator == "quadrature" else (m * m if m_.estimator == "samples" else (n or DEFAULT_MC)))
               for m_ in members)
    with _threads_for(size, target.device):
        return _run(target, fam, members, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule, tol=tol,
                    patience=patience, n=n, seed=seed, options=options or {}, callback=callback,
                    time_budget_s=time_budget_s, grid=grid, polish=polish, polish_steps=polish_steps)


def _run(target, fam, members, *, steps, lr, optimizer, schedule, tol, patience, n, seed, options, callback,
         time_budget_s, grid, polish=True, polish_steps=30):
    B = len(members)
    dev, dt = target.device, target.dtype
    obj = _Objective(target, fam, members, grid, n=n, seed=seed, options=options)
    theta0 = torch.tensor([fam.raw(m.init) for m in members], device=dev, dtype=dt)
    theta = theta0.clone().requires_grad_(True)
    lrs = [lr if m.lr is None else float(m.lr) for m in members]
    lr_vec = torch.tensor(lrs, device=dev, dtype=dt).reshape(-1, 1)
    m1, m2 = torch.zeros_like(theta), torch.zeros_like(theta)
    lbfgs = None
    if optimizer == "lbfgs":
        lbfgs = torch.optim.LBFGS([theta], lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-12, tolerance_change=1e-14)
    h_min = min(grid.spacing) if grid is not None else 0.0
    qmask = torch.tensor([m.estimator == "quadrature" for m in members], device=dev)

    active = torch.ones(B, dtype=torch.bool, device=dev)
    code = torch.full((B,), OK, dtype=torch.long, device=dev)
    last = torch.full((B,), -1, dtype=torch.long, device=dev)
    calm = torch.zeros(B, dtype=torch.long, device=dev)
    prev = torch.zeros(B, dtype=dt, device=dev)
    hist_theta, hist_loss = [], []
    t0 = time.perf_counter()
    stop_code, stop_step = None, None
    step = 0
    for step in range(steps + 1):
        theta.grad = None
        with torch.enable_grad():
            vals, lmass = obj(theta)
        v = vals.detach()
        hist_theta.append(theta.detach().clone())
        hist_loss.append(v)
        lm = lmass.detach()
        left = qmask & ~(lm.abs() <= MASS_TOL)
        if h_min > 0:
            left = left | (qmask & (fam.min_scale(theta.detach()) < NARROW * h_min))
        nan, inf = torch.isnan(v), torch.isinf(v)
        fail = active & (left | nan | inf)
        code = torch.where(fail, torch.where(left, LEFT_GRID, torch.where(nan, LOSS_NAN, LOSS_INF)), code)
        last = torch.where(fail, step - 1, last)
        active = active & ~fail
        last = torch.where(active, step, last)
        if callback is not None and _callback(callback, step, fam, theta.detach(), v, B) is False:
            stop_code, stop_step = STOPPED_CALLER, step
        elif time_budget_s is not None and time.perf_counter() - t0 > time_budget_s and step < steps:
            stop_code, stop_step = STOPPED_BUDGET, step
        if stop_code is not None:
            code = torch.where(active, stop_code, code)
            active = torch.zeros_like(active)
            break
        if step == steps:
            code = torch.where(active, MAX_STEPS, code)
            break
        if step > 0:
            quiet = (v - prev).abs() <= tol * (1 + v.abs())
            calm = torch.where(quiet, calm + 1, torch.zeros_like(calm))
            done = active & (calm >= patience)
            code = torch.where(done, CONVERGED, code)
            active = active & ~done
        prev = v
        if step % CHECK_EVERY == 0 and not bool(active.any()):
            break
        if lbfgs is not None:
            _lbfgs_step(lbfgs, obj, theta, active, lr)
            with torch.no_grad():
                new = theta.detach().clone()
                if bool(torch.equal(new, hist_theta[-1])):
                    # the line search found no step along the quasi-Newton direction: forget the
                    # curvature pairs (the next direction is the steepest descent)
                    lbfgs.state.clear()
                over = active & (~torch.isfinite(new).all(-1) | (new.abs() > MAX_RAW).any(-1))
                code = torch.where(over, OVERFLOW, code)
                active = active & ~over
                # frozen members keep their parameters (LBFGS moves the whole vector)
                keep = torch.where(active[:, None], new, hist_theta[-1])
                theta.copy_(keep)
            continue
        total = torch.where(active, vals, torch.zeros_like(vals)).sum()
        (g,) = torch.autograd.grad(total, theta, allow_unused=True)
        if g is None:
            g = torch.zeros_like(theta)
        gbad = active & ~torch.isfinite(g).all(-1)
        code = torch.where(gbad, GRAD_BAD, code)
        active = active & ~gbad
        a2 = active.reshape(-1, 1)
        g = torch.where(a2, g, torch.zeros_like(g))
        lr_t = lr_vec * _lr_factor(step, steps, schedule)
        with torch.no_grad():
            if optimizer == "adam":
                t = step + 1
                m1.mul_(BETA1).add_(g, alpha=1 - BETA1)
                m2.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
                denom = (m2.sqrt() / math.sqrt(1 - BETA2**t)).add_(ADAM_EPS)
                new = theta - (lr_t / (1 - BETA1**t)) * m1 / denom
            else:
                new = theta - lr_t * g
            over = active & (~torch.isfinite(new).all(-1) | (new.abs() > MAX_RAW).any(-1))
            code = torch.where(over, OVERFLOW, code)
            active = active & ~over
            theta.copy_(torch.where(active.reshape(-1, 1), new, theta))
    elapsed = time.perf_counter() - t0
    H = torch.stack(hist_theta).cpu().numpy()  # (T, B, P)
    L = torch.stack(hist_loss).cpu().numpy()
    code_np, last_np = code.cpu().numpy(), last.cpu().numpy()
    out = []
    for i, m in enumerate(members):
        c, li = int(code_np[i]), int(last_np[i])
        status = _status(c, li, lrs[i], obj, fam, m, H, i, grid, time_budget_s, stop_step)
        if li < 0:
            traj = theta0[i:i + 1].cpu().numpy()
            losses = np.array([math.inf])
        else:
            traj, losses = H[: li + 1, i], L[: li + 1, i]
        out.append({"status": status, "theta": traj, "losses": losses, "code": c})
    for o, mi in zip(out, obj.member_info()):
        o["info"] = mi
    if polish and fam.n_raw <= MAX_POLISH_PARAMS and stop_code is None:
        _polish(target, fam, members, out, grid, polish_steps)
    info = {"elapsed_s": elapsed, "loop_steps": step, "batch": B}
    if grid is not None:
        info["grid_box"] = [[float(a[0]), float(a[-1])] for a in grid.axes]
        info["grid_points"] = grid.n
        info["grid_shape"] = list(grid.shape)
        if grid.dim == 1:
            info["grid_box"] = info["grid_box"][0]
    return out, info


def _lbfgs_step(opt, obj, theta, active, lr_t):
    for group in opt.param_groups:
        group["lr"] = lr_t

    def closure():
        opt.zero_grad()
        with torch.enable_grad():
            vals, _ = obj(theta)
            ok = active & torch.isfinite(vals)
            total = torch.where(ok, vals, torch.zeros_like(vals)).sum()
            total.backward()
        if bool((active & ~ok).any()):
            # a trial point where some member's loss is infinite or NaN: report it as much worse
            # (finite, so that the line search backtracks instead of producing NaN). A member that
            # leaves the grid is caught after the step, like with the other optimizers.
            total = total.detach() + BAD_TRIAL * (1 + total.detach().abs())
        theta.grad = torch.where(active[:, None] & torch.isfinite(theta.grad), theta.grad,
                                 torch.zeros_like(theta.grad))
        return total

    try:
        opt.step(closure)
    except RuntimeError:  # a singular line search (e.g. NaN in a trial point): leave theta as it was
        pass


def _callback(callback, step, fam, theta, v, B):
    flat = fam.flat(theta.cpu().numpy())
    if B == 1:
        return callback(step, {k: float(a[0]) for k, a in flat.items()}, float(v[0]))
    return callback(step, flat, v.cpu().numpy())


def _status(c, li, lr, obj, fam, m, H, i, grid, budget, stop_step) -> str:
    if c == CONVERGED:
        return "converged"
    if c == MAX_STEPS:
        return "max_steps"
    if c in (STOPPED_BUDGET, STOPPED_CALLER):
        return stop_status(c, budget, stop_step)
    if c in (GRAD_BAD, OVERFLOW):
        what = "gradient is not finite" if c == GRAD_BAD else "parameters overflowed"
        return f"diverged: {what} after step {li} at lr = {lr:g}"
    fail_step = li + 1
    th = H[fail_step, i]
    desc = ", ".join(f"{k} = {float(a):.4g}" for k, a in fam.flat(th).items())
    if c == LEFT_GRID:
        box = " × ".join(f"[{float(a[0]):.3g}, {float(a[-1]):.3g}]" for a in grid.axes)
        h = min(grid.spacing)
        th_t = torch.tensor(th[None], device=obj.dev, dtype=obj.dt)
        if float(fam.min_scale(th_t)[0]) < 2 * h:
            return (f"diverged: the model q became narrower than the grid spacing h = {h:.3g} at step {fail_step} "
                    f"({desc}) at lr = {lr:g}")
        return f"diverged: the model q left the computation grid {box} at step {fail_step} ({desc}) at lr = {lr:g}"
    if c == LOSS_NAN:
        return f"diverged: loss is NaN after step {fail_step} at lr = {lr:g}"
    if m.estimator == "quadrature":
        th_t = torch.tensor(th[None], device=obj.dev, dtype=obj.dt)
        with torch.no_grad():
            lqn, _ = obj.log_q(th_t)
        why = infinite_reason(m.spec, obj.lp.reshape(-1), lqn[:, 0], grid, m.dparams)
        return f"diverged: at step {fail_step}, {why}"
    label = m.spec.label(**{k: v for k, v in m.dparams.items() if not callable(v)})
    return f"diverged: at step {fail_step}, {label} became infinite ({m.estimator} estimate; {desc})"


def _polish(target, fam, members, out, grid, max_iter):
    """Damped Newton (Levenberg–Marquardt) on each finished quadrature member, batched, as in
    :func:`divlab.fit.engine._polish` with P × P blocks: members are independent, so P backward
    passes of the gradient give every member's Hessian block. A step is kept only where it lowers
    the member's loss and keeps the model on the grid; accepted steps extend the trajectory; a
    member whose gradient falls below a dtype-aware threshold is "converged"."""
    idx = [i for i, (m, o) in enumerate(zip(members, out))
           if m.estimator == "quadrature" and o["code"] in (CONVERGED, MAX_STEPS)]
    if not idx or max_iter <= 0 or grid is None:
        return
    sub = _Objective(target, fam, [members[i] for i in idx], grid, n=None, seed=0, options={})
    dev, dt = sub.dev, sub.dt
    P = fam.n_raw
    theta = torch.tensor(np.stack([out[i]["theta"][-1] for i in idx]), device=dev, dtype=dt)
    k = len(idx)
    lam = torch.full((k,), 1e-3, device=dev, dtype=dt)
    eye = torch.eye(P, device=dev, dtype=dt)
    gtol = 1e-9 if dt == torch.float64 else 1e-4
    h_min = min(grid.spacing)
    done = torch.zeros(k, dtype=torch.bool, device=dev)
    extra_t, extra_l, taken = [], [], []
    for _ in range(max_iter):
        th = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            v, _ = sub(th)
            (g,) = torch.autograd.grad(v.sum(), th, create_graph=True)
            rows = [torch.autograd.grad(g[:, j].sum(), th, retain_graph=j < P - 1)[0] for j in range(P)]
        g = g.detach()
        Hm = torch.stack(rows, dim=1).detach()
        Hm = 0.5 * (Hm + Hm.transpose(1, 2))
        v = v.detach()
        ok = torch.isfinite(v) & torch.isfinite(g).all(-1) & torch.isfinite(Hm).flatten(1).all(-1)
        small = g.norm(dim=-1) <= gtol * (1 + v.abs())
        done = done | (ok & small)
        live = ok & ~done
        if not bool(live.any()):
            break
        emin = torch.linalg.eigvalsh(torch.where(live[:, None, None], Hm, eye)).min(-1).values
        shift = torch.clamp(-emin, min=0) * 1.01
        A = Hm + ((lam + shift) * (1 + Hm.diagonal(dim1=1, dim2=2).abs().max(-1).values))[:, None, None] * eye
        A = torch.where(live[:, None, None], A, eye)
        d = -torch.linalg.solve(A, torch.where(live[:, None], g, torch.zeros_like(g)))
        pred = -(g * d).sum(-1)
        flat = live & (emin > 0) & (pred <= 16 * torch.finfo(dt).eps * (1 + v.abs()))
        done = done | flat
        live = live & ~flat
        trial = theta + d
        with torch.no_grad():
            vt, lmt = sub(trial)
            on_grid = (lmt.abs() <= MASS_TOL) & (fam.min_scale(trial) >= NARROW * h_min)
        better = live & torch.isfinite(vt) & on_grid & (vt <= v)
        theta = torch.where(better[:, None], trial, theta)
        lam = torch.where(better, lam / 10, lam * 10).clamp(1e-12, 1e12)
        extra_t.append(theta.clone())
        extra_l.append(torch.where(better, vt, v))
        taken.append(better)
    if not extra_t:
        return
    T = torch.stack(extra_t).cpu().numpy()
    Lx = torch.stack(extra_l).cpu().numpy()
    took = torch.stack(taken).cpu().numpy()
    done_np = done.cpu().numpy()
    for j, i in enumerate(idx):
        rows_j = np.nonzero(took[:, j])[0]
        o = out[i]
        if len(rows_j):
            o["theta"] = np.concatenate([o["theta"], T[rows_j, j]])
            o["losses"] = np.concatenate([o["losses"], Lx[rows_j, j]])
        o["polish_steps"] = int(len(rows_j))
        if done_np[j] and o["code"] == MAX_STEPS:
            o["status"] = "converged"
