"""The batched fitting engine: many fits of the 1D normal family solved as one program.

A batch holds B members, each a (divergence, divergence parameters, starting point). Their
parameters live in one tensor ``theta`` of shape (B, 2) = (loc, log scale); every step
evaluates all B models on the shared quadrature grid at once, computes each distinct
divergence on its slice of the batch (a loop over divergence keys, never over members: the
members of one key share one call, their parameters stacked as a column, e.g. a grid of α),
and takes one Adam (or SGD) step per member. Members are independent and the optimizer is
per element, so every member follows exactly the path it would follow alone.

The gradient is analytic, without an autograd graph (:meth:`_Batch.step`): each registry entry
gives its value and its derivative with respect to the model's normalized log-density on the
grid (``spec.grad_rule``), and the chain rule through the normal family's log-density is three
weighted sums per member. One step is then about twenty elementwise passes over the (B, N)
grid values, one exp among them. Entries without a rule (Cauchy–Schwarz, a user's f) and
targets that vanish somewhere on the grid (log p = −inf, where the rules do not apply) take
the derivative by autograd of ``from_logs``; tests/test_engine.py checks the two against
each other.

Per-member bookkeeping stays on the device (no Python-side synchronisation in the hot loop):
a member whose loss becomes infinite or NaN, whose gradient is not finite or whose model leaves
the grid is *frozen* (its parameters stop updating) and reports why; a member whose loss has
stopped changing is frozen as "converged"; the others go on.

After the first-order phase an optional Newton polish (damped, 2×2 per member, a step is
kept only where it lowers the loss) takes each finished member to the optimum to ~1e-10:
Adam with a decaying rate gets close fast but creeps at the end.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..device import one_cpu_thread
from ..distributions import Distribution, Normal
from ..distributions.base import LOG_2PI
from ..divergences._util import wlogsumexp
from ..divergences.api import infinite_reason, log_prob_on
from ..divergences.registry import DivergenceSpec
from ..estimators.quadrature import Grid, make_grid

__all__ = ["Member", "run_batch", "prepare_grid", "batch_values"]

#: Adam's constants (torch defaults)
BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8
#: log scale above which a model is declared overflowed
MAX_LOG_SCALE = 700.0
#: how often (in steps) the loop checks whether any member is still running
CHECK_EVERY = 16
#: |log(model mass on the grid)| above which the quadrature no longer represents the model
#: (it left the grid, or became wider than it, or narrower than its spacing)
MASS_TOL = 1e-3
#: grid points × members below which the CPU loop runs on one intra-op thread
SMALL_PROBLEM = 1 << 18

# failure codes, per member
OK, LEFT_GRID, LOSS_NAN, LOSS_INF, GRAD_BAD, OVERFLOW, CONVERGED, MAX_STEPS, STOPPED_BUDGET, STOPPED_CALLER = range(10)


def stop_status(code: int, budget: float | None, step: int) -> str:
    """The status of a member stopped with the whole batch (wall-clock budget or the caller)."""
    if code == STOPPED_BUDGET:
        return f"stopped: wall-clock budget of {budget:g} s reached after step {step}"
    return f"stopped: by the caller after step {step}"


@dataclass
class Member:
    """One fit of a batch: which divergence, with which parameters, from where."""

    spec: DivergenceSpec
    dparams: dict
    loc: float
    scale: float
    #: this member's learning rate (None: the batch's ``lr``)
    lr: float | None = None


def _group_key(m: Member):
    items = []
    for k, v in sorted(m.dparams.items()):
        items.append((k, ("callable", id(v)) if callable(v) else float(v)))
    return (m.spec.key, tuple(items))


def prepare_grid(target: Distribution, locs, scales, n: int | None = None, box=None) -> Grid:
    """The shared grid: the target and every starting model, padded by half its width on each side
    for the models to move (a model as wide as the target box still has >= 7 scales of room)."""
    dev, dt = target.device, target.dtype
    if box is not None:
        return make_grid(target, box=[list(map(float, box))], n=n or 2049, device=dev, dtype=dt)
    start = Normal(torch.as_tensor(locs, device=dev, dtype=dt), torch.as_tensor(scales, device=dev, dtype=dt),
                   validate=False)
    return make_grid(target, start, pad=0.5, n=n or 2049)


class _Batch:
    """Shared grid, target log-density and the per-divergence slices of a batch.

    Two layouts: :meth:`log_q` / :meth:`values` keep the registry's grid-leading (N, B) layout
    (used by the polish, the landscape and the failure reports, with autograd); :meth:`step`, the
    hot loop, works in grid-last (B, N) rows with each divergence's analytic rule
    (``spec.grad_rule``) and the normal family's chain rule written out, so that one step is
    about twenty elementwise passes and no autograd graph (see :meth:`step`).
    """

    def __init__(self, target: Distribution, members: list[Member], grid: Grid):
        self.target, self.members, self.grid = target, members, grid
        self.dev, self.dt = target.device, target.dtype
        self.pts = grid.points.to(device=self.dev, dtype=self.dt)
        self.w = grid.weights.to(device=self.dev, dtype=self.dt)
        with torch.no_grad():
            lp = log_prob_on(target, self.pts)
            lp = lp - wlogsumexp(lp, self.w)
        self.lp = lp.reshape(-1, 1)
        self.x = self.pts.reshape(1, -1)
        # the hot loop's moment vectors in the centred coordinate u = x − x₀ (see :meth:`step`)
        self.x0 = float(0.5 * (self.pts.min() + self.pts.max()))
        self.u = self.pts - self.x0
        self.u2 = self.u * self.u
        self.wu, self.wu2 = self.w * self.u, self.w * self.u2
        self.lp_row = lp.reshape(1, -1)
        self.p_row = lp.exp().reshape(1, -1)
        # the analytic rules assume a finite log p on the whole grid (a target with zeros, e.g. a
        # Uniform or a drawn density, goes through autograd of from_logs, which masks them)
        finite_p = bool(torch.isfinite(lp).all())
        groups: dict = {}
        for i, m in enumerate(members):
            groups.setdefault(_group_key(m), []).append(i)
        self.groups = []
        order = []
        for idx in groups.values():
            m = members[idx[0]]
            self.groups.append((m.spec, m.dparams, self._sel(idx)))
            order.extend(idx)
        self.inverse = None
        if order != list(range(len(members))):
            self.inverse = torch.argsort(torch.tensor(order, device=self.dev))
        # the hot loop's groups: one per divergence with an analytic rule (its numeric parameters
        # stacked per member), one per (divergence, parameters) otherwise
        hot: dict = {}
        for i, m in enumerate(members):
            rule = m.spec.grad_rule if finite_p else None
            k = (m.spec.key, "rule") if rule is not None else ("autograd", _group_key(m))
            hot.setdefault(k, []).append(i)
        self.hot = []
        for k, idx in hot.items():
            m = members[idx[0]]
            rule = m.spec.grad_rule if k[0] != "autograd" else None
            params = m.dparams if rule is None else self._stack([members[i].dparams for i in idx])
            self.hot.append((m.spec, rule, params, self._sel(idx)))

    def _sel(self, idx):
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return slice(idx[0], idx[-1] + 1)
        return torch.tensor(idx, device=self.dev)

    def _stack(self, dps: list[dict]) -> dict:
        """Each parameter as one scalar when all members share it, else a (B_g, 1) column."""
        out = {}
        for name in dps[0]:
            vals = [d[name] for d in dps]
            if callable(vals[0]) or all(v == vals[0] for v in vals):
                out[name] = vals[0]
            else:
                out[name] = torch.tensor([float(v) for v in vals], device=self.dev, dtype=self.dt).reshape(-1, 1)
        return out

    def log_q(self, theta: torch.Tensor):
        """Model log-densities on the grid, (N, B), normalized on the grid, and log masses (B,).

        Differentiable (the polish takes second derivatives through it)."""
        loc, log_scale = theta[:, 0:1], theta[:, 1:2]
        z = (self.x - loc) * torch.exp(-log_scale)
        lq = -0.5 * z * z - (log_scale + 0.5 * LOG_2PI)
        lmass = torch.log(torch.exp(lq) @ self.w)
        return (lq - lmass.unsqueeze(-1)).T, lmass

    def values(self, lqn: torch.Tensor) -> torch.Tensor:
        """Each member's divergence value (B,), computed group by group."""
        vals = []
        for spec, dparams, sel in self.groups:
            vals.append(spec.from_logs(self.lp, lqn[:, sel], self.w, **dparams).reshape(-1))
        v = vals[0] if len(vals) == 1 else torch.cat(vals)
        return v if self.inverse is None else v[self.inverse]

    def step(self, theta: torch.Tensor):
        """(values (B,), log masses (B,), gradients (B, 2)) at ``theta`` = (loc, log scale), no autograd.

        With z = (x − μ)/σ on the grid, the normalized model log-density is
        lq̃ = −z²/2 − log Σ w e^{−z²/2}, so ∂lq̃/∂μ = (z − E_π z)/σ and ∂lq̃/∂log σ = z² − E_π z²,
        π = w q̃. A divergence's rule gives D and d_i = ∂D/∂lq̃_i / w_i. Writing the moments in
        the centred grid coordinate u = x − x₀ (m = μ − x₀), S_j = Σ w d u^j and Q_j = E_π u^j:
            ∂D/∂μ = (S₁ − S₀Q₁)/σ²,   ∂D/∂log σ = ((S₂ − S₀Q₂) − 2m(S₁ − S₀Q₁))/σ²,
        so each member's chain rule is three dot products with the fixed vectors w, w·u, w·u²
        (no elementwise products to write).
        """
        w, wu, wu2 = self.w, self.wu, self.wu2
        loc, log_scale = theta[:, 0:1], theta[:, 1:2]
        k = torch.exp(-log_scale)
        z = torch.addcmul(-loc * k, self.x, k)  # (x − μ)/σ
        cst = log_scale + 0.5 * LOG_2PI
        lq = torch.addcmul(-cst, z, z, value=-0.5)  # log q = −z²/2 − log σ − ½ log 2π
        q = torch.exp(lq)
        mass = q @ w
        inv = 1.0 / mass
        lmass = torch.log(mass)
        lqn = lq - lmass.unsqueeze(-1)
        qn = q * inv.unsqueeze(-1)
        q1, q2 = qn @ wu, qn @ wu2
        B = theta.shape[0]
        vals = torch.empty(B, device=self.dev, dtype=self.dt)
        s0, s1, s2 = torch.empty_like(vals), torch.empty_like(vals), torch.empty_like(vals)
        for spec, rule, params, sel in self.hot:
            if rule is not None:
                v, d = rule(self.lp_row, lqn[sel], self.p_row, qn[sel], w, **params)
                s0[sel], s1[sel], s2[sel] = d @ w, d @ wu, d @ wu2
            else:
                with torch.enable_grad():
                    leaf = lqn[sel].detach().requires_grad_(True)
                    v = spec.from_logs(self.lp, leaf.T, w, **params).reshape(-1)
                    (dw,) = torch.autograd.grad(v.sum(), leaf)  # = w·d
                v = v.detach()
                s0[sel], s1[sel], s2[sel] = dw.sum(-1), dw @ self.u, dw @ self.u2
            vals[sel] = v
        k2 = (k * k)[:, 0]
        c1 = s1 - s0 * q1
        grad = torch.stack([c1 * k2, ((s2 - s0 * q2) - 2.0 * (loc[:, 0] - self.x0) * c1) * k2], dim=-1)
        return vals, lmass, grad


def batch_values(target: Distribution, members: list[Member], theta: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Divergence values of the members at parameters ``theta`` (B, 2) on ``grid`` (no gradients)."""
    b = _Batch(target, members, grid)
    with torch.no_grad():
        lqn, _ = b.log_q(theta.to(device=b.dev, dtype=b.dt))
        return b.values(lqn)


def _lr_factor(step: int, steps: int, schedule: str) -> float:
    """lr_t / lr: 1 for "constant"; cosine decay from 1 to 1/100 over ``steps`` for "cosine"."""
    if schedule == "constant":
        return 1.0
    t_max = max(steps, 1)
    return 0.01 + 0.99 * (1 + math.cos(math.pi * min(step, t_max) / t_max)) / 2


@contextmanager
def _threads_for(n_elements: int, device: torch.device, small: int = SMALL_PROBLEM):
    """One intra-op thread on the CPU while the per-step tensors are small (fewer than ``small``
    elements): there the thread pool's hand-off costs far more than the arithmetic (and on a
    busy machine it can cost milliseconds per op). Restored on exit."""
    if device.type != "cpu" or n_elements >= small:
        yield
        return
    with one_cpu_thread():
        yield


def run_batch(target: Distribution, members: list[Member], *, steps: int, lr: float, optimizer: str = "adam",
              schedule: str = "cosine", tol: float = 1e-10, patience: int = 20, n: int | None = None,
              box=None, polish: bool = True, polish_steps: int = 30, callback=None, grid: Grid | None = None,
              time_budget_s: float | None = None):
    """Run every member of the batch; returns (per-member dicts, batch info).

    Each dict holds ``status``, ``theta`` (T, 2) = (loc, log scale) per recorded step,
    ``losses`` (T,), ``code`` and ``polish_steps``. See :func:`divlab.fit.core.fit`.

    ``time_budget_s``: wall-clock seconds for the loop; when exceeded every unfinished member
    stops with "stopped: wall-clock budget of X s reached after step N" (trajectory kept, no
    polish). ``callback(step, params, loss)`` returning ``False`` stops them likewise
    ("stopped: by the caller after step N").
    """
    if grid is None:
        grid = prepare_grid(target, [m.loc for m in members], [m.scale for m in members], n=n, box=box)
    with _threads_for(grid.n * len(members), target.device), torch.no_grad():
        return _run_batch(target, members, steps=steps, lr=lr, optimizer=optimizer, schedule=schedule, tol=tol,
                          patience=patience, polish=polish, polish_steps=polish_steps, callback=callback, grid=grid,
                          time_budget_s=time_budget_s)


def _run_batch(target, members, *, steps, lr, optimizer, schedule, tol, patience, polish, polish_steps, callback,
               grid, time_budget_s=None):
    B = len(members)
    dev, dt = target.device, target.dtype
    locs0 = [m.loc for m in members]
    scales0 = [m.scale for m in members]
    bt = _Batch(target, members, grid)
    theta = torch.tensor([[lo, math.log(s)] for lo, s in zip(locs0, scales0)], device=dev, dtype=dt)
    m1 = torch.zeros_like(theta)
    m2 = torch.zeros_like(theta)
    lrs = [lr if m.lr is None else float(m.lr) for m in members]
    lr_vec = torch.tensor(lrs, device=dev, dtype=dt).reshape(-1, 1)

    active = torch.ones(B, dtype=torch.bool, device=dev)
    code = torch.full((B,), OK, dtype=torch.long, device=dev)
    last = torch.full((B,), -1, dtype=torch.long, device=dev)  # last recorded trajectory index
    calm = torch.zeros(B, dtype=torch.long, device=dev)
    prev = torch.zeros(B, dtype=dt, device=dev)
    hist_theta, hist_loss = [], []
    t0 = time.perf_counter()
    step = 0
    stop_code = stop_step = None
    # on the CPU a look at a flag is free: the per-member updates below run only when some member
    # changed state; on an accelerator they always run (no host synchronisation per step)
    on_cpu = dev.type == "cpu"

    def changed(mask):
        return (not on_cpu) or bool(mask.any())

    lr0 = lrs[0] if len(set(lrs)) == 1 else None  # one rate for all: a scalar update
    for step in range(steps + 1):
        v, lm, g = bt.step(theta)
        hist_theta.append(theta)  # never modified in place: each step makes a new theta
        hist_loss.append(v)
        # failures before recording: left the grid, NaN, inf (the trajectory stops before this step)
        inside = lm.abs() <= MASS_TOL  # False for NaN / inf
        fail = active & ~(inside & torch.isfinite(v))
        if changed(fail):
            nan = torch.isnan(v)
            code = torch.where(fail, torch.where(~inside, LEFT_GRID, torch.where(nan, LOSS_NAN, LOSS_INF)), code)
            last = torch.where(fail, step - 1, last)
            active = active & ~fail
        last = torch.where(active, step, last)
        if callback is not None and _callback(callback, step, theta, v, B) is False:
            stop_code, stop_step = STOPPED_CALLER, step
        elif time_budget_s is not None and step < steps and time.perf_counter() - t0 > time_budget_s:
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
            calm = torch.where(quiet, calm + 1, 0)
            done = active & (calm >= patience)
            if changed(done):
                code = torch.where(done, CONVERGED, code)
                active = active & ~done
        prev = v
        if step % CHECK_EVERY == 0 and not bool(active.any()):
            break
        # a member with a bad gradient is frozen here; its optimizer state may go non-finite, but it
        # is never used again (each member's state is its own row)
        gbad = active & ~torch.isfinite(g).all(-1)
        if changed(gbad):
            code = torch.where(gbad, GRAD_BAD, code)
            active = active & ~gbad
        factor = _lr_factor(step, steps, schedule)
        if optimizer == "adam":
            t = step + 1
            m1.mul_(BETA1).add_(g, alpha=1 - BETA1)
            m2.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
            denom = m2.sqrt().div_(math.sqrt(1 - BETA2**t)).add_(ADAM_EPS)
            if lr0 is not None:
                new = torch.addcdiv(theta, m1, denom, value=-lr0 * factor / (1 - BETA1**t))
            else:
                new = theta - (lr_vec * (factor / (1 - BETA1**t))) * m1 / denom
        else:
            new = theta - (lr0 * factor if lr0 is not None else lr_vec * factor) * g
        over = active & (~torch.isfinite(new).all(-1) | (new[:, 1] > MAX_LOG_SCALE))
        if changed(over):
            code = torch.where(over, OVERFLOW, code)
            active = active & ~over
        theta = torch.where(active.reshape(-1, 1), new, theta)
    elapsed = time.perf_counter() - t0
    n_steps = step

    H = torch.stack(hist_theta).cpu().numpy()  # (T, B, 2)
    L = torch.stack(hist_loss).cpu().numpy()  # (T, B)
    code_np = code.cpu().numpy()
    last_np = last.cpu().numpy()
    out = []
    for i, m in enumerate(members):
        c, li = int(code_np[i]), int(last_np[i])
        fail_step = li + 1
        status = (stop_status(c, time_budget_s, stop_step) if c in (STOPPED_BUDGET, STOPPED_CALLER)
                  else _status(c, li, lrs[i], bt, m, H, fail_step, grid))
        if li < 0:  # failed at the very start: keep the start so the trajectory is never empty
            traj = np.array([[m.loc, math.log(m.scale)]])
            losses = np.array([math.inf])
        else:
            traj = H[: li + 1, i]
            losses = L[: li + 1, i]
        out.append({"status": status, "theta": traj, "losses": losses, "code": c})
    info = {"grid_box": [float(grid.axes[0][0]), float(grid.axes[0][-1])], "grid_points": grid.n,
            "elapsed_s": elapsed, "loop_steps": n_steps, "batch": B}
    if polish and stop_code is None:  # a stopped run returns at once (no polish after a Stop or the budget)
        _polish(bt, out, polish_steps)
    info["elapsed_s"] = time.perf_counter() - t0
    return out, info


def _callback(callback, step, theta, v, B):
    th = theta.cpu().numpy()
    if B == 1:
        return callback(step, {"loc": float(th[0, 0]), "scale": float(np.exp(th[0, 1]))}, float(v[0]))
    return callback(step, {"loc": th[:, 0].copy(), "scale": np.exp(th[:, 1])}, v.cpu().numpy())


def _status(c, li, lr, bt: _Batch, m: Member, H, fail_step, grid) -> str:
    if c == CONVERGED:
        return "converged"
    if c == MAX_STEPS:
        return "max_steps"
    if c in (GRAD_BAD, OVERFLOW):
        what = "gradient is not finite" if c == GRAD_BAD else "parameters overflowed"
        return f"diverged: {what} after step {li} at lr = {lr:g}"
    th = H[fail_step, _pos(bt, m)]
    loc, scale = float(th[0]), float(np.exp(th[1]))
    if c == LEFT_GRID:
        a, b = float(grid.axes[0][0]), float(grid.axes[0][-1])
        h = grid.spacing[0]
        if scale < 2 * h:
            return (f"diverged: the model q became narrower than the grid spacing h = {h:.3g} at step {fail_step} "
                    f"(loc = {loc:.4g}, scale = {scale:.4g}) at lr = {lr:g}")
        return (f"diverged: the model q left the computation grid [{a:.3g}, {b:.3g}] at step {fail_step} "
                f"(loc = {loc:.4g}, scale = {scale:.4g}) at lr = {lr:g}")
    if c == LOSS_NAN:
        return f"diverged: loss is NaN after step {fail_step} at lr = {lr:g}"
    # infinite: say why, from the model at the failing step
    th_t = torch.tensor([[float(th[0]), float(th[1])]], device=bt.dev, dtype=bt.dt)
    with torch.no_grad():
        lqn, _ = bt.log_q(th_t)
    why = infinite_reason(m.spec, bt.lp.reshape(-1), lqn[:, 0], grid, m.dparams)
    return f"diverged: at step {fail_step}, {why}"


def _pos(bt: _Batch, m: Member) -> int:
    for i, x in enumerate(bt.members):
        if x is m:
            return i
    raise KeyError(m)  # pragma: no cover


def _polish(bt: _Batch, out: list, max_iter: int):
    """Damped Newton (Levenberg–Marquardt) on each finished member's 2 parameters, batched.

    The Hessian of the summed loss is block diagonal (members are independent), so two
    backward passes of the gradient give every member's 2×2 block. A step is kept only where
    it lowers that member's loss; the damping grows where it does not and shrinks where it does.
    Accepted steps are appended to the trajectory; a member whose gradient falls below a
    dtype-aware threshold is marked "converged".
    """
    idx = [i for i, o in enumerate(out) if o["code"] in (CONVERGED, MAX_STEPS)]
    if not idx or max_iter <= 0:
        return
    dev, dt = bt.dev, bt.dt
    sub = _Batch(bt.target, [bt.members[i] for i in idx], bt.grid)
    theta = torch.tensor(np.stack([out[i]["theta"][-1] for i in idx]), device=dev, dtype=dt)
    k = len(idx)
    lam = torch.full((k,), 1e-3, device=dev, dtype=dt)
    eye = torch.eye(2, device=dev, dtype=dt)
    gtol = 1e-9 if dt == torch.float64 else 1e-4
    done = torch.zeros(k, dtype=torch.bool, device=dev)
    extra_t, extra_l, taken = [], [], []
    for _ in range(max_iter):
        th = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            lqn, _ = sub.log_q(th)
            v = sub.values(lqn)
            (g,) = torch.autograd.grad(v.sum(), th, create_graph=True)
            (h0,) = torch.autograd.grad(g[:, 0].sum(), th, retain_graph=True)
            (h1,) = torch.autograd.grad(g[:, 1].sum(), th)
        g = g.detach()
        Hm = torch.stack([h0, h1], dim=1).detach()
        Hm = 0.5 * (Hm + Hm.transpose(1, 2))
        v = v.detach()
        ok = torch.isfinite(v) & torch.isfinite(g).all(-1) & torch.isfinite(Hm).flatten(1).all(-1)
        small = g.norm(dim=-1) <= gtol * (1 + v.abs())
        done = done | (ok & small)
        live = ok & ~done
        if not bool(live.any()):
            break
        # LM step: (H + (λ + shift) I) d = −g, shift making the matrix positive definite
        emin = torch.linalg.eigvalsh(torch.where(live[:, None, None], Hm, eye)).min(-1).values
        shift = torch.clamp(-emin, min=0) * 1.01
        A = Hm + ((lam + shift) * (1 + Hm.diagonal(dim1=1, dim2=2).abs().max(-1).values))[:, None, None] * eye
        A = torch.where(live[:, None, None], A, eye)
        d = -torch.linalg.solve(A, torch.where(live[:, None], g, torch.zeros_like(g)))
        # at a minimum whose predicted decrease is below rounding, no step can be seen to help
        pred = -(g * d).sum(-1)
        flat = live & (emin > 0) & (pred <= 16 * torch.finfo(dt).eps * (1 + v.abs()))
        done = done | flat
        live = live & ~flat
        trial = theta + d
        with torch.no_grad():
            lqn_t, lm_t = sub.log_q(trial)
            vt = sub.values(lqn_t)
        better = live & torch.isfinite(vt) & torch.isfinite(lm_t) & (vt <= v)
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
        rows = np.nonzero(took[:, j])[0]
        o = out[i]
        if len(rows):
            o["theta"] = np.concatenate([o["theta"], T[rows, j]])
            o["losses"] = np.concatenate([o["losses"], Lx[rows, j]])
        o["polish_steps"] = int(len(rows))
        if done_np[j] and o["code"] == MAX_STEPS:
            o["status"] = "converged"
