"""Particle flows: n particles pushed towards a target, recorded as frames.

The particles form the empirical measure μ = (1/n) Σ δ_{x_i}. Four dynamics:

- ``mmd``: the Wasserstein gradient flow of F(μ) = MMD²_k(μ, ν) towards the target's samples
  ν (Arbel et al. 2019), Gaussian kernel by default. Each particle moves along
  −∇(δF/δμ)(x_i) = −n ∇_{x_i} F, so ``lr`` is the time step of the flow.
- ``sinkhorn``: the same for the debiased Sinkhorn divergence S_ε(μ, ν) = OT_ε(μ, ν) −
  ½OT_ε(μ, μ) − ½OT_ε(ν, ν) (Feydy et al. 2019), cost |x − y|², envelope gradients. The pieces
  come from :mod:`divlab.divergences.transport`: OT_ε(μ, ν) by :func:`transport.ot_eps` with
  potentials from :func:`relaxed_potentials` (transport's log-domain iteration, over-relaxed),
  OT_ε(μ, μ) by :func:`transport.ot_eps_sym`, OT_ε(ν, ν) once (the target does not move). With
  ``warm=True`` each step starts from the previous step's potentials, which skips the
  ε-scaling and needs several times fewer Sinkhorn iterations than a cold start at the same
  tolerance (``info["sinkhorn_iterations"]``; bench/bench_flow.py).
- ``svgd``: Stein variational gradient descent (Liu & Wang 2016), the kernelized flow of
  KL(μ‖p): φ(x_i) = (1/n) Σ_j [k(x_j, x_i) ∇log p(x_j) + ∇_{x_j} k(x_j, x_i)], RBF kernel
  k = exp(−|x − y|²/h) with the median heuristic h = med²/log n (recomputed each step), target
  score by autograd. Needs a target density (an unnormalized one would do).
- ``langevin``: unadjusted Langevin, x ← x + lr ∇log p(x) + √(2 lr) ξ (seeded noise), whose
  particles sample from p up to an O(lr) bias (for N(m, σ²): stationary variance
  σ²/(1 − lr/(2σ²))). Needs a target density.

For ``mmd`` and ``sinkhorn`` the target is represented by ``n_target`` samples drawn once
(seed ``seed``); an :class:`~divlab.Empirical` target is used as it is, a
:class:`~divlab.GridDensity` by its weighted grid nodes. The same samples measure the frames.

Per-frame loss (``FlowResult.losses``, ``FlowResult.loss_name``): the divergence between the
particles and the target samples, by default the one the flow descends: MMD² (V-statistic,
the flow's kernel) for ``mmd``, S_ε for ``sinkhorn``, and for ``svgd``/``langevin`` (which
descend KL, not estimable from particles) the energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'|
(V-statistic; units of x, not nats). ``loss="energy"`` (or ``"mmd"``) gives all four flows
the same measure so that their frames can be compared. S_ε is computed to the solver's
tolerance (about ε × ``tol``), so once the particles sit on the target samples a frame's S_ε
can be a tiny negative number (−1e-4 at the defaults); it is reported as computed. Never NaN: a flow whose particles
become non-finite stops with status "diverged: <reason>" and keeps its finite frames.

Defaults look good for a 2D demo: n = 300 particles, 200 steps, starting from a small blob
N(m − 1.5·s, (0.2·s)²) below-left of the target's mean m (s: per-axis standard deviations of
the target samples); ``particles`` overrides it (an array (n,) / (n, 2), or a distribution to
draw n particles from). The step ``lr`` defaults to :data:`DEFAULT_LR` × s̄², s̄² the target's
per-axis mean variance (mmd 1, sinkhorn 0.1, svgd 0.3, langevin 0.05), for svgd and langevin
s̄² = min(that, ``target.min_scale()``²) since their velocity is the score, ~1/σ² where the
target is narrowest: the flows are then scale-free, and for a Gaussian Langevin's stationary
variance is within ~2.5 % of the target's.

References: Arbel, Korba, Salim & Gretton, *Maximum mean discrepancy gradient flow* (NeurIPS
2019); Feydy et al., *Interpolating between OT and MMD using Sinkhorn divergences* (AISTATS
2019); Liu & Wang, *Stein variational gradient descent* (NeurIPS 2016); Roberts & Tweedie
(1996) for ULA.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..distributions import Distribution, Empirical
from ..divergences._samples import sqdist, to_cloud
from ..divergences.kernel import KERNELS, kernel_matrix
from ..divergences.transport import eps_schedule, ot_eps, ot_eps_sym, softmin
from .engine import _threads_for

__all__ = ["flow", "FlowResult", "FLOWS", "DEFAULT_LR", "median_bandwidth"]

FLOWS = ("mmd", "sinkhorn", "svgd", "langevin")
#: over-relaxation factor of the Sinkhorn flow's OT_ε(μ, ν) solver (1 = plain Sinkhorn)
RELAX = 1.8
LOSSES = ("mmd", "sinkhorn", "energy")
#: default time step, as a multiple of the target's variance s² (per-axis mean)
DEFAULT_LR = {"mmd": 1.0, "sinkhorn": 0.1, "svgd": 0.3, "langevin": 0.05}
#: the options each flow takes (name: default)
OPTIONS = {
    "mmd": {"kernel": "gaussian", "bandwidth": None, "noise": 0.0},
    "sinkhorn": {"epsilon": None, "tol": 1e-3, "max_iter": 1000, "scaling": 0.5, "warm": True, "relax": RELAX},
    "svgd": {"bandwidth": None},
    "langevin": {},
}
COMMON = {"n_target": None, "loss": None}
MAX_STEPS = 100_000
MAX_PARTICLES = 20_000
#: particles × target points below which the CPU flow runs on one intra-op thread
SMALL_PROBLEM = 1 << 20


@dataclass
class FlowResult:
    """The frames of a particle flow.

    ``frames``: (F, n, d) particle positions at ``steps`` (step 0 = the start, the last one =
    the end); ``losses``: (F,) ``loss_name`` between the frame and the target samples;
    ``status``: "completed" | "diverged: <reason>"; ``info``: bandwidth / ε, Sinkhorn
    iteration totals, warnings; ``target_points``: the target samples (m, d) used.
    """

    divergence: str
    frames: np.ndarray
    steps: list
    losses: np.ndarray
    loss_name: str
    status: str
    lr: float
    n: int
    seed: int | None
    options: dict
    target_points: np.ndarray
    elapsed_s: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.frames.shape[2])

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def diverged(self) -> bool:
        return self.status.startswith("diverged")

    def particles(self, frame: int = -1) -> Empirical:
        """Frame ``frame`` (an index into ``frames``) as an :class:`~divlab.Empirical`."""
        x = self.frames[frame]
        return Empirical(x[:, 0] if self.dim == 1 else x, dtype=torch.float64, device="cpu")

    def model(self, frame: int = -1) -> Empirical:
        """Same as :meth:`particles` (the name :class:`FitResult` uses for its model)."""
        return self.particles(frame)

    def as_dict(self) -> dict:
        return {"divergence": self.divergence, "steps": list(self.steps), "frames": self.frames.tolist(),
                "losses": [float(v) if math.isfinite(v) else "inf" for v in self.losses.tolist()],
                "loss_name": self.loss_name, "status": self.status, "lr": self.lr, "n": self.n, "seed": self.seed,
                "options": self.options}


# --------------------------------------------------------------------------- helpers
def median_bandwidth(x: torch.Tensor, max_points: int = 1000) -> float:
    """Median pairwise distance of the cloud x (n, d) (the first ``max_points`` points)."""
    x = x.detach()[:max_points]
    d2 = sqdist(x, x)
    iu = torch.triu_indices(x.shape[0], x.shape[0], 1, device=x.device)
    vals = d2[iu[0], iu[1]]
    med = float(vals.median().sqrt()) if vals.numel() else 0.0
    return med if med > 0 else 1.0


def _check_int(name, v, low, high):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= int(v) <= high:
        raise ValueError(f"flow({name}={v!r}): {name} must be an integer in [{low}, {high}]")
    return int(v)


def _check_pos(name, v, allow_zero=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (
            v == 0 and not allow_zero):
        raise ValueError(f"flow({name}={v!r}): {name} must be a finite number {'>=' if allow_zero else '>'} 0")
    return float(v)


def _initial(target, particles, n, seed, dev, dt, d, mean, sd):
    """Starting positions (n, d) and n. Default: a blob N(mean − 1.5·sd, (0.2·sd)²) per axis
    (``mean``, ``sd``: the target samples' mean and per-axis standard deviations)."""
    if particles is None:
        gen = torch.Generator(device="cpu").manual_seed(0 if seed is None else int(seed) + 1)
        z = torch.randn(n, d, generator=gen, dtype=torch.float64).to(device=dev, dtype=dt)
        return mean - 1.5 * sd + 0.2 * sd * z, n
    if isinstance(particles, Distribution):
        if particles.dim != d:
            raise ValueError(f"flow(particles={type(particles).__name__}({particles.dim}D)): particles must be "
                             f"{d}D like the target")
        if isinstance(particles, Empirical):
            x = particles.cloud()[0]
        else:
            x = particles.sample(n, seed=None if seed is None else int(seed) + 1).reshape(n, d)
        return x.detach().to(device=dev, dtype=dt).clone(), int(x.shape[0])
    try:
        x = torch.as_tensor(np.asarray(particles, dtype=float), device=dev, dtype=dt)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"flow(particles=...): particles must be an array of numbers, a distribution or None "
                         f"({exc})") from None
    if d == 1 and x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2 or x.shape[1] != d or x.shape[0] < 2:
        raise ValueError(f"flow(particles with shape {tuple(x.shape)}): particles must have shape (n,) for a 1D "
                         f"target or (n, 2) for a 2D target, n >= 2 (target is {d}D)")
    if not torch.isfinite(x).all():
        raise ValueError("flow(particles=...): particles must be finite (no NaN or inf)")
    if x.shape[0] > MAX_PARTICLES:
        raise ValueError(f"flow(particles with {x.shape[0]} points): at most {MAX_PARTICLES} particles")
    return x.clone(), int(x.shape[0])


def _mmd_parts(kernel, h):
    def self_term(x):
        a = 1.0 / x.shape[0]
        return kernel_matrix(x, x, kernel, h).sum() * a * a

    def cross(x, y, b):
        return (kernel_matrix(x, y, kernel, h) @ b).sum() / x.shape[0]

    return self_term, cross


class _Loss:
    """The per-frame measure between particles x (n, d) and the target cloud (y, b)."""

    def __init__(self, kind, y, b, *, kernel="gaussian", bandwidth=1.0, epsilon=0.1, sk_opts=None):
        self.kind, self.y, self.b = kind, y, b
        if kind == "sinkhorn":
            self.eps, self.sk = epsilon, dict(sk_opts)
            self.relax = self.sk.pop("relax", RELAX)
            self.name = f"S_ε (debiased Sinkhorn divergence, ε = {epsilon:.4g}, cost |x−y|²)"
            # ½OT_ε(ν, ν) of the fixed target: solved once (cold, ε-scaled)
            with torch.no_grad():
                v_bb, i_bb = ot_eps_sym(y, b, epsilon, **self.sk)
            self.v_bb, self.bb_iterations, self.bb_status = v_bb, int(i_bb["iterations"]), i_bb["status"]
            return
        if kind == "energy":
            self.kernel, self.h = "energy", 1.0
            self.name = "energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| (V-statistic)"
        else:
            self.kernel, self.h = kernel, bandwidth
            self.name = f"MMD² ({kernel} kernel, bandwidth {bandwidth:.4g}, V-statistic)"
        self.self_term, self.cross = _mmd_parts(self.kernel, self.h)
        with torch.no_grad():
            self.yy = float(b @ kernel_matrix(y, y, self.kernel, self.h) @ b)

    def value(self, x, init=None):
        """(value tensor, info); differentiable in x for mmd/energy; sinkhorn returns its info."""
        if self.kind == "sinkhorn":
            # S_ε(μ, ν) = OT_ε(μ, ν) − ½OT_ε(μ, μ) − ½OT_ε(ν, ν), each OT_ε from transport.py
            # (envelope gradients; ``init``: the previous step's potentials, a warm start)
            init = init or {}
            a = torch.full((x.shape[0],), 1.0 / x.shape[0], device=x.device, dtype=x.dtype)
            la, lb = torch.log(a), torch.log(self.b)
            with torch.no_grad():
                C = sqdist(x.detach(), self.y)
                solved = relaxed_potentials(C, la, lb, self.eps, init=init.get("ab"), relax=self.relax, **self.sk)
            v_ab, i_ab = ot_eps(x, a, self.y, self.b, self.eps, solved=solved, **self.sk)
            v_aa, i_aa = ot_eps_sym(x, a, self.eps, init=init.get("aa"), **self.sk)
            bad = [i["status"] for i in (i_ab, i_aa) if i["status"] != "converged"]
            return v_ab - 0.5 * v_aa - 0.5 * self.v_bb, {
                "iterations": {"ab": i_ab["iterations"], "aa": i_aa["iterations"]},
                "status": bad[0] if bad else "converged",
                "marginal_error": max(i_ab["marginal_error"], i_aa["marginal_error"]),
                "potentials": {"ab": i_ab["potentials"], "aa": i_aa["potentials"]}}
        v = self.self_term(x) - 2 * self.cross(x, self.y, self.b) + self.yy
        return v, {}


def relaxed_potentials(C, la, lb, eps, *, tol=1e-6, max_iter=1000, scaling=0.5, inner=2, init=None, relax=RELAX):
    """Dual potentials (f, g) of OT_ε(a, b) for the cost matrix C (n, m): the log-domain
    iteration of :func:`transport.sinkhorn_potentials` (same ε-scaling on a cold start, same
    stopping rule: marginal L1 error < ``tol`` at the final ε, here rows + columns since the
    relaxed g-update no longer makes the columns exact) with over-relaxation of both updates at
    the final ε, g ← g + ω(T(f) − g), f ← f + ω(T(g) − f), ω = ``relax`` while the error is
    below 1e-2 and falling (ω = 1 otherwise; 1 gives plain Sinkhorn). Near the solution Sinkhorn's error
    falls geometrically with a rate close to 1 when ε is small against the spread (the slow
    mode is a smooth drift of the potentials); ω ≈ 1.8 cuts the iterations several-fold
    (Thibault et al., *Overrelaxed Sinkhorn–Knopp*, 2021). ``init``: (f, g) of an earlier
    solve (a warm start, no ε-scaling). Returns (f, g, iterations, marginal_error, status),
    the ``solved`` layout of :func:`transport.ot_eps`.
    """
    from ..divergences import ot_solver as S

    a, b = la.exp(), lb.exp()
    T_xy = lambda e, h: softmin(e, C, h)  # noqa: E731
    T_yx = lambda e, h: softmin(e, C.T, h)  # noqa: E731
    buf = torch.empty_like(C)
    iters = 0
    if init is not None:
        # the target's potential g sits on fixed points and is still good; the particles' f is
        # stale where they moved, so restart f from g (its c-transform at the new positions)
        g = init[1]
        f = softmin(eps, C, lb + g / eps)
    else:
        sched = eps_schedule(float(C.max()) if C.numel() else 0.0, eps, scaling)
        f = softmin(sched[0], C, lb)
        g = softmin(sched[0], C.T, la + f / sched[0])
        for e in sched[:-1]:
            f, g, it, _, _ = S._scaling_ab(C, la, lb, e, f, g, 0.0, inner, T_xy, T_yx, buf)
            iters += it
        g = softmin(eps, C.T, la + f / eps)
    # final ε, in the stabilized scaling domain: f = f0 + ε log u, g = g0 + ε log v
    tau = S.ABSORB.get(C.dtype, 10.0)
    P = S._plan(C, la, lb, f, g, eps, buf)
    u, v = torch.ones_like(a), torch.ones_like(b)
    err, prev, status, w = math.inf, math.inf, "max_iter", 1.0
    for _ in range(max_iter):
        Ptu = P.T @ u
        v_hat = b / Ptu
        v_new = v * (v_hat / v) ** w if w != 1.0 else v_hat
        Pv = P @ v_new
        u_hat = a / Pv
        # marginals of π(f, g_new): rows u·(P v_new), columns v_new·(Pᵀu)
        err = float((u * Pv - a).abs().sum() + (v_new * Ptu - b).abs().sum())
        iters += 1
        v = v_new
        if not math.isfinite(err):
            status = "diverged: non-finite potentials"
            u = u_hat
            break
        if err < tol:
            status = "converged"
            u = u_hat
            break
        w = relax if (err < 1e-2 and err < prev) else 1.0
        u = u * (u_hat / u) ** w if w != 1.0 else u_hat
        prev = err
        if iters % 16 == 0 and (float(u.log().abs().max()) > tau or float(v.log().abs().max()) > tau):
            f, g = f + eps * u.log(), g + eps * v.log()
            P = S._plan(C, la, lb, f, g, eps, buf)
            u, v = torch.ones_like(a), torch.ones_like(b)
    f, g = f + eps * u.log(), g + eps * v.log()
    return f, g, iters, err, status


def _iters(info) -> int:
    it = info.get("iterations", 0)
    return int(sum(it.values())) if isinstance(it, dict) else int(it)


# --------------------------------------------------------------------------- flow
def flow(target: Distribution, divergence: str = "mmd", *, n: int = 300, steps: int = 200, lr: float | None = None,
         seed: int | None = 0, particles=None, record_every: int | None = None, callback=None,
         **options) -> FlowResult:
    """Move ``n`` particles towards ``target`` along the flow ``divergence`` and record frames.

    - ``divergence``: "mmd" | "sinkhorn" | "svgd" | "langevin" (see the module docstring).
    - ``n``, ``particles``: n particles from the default start, or the given positions / a
      distribution to draw n from (seed ``seed + 1``).
    - ``steps``: number of updates; ``lr``: the time step (default ``DEFAULT_LR[kind] × s²``,
      s² the target's per-axis variance); ``record_every``: keep every k-th step as a frame
      (default: about 100 frames); step 0 and the last step are always kept.
    - ``seed``: target samples (``seed``), start (``seed + 1``), Langevin noise (``seed + 2``);
      the same seed gives the same frames.
    - ``callback(step, None, None)``: called after every update; returning ``False`` ends the flow
      there (status "stopped: by the caller after step k", its frames kept): a page's
      :class:`divlab.limits.RunGuard` (wall-clock budget, Stop) is such a callback.
    - options, common: ``n_target`` (target samples, default max(n, 500); ignored for an
      Empirical target), ``loss`` ("mmd" | "sinkhorn" | "energy": the per-frame measure;
      default the flow's own, energy for svgd/langevin).
      mmd: ``kernel`` (gaussian | imq | energy), ``bandwidth`` (default: median pairwise
      distance of the target samples), ``noise`` (β ≥ 0: Arbel et al.'s noise injection, the
      gradient is evaluated at x + βξ; helps particles that a flat kernel leaves behind).
      sinkhorn: ``epsilon`` (default 0.05 × the target's total variance: blur ≈ a fifth of its
      spread), ``tol`` (marginal L1 error of each OT_ε solve, 1e-3: far below what moves a
      particle visibly), ``max_iter`` (1000 per solve), ``scaling`` (ε-annealing of a cold
      start), ``warm`` (True: start each solve from the previous step's potentials),
      ``relax`` (over-relaxation ω ∈ (0, 2) of the OT_ε(μ, ν) solver, 1.8; 1 = plain
      Sinkhorn; see :func:`relaxed_potentials`). svgd: ``bandwidth`` (h of exp(−|x−y|²/h); default the
      median heuristic med²/log n each step).

    Returns a :class:`FlowResult`. Bad input raises ``ValueError`` naming the parameter.
    """
    t0 = time.perf_counter()
    if not isinstance(target, Distribution):
        raise ValueError(f"flow(target={target!r}): target must be a divlab distribution")
    if divergence not in FLOWS:
        raise ValueError(f"flow(divergence={divergence!r}): divergence must be one of {', '.join(FLOWS)}")
    if target.batch_shape:
        raise ValueError(f"flow(target={type(target).__name__} with batch_shape {tuple(target.batch_shape)}): "
                         "give one target distribution")
    kind = divergence
    allowed = {**COMMON, **OPTIONS[kind]}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"flow(divergence={kind!r}): unknown option {unknown[0]!r} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    o = {**allowed, **options}
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"flow(seed={seed!r}): seed must be a non-negative integer or None")
    n = _check_int("n", n, 2, MAX_PARTICLES)
    steps = _check_int("steps", steps, 0, MAX_STEPS)
    if record_every is not None:
        record_every = _check_int("record_every", record_every, 1, MAX_STEPS)
    else:
        record_every = max(1, steps // 100)
    if kind in ("svgd", "langevin") and not getattr(target, "has_density", True):
        raise ValueError(f"flow(divergence={kind!r}): {kind} needs the target's score, and "
                         f"{type(target).__name__} has no density; use 'mmd' or 'sinkhorn'")
    loss_kind = o["loss"] or {"mmd": "mmd", "sinkhorn": "sinkhorn"}.get(kind, "energy")
    if loss_kind not in LOSSES:
        raise ValueError(f"flow(loss={o['loss']!r}): loss must be one of {', '.join(LOSSES)}")
    d = target.dim
    dev, dt = target.device, target.dtype

    # target samples (once, seeded)
    n_target = o["n_target"]
    if n_target is None:
        n_target = max(n, 500)
    n_target = _check_int("n_target", n_target, 2, 100_000)
    y, b = to_cloud(target, n_target, seed, f"flow(divergence={kind!r})")
    y, b = y.detach().to(device=dev, dtype=dt), b.detach().to(device=dev, dtype=dt)
    if not torch.isfinite(y).all():
        raise ValueError("flow(target=...): the target's samples are not finite")
    mean_y = b @ y
    var_axes = b @ ((y - mean_y) ** 2)
    var = float(var_axes.mean())  # per-axis mean variance s²
    var = var if var > 0 else 1.0
    sd_axes = torch.where(var_axes > 0, var_axes.sqrt(), torch.full_like(var_axes, math.sqrt(var)))

    x, n = _initial(target, particles, n, seed, dev, dt, d, mean_y, sd_axes)
    if lr is None:
        # score-driven flows move by lr·∇log p, which is ~1/σ² where the target is narrowest:
        # scale their step by the smallest feature length² (else thin shapes blow up)
        s2 = var
        if kind in ("svgd", "langevin"):
            try:
                s2 = min(var, float(target.min_scale()) ** 2)
            except (TypeError, ValueError):
                pass
        lr = DEFAULT_LR[kind] * s2
    lr = _check_pos("lr", lr)

    resolved = {}
    sk_opts = None
    if kind == "mmd":
        if o["kernel"] not in KERNELS:
            raise ValueError(f"flow(kernel={o['kernel']!r}): kernel must be one of {', '.join(KERNELS)}")
        h = median_bandwidth(y) if o["bandwidth"] is None else _check_pos("bandwidth", o["bandwidth"])
        noise = _check_pos("noise", o["noise"], allow_zero=True)
        resolved = {"kernel": o["kernel"], "bandwidth": h, "noise": noise}
    elif kind == "svgd":
        resolved = {"bandwidth": None if o["bandwidth"] is None else _check_pos("bandwidth", o["bandwidth"])}
    eps = None
    if kind == "sinkhorn" or loss_kind == "sinkhorn":
        eps = (0.05 * var * d) if o.get("epsilon") is None else _check_pos("epsilon", o["epsilon"])
        skd = {**OPTIONS["sinkhorn"], **o}  # the sinkhorn defaults also when only the loss is S_ε
        tol = _check_pos("tol", skd["tol"])
        max_iter = _check_int("max_iter", skd["max_iter"], 1, 1_000_000)
        scaling = skd["scaling"]
        if isinstance(scaling, bool) or not isinstance(scaling, (int, float)) or not 0 < scaling < 1:
            raise ValueError(f"flow(scaling={scaling!r}): scaling must be in (0, 1)")
        warm = skd["warm"]
        if not isinstance(warm, bool):
            raise ValueError(f"flow(warm={warm!r}): warm must be True or False")
        relax = skd["relax"]
        if isinstance(relax, bool) or not isinstance(relax, (int, float)) or not 0 < relax < 2:
            raise ValueError(f"flow(relax={relax!r}): relax must be in (0, 2) (1 = plain Sinkhorn)")
        sk_opts = {"tol": tol, "max_iter": max_iter, "scaling": float(scaling), "relax": float(relax)}
        resolved.update(epsilon=eps, tol=tol, max_iter=max_iter, scaling=float(scaling), warm=warm,
                        relax=float(relax))
    loss = _Loss(loss_kind, y, b, kernel=resolved.get("kernel", "gaussian"),
                 bandwidth=resolved.get("bandwidth") or median_bandwidth(y), epsilon=eps or 0.05 * var * d,
                 sk_opts=sk_opts)
    resolved.update(n_target=int(y.shape[0]), loss=loss_kind)

    gen = None
    if kind == "langevin" or (kind == "mmd" and resolved["noise"] > 0):
        gen = torch.Generator(device=dev).manual_seed(0 if seed is None else int(seed) + 2)
    if kind == "mmd":
        drive = _Loss("mmd", y, b, kernel=resolved["kernel"], bandwidth=resolved["bandwidth"])
    elif kind == "sinkhorn":
        drive = loss if loss_kind == "sinkhorn" else _Loss("sinkhorn", y, b, epsilon=eps, sk_opts=sk_opts)

    with _threads_for(n * int(y.shape[0]), dev, small=SMALL_PROBLEM):
        frames, rec_steps, losses = [], [], []
        sk_iters, sk_unconv, sk_per_step = 0, 0, []
        pot = None
        status = "completed"
        last_measure = None  # (step, value) of the flow's own loss at the current x, when it is the frame loss

        def measure(xc):
            if last_measure is not None:
                return last_measure
            if loss.kind == "sinkhorn":
                with torch.no_grad():
                    v, inf = loss.value(xc)
                sk_iters_eval.append(_iters(inf))
                return float(v)
            with torch.no_grad():
                return float(loss.value(xc)[0])

        sk_iters_eval: list[int] = []
        for k in range(steps + 1):
            last_measure = None
            grad = None
            if k < steps and kind in ("mmd", "sinkhorn"):
                xr = x.detach().clone()
                if kind == "mmd" and resolved["noise"] > 0:
                    xr = xr + resolved["noise"] * torch.randn(xr.shape, generator=gen, device=dev, dtype=dt)
                xr.requires_grad_(True)
                with torch.enable_grad():
                    if kind == "sinkhorn":
                        v, inf = drive.value(xr, init=pot if warm else None)
                        it = _iters(inf)
                        sk_iters += it
                        sk_per_step.append(it)
                        if inf["status"] != "converged":
                            sk_unconv += 1
                        pot = inf["potentials"]
                    else:
                        v, _ = drive.value(xr)
                    (grad,) = torch.autograd.grad(v, xr)
                if drive is loss and not (kind == "mmd" and resolved["noise"] > 0):
                    last_measure = float(v.detach())
            if k % record_every == 0 or k == steps:
                val = measure(x)
                frames.append(x.detach().cpu().numpy().copy())
                rec_steps.append(k)
                losses.append(val if not math.isnan(val) else math.inf)
            if k == steps:
                break
            with torch.no_grad():
                if kind in ("mmd", "sinkhorn"):
                    x_new = x - lr * n * grad
                else:
                    lp, s = _logp_and_score(target, x, kind)
                    bad_s = int((~(torch.isfinite(s).all(1) & torch.isfinite(lp))).sum())
                    if bad_s:
                        status = (f"diverged: the target's score is not finite at {bad_s} particle(s) at step {k} "
                                  f"(the target density is 0 there; if the particles flew off, lower lr = {lr:g})")
                        break
                    if kind == "svgd":
                        x_new = x + lr * _svgd_direction(x, s, resolved["bandwidth"])
                    else:
                        noise = torch.randn(x.shape, generator=gen, device=dev, dtype=dt)
                        x_new = x + lr * s + math.sqrt(2 * lr) * noise
            if not torch.isfinite(x_new).all():
                bad = int((~torch.isfinite(x_new).all(1)).sum())
                status = (f"diverged: {bad} particle(s) became non-finite at step {k + 1} (lr = {lr:g}); "
                          "lower lr")
                break
            x = x_new
            if callback is not None and callback(k + 1, None, None) is False:
                # the caller (a page's RunGuard: wall-clock budget or Stop) ends the flow here; the
                # frames so far are kept, the last one at this step
                status = f"stopped: by the caller after step {k + 1}"
                k += 1
                break
        if rec_steps[-1] != k:  # stopped early: keep the last finite positions as the last frame
            val = measure(x)
            frames.append(x.detach().cpu().numpy().copy())
            rec_steps.append(k)
            losses.append(val if not math.isnan(val) else math.inf)

    info = {"loss": loss.name, "n_target": int(y.shape[0]), "target_variance": var, "record_every": record_every}
    info.update({k_: v_ for k_, v_ in resolved.items() if k_ not in ("loss", "n_target")})
    if kind == "sinkhorn":
        info["sinkhorn_iterations"] = sk_iters + drive.bb_iterations
        info["sinkhorn_iterations_target"] = drive.bb_iterations
        info["sinkhorn_iterations_per_step"] = sk_per_step
        info["sinkhorn_unconverged_steps"] = sk_unconv
        if sk_unconv:
            info["warnings"] = [f"Sinkhorn stopped at max_iter={resolved['max_iter']} before tol={resolved['tol']:g} "
                                f"in {sk_unconv} of {len(sk_per_step)} steps; raise max_iter or epsilon"]
    if sk_iters_eval:
        info["loss_sinkhorn_iterations"] = int(sum(sk_iters_eval))
    elapsed = time.perf_counter() - t0
    info["elapsed_s"] = elapsed
    return FlowResult(divergence=kind, frames=np.stack(frames), steps=rec_steps,
                      losses=np.asarray(losses, dtype=float), loss_name=loss.name, status=status, lr=float(lr), n=n,
                      seed=seed, options=resolved, target_points=y.cpu().numpy(), elapsed_s=elapsed, info=info)


def _logp_and_score(target, x, kind):
    """(log p(x) (n,), ∇ log p(x) (n, d)) by autograd, detached."""
    pts = (x if target.dim == 2 else x[:, 0]).detach().requires_grad_(True)
    with torch.enable_grad():
        lp = target.log_prob(pts)
        if not lp.requires_grad:  # log-density constant in x (e.g. Uniform inside its support)
            return lp.detach().reshape(-1), torch.zeros_like(x)
        (g,) = torch.autograd.grad(lp.sum(), pts, allow_unused=True)
    g = torch.zeros_like(x) if g is None else g.reshape(x.shape)
    return lp.detach().reshape(-1), g


def _svgd_direction(x, s, bandwidth):
    """φ(x_i) = (1/n) Σ_j [k(x_j, x_i) s(x_j) + ∇_{x_j} k(x_j, x_i)], k = exp(−|x_i − x_j|²/h),
    s = the target's score at x."""
    n = x.shape[0]
    d2 = sqdist(x, x)
    if bandwidth is None:
        med2 = float(d2.median())
        h = med2 / math.log(n + 1) if med2 > 0 else 1.0
    else:
        h = bandwidth
    K = torch.exp(-d2 / h)
    # ∇_{x_j} k(x_j, x_i) = −(2/h)(x_j − x_i) k  ->  Σ_j = (2/h)(x_i Σ_j K_ij − Σ_j K_ij x_j)
    rep = (2.0 / h) * (x * K.sum(1, keepdim=True) - K @ x)
    return (K @ s + rep) / n
