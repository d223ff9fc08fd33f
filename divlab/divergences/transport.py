"""Optimal-transport divergences: ``wasserstein``, ``sinkhorn`` (debiased), ``sliced_wasserstein``.

Conventions (the same everywhere in divlab):

- Ground cost of Sinkhorn: c(x, y) = |x − y|² (squared Euclidean, *no* factor ½), so that
  ε → 0 gives W₂².
- Entropic OT, regularized by KL(π‖a⊗b) as in POT and GeomLoss::

      OT_ε(a, b) = min_π ⟨C, π⟩ + ε KL(π‖a⊗b) = max_{f,g} ⟨a, f⟩ + ⟨b, g⟩ − ε⟨a⊗b, e^{(f⊕g−C)/ε} − 1⟩.

  ``sinkhorn`` returns the full objective OT_ε (which is what debiasing needs). POT's
  ``ot.sinkhorn2`` returns only the linear part ⟨C, π_ε⟩; that number is reported in
  ``info["transport_cost"]`` and agrees with POT. This differs from POT's (and from
  GeomLoss's ½|x − y|² cost): see docs/conventions.md.
- Debiased Sinkhorn divergence (Feydy et al. 2019): S_ε = OT_ε(a,b) − ½OT_ε(a,a) − ½OT_ε(b,b),
  ≥ 0, = 0 iff a = b, → W₂² as ε → 0 and → an MMD with kernel −c as ε → ∞.
- ``wasserstein`` returns the *distance* W_p (not its p-th power), order p ∈ {1, 2}, Euclidean
  ground metric. ``sliced_wasserstein`` returns (E_θ W_p^p(θ#a, θ#b))^{1/p} as POT does
  (see docs/conventions.md for how these compare with POT and GeomLoss).

Gradients (sinkhorn, ``options={"gradient": ...}``): "envelope" (default) solves without
autograd and returns the value with its envelope-theorem gradient written out (points, weights
and ε, where ∂OT_ε/∂ε = KL(π‖a⊗b); no autograd graph over n × m matrices: see
:mod:`divlab.divergences.ot_solver`); "unrolled" differentiates through every iteration (dense,
memory grows with the iterations); "implicit" differentiates the converged potentials by the
implicit function theorem, which also gives the plan's and the potentials' gradients
(``info["plan"]``, ``info["potentials_implicit"]``). The three agree at convergence
(tests/test_sinkhorn_gradients.py). ``info["solve"]`` and, after a backward pass,
``info["backward"]`` hold time and peak memory. The 1D exact Wasserstein formula and POT's
``emd2`` are differentiable in the points and weights.

Options (``estimate(..., options={...})``): sinkhorn — ``tol`` (row-marginal L1 error, 1e-9),
``max_iter`` (2000 at the final ε), ``scaling`` (ε-annealing factor, 0.5), ``gradient``
("envelope" | "unrolled" | "implicit"), ``backend`` ("auto" | "tensorized" | "online": the
cost matrix kept and iterations in the stabilized scaling domain, or blockwise log-sum-exp with
memory O(n + m); auto switches at n·m > 4·10⁶), ``dtype`` (None | "float32": solve in single
precision), ``init`` (the ``info["potentials"]`` of an earlier result: warm
start), ``batches`` (independent draws when p or q is sampled, 4; stderr = sd/√batches).
``Estimate.error`` of sinkhorn is ε × the final marginal error, a heuristic scale of the
remaining dual gap. wasserstein — ``batches``, ``num_iter_max`` (emd2), ``force_samples`` (use
draws even for two 1D densities); the ``quantile`` estimator takes ``grid`` (CDF cells per
distribution's box, 1024). sliced_wasserstein — ``batches`` (4).

Error bars. When p or q is a distribution (sampled by the estimator), wasserstein, sinkhorn and
sliced_wasserstein run ``batches`` independent batches — every side, batch and seed draws from
its own stream (:func:`divlab.divergences._samples.derive_seed`), and sliced draws its own
directions per batch — and report the batch mean with stderr = sd/√batches, which covers the
sampling of the clouds (and of the directions). Measured over 120-200 seeds: √(mean stderr²)
/ sd of the estimate ≈ 0.9-1.0 (tests/test_sample_errors.py). Between fixed point clouds
(Empirical) the value is the distance between those points: stderr 0, except sliced in 2D,
whose stderr is the directions' Monte Carlo error; ``info["stderr_covers"]`` says which. The
1D ``quantile`` estimator is accurate to ~1e-13 relative for smooth densities (Normal pairs
against the closed forms), and its ``error`` covers the quadrature (two resolutions), the tails
beyond the boxes and rounding.

References: Cuturi (2013); Peyré & Cuturi, *Computational Optimal Transport* (2019);
Feydy et al., *Interpolating between OT and MMD using Sinkhorn divergences* (AISTATS 2019);
Schmitzer (2019) for the ε-scaling and log-domain stabilization.
"""

from __future__ import annotations

import math

import torch

from ..distributions import Distribution, Empirical, MultivariateNormal, Normal
from ..estimators.result import Estimate
from ._samples import check_options, clouds, derive_seed, is_sampled, safe_sqrt, sqdist
from . import ot_solver as S
from .closed_form import register_closed_form
from .gaussian import gauss_moments
from .registry import DivergenceSpec, Param, register

__all__ = ["register_closed_forms", "eps_schedule", "softmin", "sinkhorn_potentials", "ot_eps", "sinkhorn_divergence",
           "wasserstein_1d", "wasserstein_quantile", "bures_w2", "sliced"]

DEFAULT_N = 500
PQ = "p is the target, q the model"


# --------------------------------------------------------------------------- Sinkhorn core
def _f(v) -> float:
    """A float from a number or a 0-dim tensor (detached: no autograd warning)."""
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


def eps_schedule(diameter2: float, eps: float, scaling: float) -> list[float]:
    """Geometric ε-annealing from max(diameter², ε) down to ε, by factor ``scaling`` (pure)."""
    start = max(float(diameter2), eps)
    k = int(math.ceil(math.log(start / eps) / -math.log(scaling))) if start > eps else 0
    return [start * scaling**i for i in range(k)] + [eps]


def softmin(eps: float, C: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """−ε log Σ_j exp(h_j − C_ij/ε): the soft c-transform (log-domain, stable)."""
    return -eps * torch.logsumexp(h[None, :] - C / eps, dim=1)


def sinkhorn_potentials(C, la, lb, eps, *, tol=1e-9, max_iter=2000, scaling=0.5, inner=2, init=None):
    """Dual potentials (f, g) of OT_ε for cost matrix C (n, m) and log-weights la, lb.

    Alternating log-domain updates; ε-scaling from the diameter² (skipped with ``init``, a
    warm start (f, g)). Stops when the row-marginal error Σ_i |π_i· − a_i| < ``tol`` at the
    final ε (the column marginals are exact after each g-update) or after ``max_iter``
    iterations at the final ε. Returns (f, g, iterations, marginal_error, status).
    Runs under the caller's autograd mode.
    """
    a = la.exp()
    if init is not None:
        f, g = init
        sched = [eps]
    else:
        diam2 = float(C.detach().max()) if C.numel() else 0.0
        sched = eps_schedule(diam2, _f(eps), scaling)[:-1] + [eps]
        g = torch.zeros_like(lb)
        f = softmin(sched[0], C, lb + g / sched[0])
    iters = 0
    for e in sched[:-1]:
        for _ in range(inner):
            g = softmin(e, C.T, la + f / e)
            f = softmin(e, C, lb + g / e)
            iters += 1
    err = math.inf
    status = "max_iter"
    for _ in range(max_iter):
        g = softmin(eps, C.T, la + f / eps)
        f_new = softmin(eps, C, lb + g / eps)
        # row marginal of π(f, g) is a_i exp((f_i − f_new_i)/ε)
        err = float((a * torch.expm1((f - f_new).detach() / _f(eps)).abs()).sum().detach())
        f = f_new
        iters += 1
        if not math.isfinite(err) and not torch.isfinite(f).all():
            status = "diverged: non-finite potentials"
            break
        if err < tol:
            status = "converged"
            break
    return f, g, iters, err, status


def ot_eps(x, a, y, b, eps, *, tol=1e-9, max_iter=2000, scaling=0.5, gradient="envelope", init=None,
           solved=None, backend="auto", center_at=None):
    """OT_ε(a, b) between clouds x (n, d) with weights a and y (m, d) with weights b.

    Returns (value, info) where info has the potentials (f, g) (detached), iterations,
    marginal error, status, the transport cost ⟨C, π⟩ (POT's ``sinkhorn2`` value), the backend
    and, for ``gradient="implicit"``, the differentiable potentials and plan
    (``info["potentials_implicit"]``, ``info["plan"]``). ``solved``: (f, g, iterations, error,
    status) already computed (envelope mode only). ``eps`` may be a 0-dim tensor that requires
    grad (∂OT_ε/∂ε = KL(π‖a⊗b)).
    """
    if gradient == "unrolled":
        C = sqdist(x, y)
        la, lb = torch.log(a), torch.log(b)
        f, g, iters, err, status = sinkhorn_potentials(C, la, lb, eps, tol=tol, max_iter=max_iter,
                                                       scaling=scaling, init=init)
        value = (a * f).sum() + (b * g).sum()
        with torch.no_grad():
            e = _f(eps)
            cost = float((torch.exp(la[:, None] + lb[None, :] + (f[:, None] + g[None, :] - C) / e) * C).sum())
        return value, {"potentials": (f.detach(), g.detach()), "iterations": iters, "marginal_error": err,
                       "status": status, "transport_cost": cost, "backend": "tensorized (autograd)"}
    xc, yc = (x - center_at, y - center_at) if center_at is not None else S.center(x, y)
    backend = S.pick_backend(backend, x.shape[0], y.shape[0])
    C = S.pair_sqdist(xc.detach(), yc.detach()) if backend == "tensorized" else None
    if solved is not None:
        f, g, iters, err, status = solved
    else:
        with torch.no_grad():
            la, lb = torch.log(a.detach()), torch.log(b.detach())
            f, g, iters, err, status, backend = S.solve_ab(xc.detach(), la, yc.detach(), lb, float(eps), tol=tol,
                                                           max_iter=max_iter, scaling=scaling, init=init,
                                                           backend=backend, C=C)
    info = {"potentials": (f.detach(), g.detach()), "iterations": iters, "marginal_error": err, "status": status,
            "backend": backend}
    if gradient == "implicit":
        fi, gi = S.implicit_potentials(xc, a, yc, b, eps, f, g, info=info)
        value = (a * fi).sum() + (b * gi).sum()
        plan = S.plan_dense(xc, a, yc, b, S._eps_tensor(eps, x), fi, gi)
        info.update(potentials_implicit=(fi, gi), plan=plan,
                    transport_cost=float((plan.detach() * sqdist(xc.detach(), yc.detach())).sum()))
        return value, info
    value = S.EnvelopeOT.apply(xc, a, yc, b, S._eps_tensor(eps, x), f.detach(), g.detach(), C, info)
    return value, info


def sym_potential(C, la, eps, *, tol=1e-9, max_iter=2000, scaling=0.5, inner=2, init=None):
    """The potential f = g of the symmetric problem OT_ε(a, a): averaged updates
    f ← ½(f + softmin(C, log a + f/ε)), which converge fast where alternating updates oscillate.
    Returns (f, iterations, marginal_error, status)."""
    a = la.exp()
    if init is not None:
        f, sched = init, [eps]
    else:
        sched = eps_schedule(float(C.detach().max()) if C.numel() else 0.0, _f(eps), scaling)[:-1] + [eps]
        f = softmin(sched[0], C, la)
    iters = 0
    for e in sched[:-1]:
        for _ in range(inner):
            f = 0.5 * (f + softmin(e, C, la + f / e))
            iters += 1
    err, status = math.inf, "max_iter"
    for _ in range(max_iter):
        t = softmin(eps, C, la + f / eps)
        err = float((a * torch.expm1((f - t).detach() / _f(eps)).abs()).sum().detach())
        f = 0.5 * (f + t)
        iters += 1
        if err < tol:
            status = "converged"
            break
    return f, iters, err, status


def ot_eps_sym(x, a, eps, *, tol=1e-9, max_iter=2000, scaling=0.5, gradient="envelope", init=None,
               backend="auto", center_at=None):
    """OT_ε(a, a) by the symmetric solver; same (value, info) layout as :func:`ot_eps`."""
    if gradient == "unrolled":
        la = torch.log(a)
        C = sqdist(x, x)
        f, iters, err, status = sym_potential(C, la, eps, tol=tol, max_iter=max_iter, scaling=scaling, init=init)
        value = 2 * (a * f).sum()
        return value, {"potentials": f.detach(), "iterations": iters, "marginal_error": err, "status": status,
                       "backend": "tensorized (autograd)"}
    xc = x - (center_at if center_at is not None else x.detach().mean(0))
    backend = S.pick_backend(backend, x.shape[0], x.shape[0])
    C = S.pair_sqdist(xc.detach(), xc.detach()) if backend == "tensorized" else None
    with torch.no_grad():
        f, iters, err, status, backend = S.solve_sym(xc.detach(), torch.log(a.detach()), float(eps), tol=tol,
                                                     max_iter=max_iter, scaling=scaling, init=init, backend=backend,
                                                     C=C)
    info = {"potentials": f.detach(), "iterations": iters, "marginal_error": err, "status": status,
            "backend": backend}
    if gradient == "implicit":
        fi, gi = S.implicit_potentials(xc, a, xc, a, eps, f, f, info=info)
        value = (a * fi).sum() + (a * gi).sum()
        info["potentials_implicit"] = (fi, gi)
        return value, info
    value = S.EnvelopeOTSym.apply(xc, a, S._eps_tensor(eps, x), f.detach(), C)
    return value, info


def _same_cloud(x, a, y, b) -> bool:
    return x.shape == y.shape and bool(torch.equal(x.detach(), y.detach())) and bool(torch.equal(a.detach(), b.detach()))


class _MarkOut(torch.autograd.Function):
    """Identity on the value; its backward runs first and starts the backward meter."""

    @staticmethod
    def forward(ctx, v, box):
        ctx.box = box
        return v.clone()

    @staticmethod
    def backward(ctx, g):
        m = S.Meter(g.device)
        m.__enter__()
        ctx.box["_meter"] = m
        return g, None


class _MarkIn(torch.autograd.Function):
    """Identity on an input; its backward runs last and stops the backward meter."""

    @staticmethod
    def forward(ctx, t, box):
        ctx.box = box
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        m = ctx.box.pop("_meter", None)
        if m is not None:
            m.__exit__(None, None, None)
            ctx.box["backward"] = m.as_dict()
        return g, None


def sinkhorn_divergence(x, a, y, b, eps, *, debias=True, tol=1e-9, max_iter=2000, scaling=0.5,
                        gradient="envelope", init=None, backend="auto", dtype=None):
    """S_ε = OT_ε(a,b) − ½OT_ε(a,a) − ½OT_ε(b,b) (or OT_ε(a,b) with ``debias=False``).

    ``gradient``: "envelope" (explicit envelope-theorem gradients, no n × m autograd graph),
    "unrolled" (autograd through every iteration, dense) or "implicit" (implicit function
    theorem on the optimality conditions; also differentiates the plan and the potentials:
    ``info["plan"]``, ``info["potentials_implicit"]``). ``backend``: "auto" | "tensorized" |
    "online" (see :mod:`divlab.divergences.ot_solver`). ``dtype``: None (the inputs' dtype) or
    torch.float32 to solve in single precision (the value and gradients come back in the inputs'
    dtype). ``init``: the ``info["potentials"]`` of an earlier call on clouds of the same sizes
    (warm start; skips ε-scaling). ``eps`` may be a 0-dim tensor requiring grad. Returns
    (value, info); ``info["solve"]`` has the forward's time and peak memory, and after a
    backward pass ``info["backward"]`` has the backward's (see :class:`ot_solver.Meter`).
    """
    out_dtype = x.dtype
    if dtype is not None and dtype != x.dtype:
        x, a, y, b = x.to(dtype), a.to(dtype), y.to(dtype), b.to(dtype)
        if isinstance(eps, torch.Tensor):
            eps = eps.to(dtype)
    box: dict = {}  # becomes info: the backward's meter writes info["backward"]
    needs = torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in (x, a, y, b, eps))
    if needs:
        x, a, y, b = (_MarkIn.apply(t, box) if t.requires_grad else t for t in (x, a, y, b))
    init = init or {}
    center_at = None
    if gradient != "unrolled":
        center_at = torch.cat([x.detach(), y.detach()]).mean(0)
    kw = dict(tol=tol, max_iter=max_iter, scaling=scaling, gradient=gradient, backend=backend, center_at=center_at)
    kw_u = dict(tol=tol, max_iter=max_iter, scaling=scaling, gradient=gradient)
    same = debias and gradient == "envelope" and _same_cloud(x, a, y, b)
    with S.Meter(x.device) as meter:
        if same:
            # p = q exactly: solve the symmetric problem once and use f = g for OT_ε(a, b) too, so
            # that S_ε and its gradient are exactly 0 (alternating updates oscillate on symmetric
            # problems and would leave a residual of the order of the tolerance)
            v_aa, i_aa = ot_eps_sym(x, a, eps, init=init.get("aa"), **kw)
            f = i_aa["potentials"]
            v_ab, i_ab = ot_eps(x, a, y, b, eps, solved=(f, f, i_aa["iterations"], i_aa["marginal_error"],
                                                        i_aa["status"]), **kw)
        elif gradient == "unrolled":
            v_ab, i_ab = ot_eps(x, a, y, b, eps, init=init.get("ab"), **kw_u)
        else:
            v_ab, i_ab = ot_eps(x, a, y, b, eps, init=init.get("ab"), **kw)
        if debias:
            if same:
                v_bb, i_bb = ot_eps_sym(y, b, eps, init=i_aa["potentials"], **kw)
            elif gradient == "unrolled":
                v_aa, i_aa = ot_eps_sym(x, a, eps, init=init.get("aa"), **kw_u)
                v_bb, i_bb = ot_eps_sym(y, b, eps, init=init.get("bb"), **kw_u)
            else:
                v_aa, i_aa = ot_eps_sym(x, a, eps, init=init.get("aa"), **kw)
                v_bb, i_bb = ot_eps_sym(y, b, eps, init=init.get("bb"), **kw)
    info = box
    info.update({"iterations": i_ab["iterations"], "marginal_error": i_ab["marginal_error"],
                 "status": i_ab["status"], "transport_cost": i_ab["transport_cost"], "ot_eps": float(v_ab.detach()),
                 "potentials": {"ab": i_ab["potentials"]}, "backend": i_ab["backend"], "gradient": gradient,
                 "dtype": str(x.dtype).replace("torch.", "")})
    for k in ("plan", "potentials_implicit"):
        if k in i_ab:
            info[k] = i_ab[k]
    if not debias:
        value = v_ab
    else:
        parts = (i_ab, i_aa, i_bb)
        info["iterations"] = {"ab": i_ab["iterations"], "aa": i_aa["iterations"], "bb": i_bb["iterations"]}
        info["marginal_error"] = max(i["marginal_error"] for i in parts)
        bad = [i["status"] for i in parts if i["status"] != "converged"]
        info["status"] = bad[0] if bad else "converged"
        info["potentials"].update(aa=i_aa["potentials"], bb=i_bb["potentials"])
        info["ot_eps_aa"], info["ot_eps_bb"] = float(v_aa.detach()), float(v_bb.detach())
        value = v_ab - 0.5 * v_aa - 0.5 * v_bb
    info["solve"] = meter.as_dict()
    if needs and value.requires_grad:
        value = _MarkOut.apply(value, box)
    if value.dtype != out_dtype:
        value = value.to(out_dtype)
    return value, info


# --------------------------------------------------------------------------- exact W_p
def wasserstein_1d(x, a, y, b, order: float) -> torch.Tensor:
    """W_p^p between 1D weighted clouds, exactly: ∫₀¹ |F⁻¹(t) − G⁻¹(t)|^p dt with the weighted
    quantile functions (piecewise constant between the merged cumulative weights).
    Differentiable in the points and the weights."""
    x, y = x.reshape(-1), y.reshape(-1)
    sx, ix = torch.sort(x)
    sy, iy = torch.sort(y)
    A = torch.cumsum(a[ix], 0)
    B = torch.cumsum(b[iy], 0)
    A, B = A / A[-1], B / B[-1]
    t, _ = torch.sort(torch.cat([A, B]))
    t_prev = torch.cat([t.new_zeros(1), t[:-1]])
    dt = t - t_prev
    mid = ((t + t_prev) / 2).detach()
    i = torch.searchsorted(A.detach().contiguous(), mid).clamp(max=sx.numel() - 1)
    j = torch.searchsorted(B.detach().contiguous(), mid).clamp(max=sy.numel() - 1)
    d = (sx[i] - sy[j]).abs()
    return (dt * (d if order == 1 else d**order)).sum()


_GL_CACHE: dict = {}


def _gl(k: int, like: torch.Tensor):
    """Gauss–Legendre nodes and weights on [−1, 1] (k points), as tensors like ``like``."""
    if k not in _GL_CACHE:
        import numpy as np

        _GL_CACHE[k] = np.polynomial.legendre.leggauss(k)
    xi, wi = _GL_CACHE[k]
    return (torch.as_tensor(xi, device=like.device, dtype=like.dtype),
            torch.as_tensor(wi, device=like.device, dtype=like.dtype))


def _breaks(d) -> list[float]:
    """Points where a 1D density has a kink or a jump (cell edges of the CDF quadrature)."""
    from ..distributions import GridDensity, Laplace, Mixture, Uniform

    if isinstance(d, Mixture):
        return [b for c, w in zip(d.components, d.weights.detach().reshape(-1)) if float(w) > 0 for b in _breaks(c)]
    if isinstance(d, Laplace):
        return [float(d.loc.detach())]
    if isinstance(d, Uniform):
        return [float(d.low.detach()), float(d.high.detach())]
    if isinstance(d, GridDensity):
        return d.axes[0].detach().reshape(-1).tolist()
    return []


def _infinite_moment(d, order) -> bool:
    """True when ∫|x|^order d(x) dx = ∞ (then W_order against anything with a finite moment is ∞)."""
    from ..distributions import Mixture, StudentT

    if isinstance(d, Mixture):
        return any(_infinite_moment(c, order) for c, w in zip(d.components, d.weights.detach().reshape(-1))
                   if float(w) > 0)
    if isinstance(d, StudentT):
        return bool((d.df.detach() <= order).any())
    return False


class _Quantiles:
    """Quantiles of a 1D density to ~machine precision, in both tails.

    The CDF is accumulated over cells of the distribution's own box (``cells`` equal cells, split
    at the density's kinks, :func:`_breaks`), each integrated by 8-point Gauss–Legendre: exact to
    rounding for smooth densities and for the piecewise-linear GridDensity. A lower-tail level t
    is solved from the left (F(x) = t), an upper-tail level s from the right (1 − F(x) = s), so
    a level of 1e-19 keeps its relative accuracy. Within its cell, x is found by safeguarded
    Newton steps on the Gauss–Legendre partial integral. The result is differentiable in the
    distribution's parameters by one last Newton step on the graph (implicit function theorem:
    dx/dθ = −∂_θF(x)/f(x)). The mass outside the box is ``1 − mass`` (reported; the CDF is
    normalized by ``mass``).
    """

    def __init__(self, d, cells: int):
        self.d = d
        box = d.bounds().to(d.dtype)
        lo, hi = float(box[0, 0]), float(box[0, 1])
        e = torch.linspace(lo, hi, cells + 1, device=d.device, dtype=d.dtype)
        br = [b for b in _breaks(d) if lo < b < hi]
        if br:
            e = torch.unique(torch.cat([e, torch.tensor(br, device=d.device, dtype=d.dtype)]))  # sorted
        self.e = e
        self.xi, self.wi = _gl(8, e)
        c = self._partial(e[:-1], e[1:])  # cell masses (graph to the parameters)
        self.mass = c.sum()
        z = c.new_zeros(1)
        self.C = torch.cat([z, torch.cumsum(c, 0)])  # ∫ from lo to edge k
        self.S = torch.cat([torch.flip(torch.cumsum(torch.flip(c, [0]), 0), [0]), z])  # ∫ from edge k to hi
        self.Cd, self.Sd, self.md = self.C.detach(), self.S.detach(), self.mass.detach()

    def pdf(self, x):
        return self.d.log_prob(x).exp()

    def _partial(self, a, b):
        """∫_a^b f by 8-point Gauss–Legendre (elementwise a, b)."""
        half = (b - a) / 2
        nodes = (a + b)[..., None] / 2 + half[..., None] * self.xi
        return half * (self.pdf(nodes) * self.wi).sum(-1)

    def __call__(self, level, upper: torch.Tensor):
        """x with F(x) = level where not ``upper``, 1 − F(x) = level where ``upper``."""
        e, n_cell = self.e, self.e.numel() - 1
        level = level.to(device=e.device, dtype=e.dtype)
        with torch.no_grad():
            t = level * self.md
            lo_k = torch.searchsorted(self.Cd.contiguous(), t.contiguous(), right=True) - 1
            # S is decreasing: S[k] ≥ s > S[k+1]
            hi_k = n_cell - torch.searchsorted(torch.flip(self.Sd, [0]).contiguous(), t.contiguous(), right=True)
            k = torch.where(upper, hi_k, lo_k).clamp(0, n_cell - 1)
            a, b = e[k], e[k + 1]
            # r: the mass wanted inside the cell, from its left edge (lower) or right edge (upper)
            r = torch.where(upper, t - self.Sd[k + 1], t - self.Cd[k])
            cm = self.Cd[k + 1] - self.Cd[k]
            frac = torch.where(cm > 0, r / torch.where(cm > 0, cm, torch.ones_like(cm)), torch.full_like(cm, 0.5))
            frac = frac.clamp(0, 1)
            x = torch.where(upper, b - frac * (b - a), a + frac * (b - a))
            tiny = 4 * torch.finfo(e.dtype).eps * (b - a).abs().max()
            for _ in range(10):
                fx = self.pdf(x)
                I = torch.where(upper, self._partial(x, b), self._partial(a, x))
                step = torch.where(fx > 0, (I - r) / torch.where(fx > 0, fx, torch.ones_like(fx)), torch.zeros_like(fx))
                x_new = torch.minimum(torch.maximum(torch.where(upper, x + step, x - step), a), b)
                moved = float((x_new - x).abs().max())
                x = x_new
                if moved <= tiny:
                    break
        # one Newton step on the graph: value ≈ x, gradient −∂F/f (upper: +∂S/f)
        if not self.mass.requires_grad:
            return x
        fx = self.pdf(x).detach()
        # d(normalized CDF)/dx = f/mass
        inv = torch.where(fx > 0, self.md / torch.where(fx > 0, fx, torch.ones_like(fx)), torch.zeros_like(fx))
        lower_res = (self.C[k] + self._partial(a, x)) / self.mass - level
        upper_res = (self.S[k + 1] + self._partial(x, b)) / self.mass - level
        return torch.where(upper, x + upper_res * inv, x - lower_res * inv)


def _quantile_gap(Qp, Qq, dtype):
    """u ↦ F⁻¹(Φ(u)) − G⁻¹(Φ(u)), each tail solved from its own end."""

    def diff(u):
        upper = u > 0
        lev = torch.special.ndtr(-u.abs())  # the tail probability, accurate far out
        return Qp(lev, upper).to(dtype) - Qq(lev, upper).to(dtype)

    return diff


def _gap_roots(diff, U, panels, dtype, device):
    """Sign changes of the quantile gap on [−U, U] (sampled at the 16-point Gauss–Legendre
    nodes of ``panels`` panels), each solved by the Illinois method (modified regula falsi:
    superlinear, stays in its bracket). These are the kinks of |F⁻¹ − G⁻¹|."""
    xi, _ = _gl(16, torch.zeros((), dtype=dtype, device=device))
    edges = torch.linspace(-U, U, panels + 1, dtype=dtype, device=device)
    with torch.no_grad():
        half = (edges[1:] - edges[:-1]) / 2
        nodes = ((edges[1:] + edges[:-1]) / 2)[:, None] + half[:, None] * xi
        us = torch.cat([torch.cat([edges[:-1, None], nodes], 1).reshape(-1), edges[-1:]])
        dv = diff(us)
        sgn = torch.sign(dv)
        idx = torch.nonzero((sgn[:-1] * sgn[1:]) < 0).reshape(-1)
        if not idx.numel():
            return us.new_zeros(0)
        lo, hi = us[idx], us[idx + 1]
        flo, fhi = dv[idx], dv[idx + 1]
        side = torch.zeros_like(lo)
        mid = (lo + hi) / 2
        for _ in range(60):
            mid = (lo * fhi - hi * flo) / (fhi - flo)
            mid = torch.where(torch.isfinite(mid) & (mid > lo) & (mid < hi), mid, (lo + hi) / 2)
            fm = diff(mid)
            left = torch.sign(fm) == torch.sign(flo)
            lo, flo, hi, fhi = (torch.where(left, mid, lo), torch.where(left, fm, flo),
                                torch.where(left, hi, mid), torch.where(left, fhi, fm))
            # Illinois: halve the value kept twice in a row at the same end
            fhi = torch.where(left & (side > 0), fhi / 2, fhi)
            flo = torch.where(~left & (side < 0), flo / 2, flo)
            side = torch.where(left, torch.ones_like(side), -torch.ones_like(side))
            if bool(((fm == 0) | ((hi - lo) <= 1e-14 * (1 + mid.abs()))).all()):
                break
        return mid


def _wp_quantile_integral(diff, order, panels, U, roots, dtype, device):
    """∫₀¹ |F⁻¹ − G⁻¹|^order dt in the variable t = Φ(u), u ∈ [−U, U] (the tails beyond carry
    Φ(−U) each): composite 16-point Gauss–Legendre over ``panels`` equal panels, split at
    ``roots`` (the kinks of |·| for order 1)."""
    xi, wi = _gl(16, torch.zeros((), dtype=dtype, device=device))
    edges = torch.linspace(-U, U, panels + 1, dtype=dtype, device=device)
    if order == 1 and roots.numel():
        edges = torch.unique(torch.cat([edges, roots]))
    half = (edges[1:] - edges[:-1]) / 2
    nodes = ((edges[1:] + edges[:-1]) / 2)[:, None] + half[:, None] * xi
    u = nodes.reshape(-1)
    d = diff(u).abs()
    g = (d if order == 1 else d**order) * torch.exp(-u * u / 2) / math.sqrt(2 * math.pi)
    return (g.reshape(nodes.shape) * wi).sum(-1).mul(half).sum()


QUANTILE_CELLS = 1024
QUANTILE_PANELS = 64
QUANTILE_MAX_PANELS = 1024
QUANTILE_U = 9.0  # Φ(−9) ≈ 1.1e-19 per tail left out


def wasserstein_quantile(p: Distribution, q: Distribution, order: float, m: int = QUANTILE_CELLS, *,
                         info: dict | None = None) -> torch.Tensor:
    """W_p^p between two 1D densities: ∫₀¹ |F⁻¹(t) − G⁻¹(t)|^p dt.

    Quantiles from each density's own box (``m`` cells per box, :class:`_Quantiles`); the
    integral in t = Φ(u) by composite Gauss–Legendre (:func:`_wp_quantile_integral`, split at
    the kinks for W₁), whose integrand is a polynomial times a Gaussian for two Normals; the
    panel count doubles from 64 until two counts agree to 1e-13 (steep quantiles between the
    modes of a mixture need more). Measured against the closed forms (W₂² = Δμ² + Δσ², W₁ by
    mpmath): ~1e-13 relative for Normal pairs (tests/test_transport.py). ``info`` (a dict)
    receives the panels, the last doubling's change, the mass each box leaves out and the
    quantile gaps at u = ±U. Differentiable in the parameters.
    """
    dt, dev = p.dtype, p.device
    Qp, Qq = _Quantiles(p, m), _Quantiles(q, m)
    diff = _quantile_gap(Qp, Qq, dt)
    U = QUANTILE_U
    roots = _gap_roots(diff, U, QUANTILE_PANELS, dt, dev) if order == 1 else torch.zeros(0, dtype=dt, device=dev)
    P = QUANTILE_PANELS
    xscale = float(torch.cat([p.bounds(), q.bounds()]).abs().max())
    with torch.no_grad():
        prev = float(_wp_quantile_integral(diff, order, P // 2, U, roots, dt, dev))
        while True:
            cur = float(_wp_quantile_integral(diff, order, P, U, roots, dt, dev))
            change = abs(cur - prev)
            # converged: relative 1e-13, or down to the rounding of the quantiles (~1e-15 |x| each)
            noise = order * abs(cur) ** ((order - 1) / order) * 1e-14 * xscale
            if change <= 1e-13 * abs(cur) + noise + 1e-300 or P >= QUANTILE_MAX_PANELS:
                break
            prev, P = cur, 2 * P
    grad = Qp.mass.requires_grad or Qq.mass.requires_grad
    val = _wp_quantile_integral(diff, order, P, U, roots, dt, dev) if grad else torch.tensor(cur, dtype=dt, device=dev)
    if info is not None:
        info["panels"], info["panel_change"] = P, change
        info["mass_outside_box"] = {"p": float(1 - Qp.md), "q": float(1 - Qq.md)}
        with torch.no_grad():
            lev = torch.special.ndtr(torch.tensor([-U, -U], dtype=dt, device=dev))
            up = torch.tensor([False, True], device=dev)
            info["end_differences"] = (Qp(lev, up).to(dt) - Qq(lev, up).to(dt)).abs().tolist()
            info["roots"] = roots.tolist()
    return val


def bures_w2(p, q) -> torch.Tensor:
    """W₂² between Gaussians: |m₁ − m₂|² + tr S₁ + tr S₂ − 2 tr (S₂^{½} S₁ S₂^{½})^{½}.

    For 2×2 (and 1×1) matrices tr (S₂^{½}S₁S₂^{½})^{½} = √(tr(S₁S₂) + 2√(det S₁ det S₂)) (its
    eigenvalues are those of S₁S₂), which needs no eigendecomposition and stays differentiable.
    """
    m1, S1 = gauss_moments(p)
    m2, S2 = gauss_moments(q)
    d2 = ((m1 - m2) ** 2).sum(-1)
    tr = lambda M: torch.diagonal(M, dim1=-2, dim2=-1).sum(-1)  # noqa: E731
    if S1.shape[-1] == 1:
        cross = torch.sqrt(S1[..., 0, 0] * S2[..., 0, 0])
    else:
        det = safe_sqrt(torch.linalg.det(S1) * torch.linalg.det(S2))
        cross = safe_sqrt(tr(S1 @ S2) + 2 * det)
    return (d2 + tr(S1) + tr(S2) - 2 * cross).clamp_min(0)


def _bures(p, q, order):
    if order != 2 or p.dim != q.dim:
        return None
    return safe_sqrt(bures_w2(p, q))


def register_closed_forms() -> None:
    """Register the Bures W₂ closed form for (Normal, Normal) and (MultivariateNormal,
    MultivariateNormal). Called at import by :mod:`divlab.divergences`; :func:`bures_w2` is
    tested against independent references in ``tests/test_transport.py``.
    """
    for P in (Normal, MultivariateNormal):
        register_closed_form("wasserstein", P, P)(_bures)


def sliced(x, a, y, b, order: float, n_projections: int, seed: int | None, *, gen_seed: int | None = None):
    """Sliced W_p: projections θ_k uniform on the circle (seeded); returns (SW, W_p^p per θ, θ).

    The directions come from a generator seeded with ``gen_seed`` when given, else with
    ``seed`` (0 when None: the same directions every call)."""
    d = x.shape[1]
    if d == 1:
        theta = torch.ones((1, 1), device=x.device, dtype=x.dtype)
    else:
        gen = torch.Generator(device="cpu")
        gen.manual_seed(gen_seed if gen_seed is not None else (0 if seed is None else seed))
        if d == 2:
            phi = torch.rand(n_projections, generator=gen, dtype=torch.float64) * (2 * math.pi)
            theta = torch.stack([phi.cos(), phi.sin()], -1).to(device=x.device, dtype=x.dtype)
        else:  # d > 2 (point clouds of any dimension): uniform on the sphere, normalized Gaussians
            g = torch.randn(n_projections, d, generator=gen, dtype=torch.float64)
            theta = (g / g.norm(dim=1, keepdim=True)).to(device=x.device, dtype=x.dtype)
    per = torch.stack([wasserstein_1d(x @ t, a, y @ t, b, order) for t in theta])
    return per.mean() ** (1.0 / order) if order == 1 else safe_sqrt(per.mean()), per, theta


# --------------------------------------------------------------------------- estimators
def _clouds(p, q, n, seed, owner, batch=None):
    return clouds(p, q, n, seed, owner, DEFAULT_N, batch=batch)


def _batched(owner, p, q, n, seed, batches, one):
    """Run ``one(x, a, y, b, i) -> (value, info)`` on ``batches`` independent draws when p or q is
    sampled (stderr = sd/√batches); once otherwise (stderr 0: the clouds are fixed).

    Batch i draws p and q from their own streams (``clouds(..., batch=i)``: independent across
    sides, batches and seeds), so the batch values are independent and sd/√batches is the
    standard error of their mean (with ``seed + i`` streams, batch i's q draws were batch
    i + 1's p draws: correlation −0.4 to −0.5 between neighbours, stderr ~1.8× too large)."""
    sampled = is_sampled(p) or is_sampled(q)
    B = batches if sampled else 1
    vals, infos = [], []
    for i in range(B):
        x, a, y, b, n_used = _clouds(p, q, n, seed, owner, batch=i if B > 1 else None)
        v, info = one(x, a, y, b, i if B > 1 else None)
        vals.append(v)
        infos.append(info)
    info = infos[0]
    if B > 1:
        vs = torch.stack([v.detach() for v in vals])
        info = dict(info, batches=B, batch_values=vs.tolist())
        return torch.stack(vals).mean(), float(vs.std() / math.sqrt(B)), info, x.shape[0] * B
    return vals[0], 0.0, info, int(max(x.shape[0], y.shape[0]))


def _check_batches(owner, b):
    if isinstance(b, bool) or not isinstance(b, int) or b < 1:
        raise ValueError(f"{owner}(batches={b!r}): batches must be a positive integer")
    return b


GRADIENTS = ("envelope", "unrolled", "implicit")
BACKENDS = ("auto", "tensorized", "online")


def _sinkhorn_samples(p, q, *, n=None, seed=None, options=None, epsilon=0.1, debias=True):
    owner = "sinkhorn"
    o = check_options(owner, options or {}, {"tol": 1e-9, "max_iter": 2000, "scaling": 0.5,
                                             "gradient": "envelope", "init": None, "batches": 4,
                                             "backend": "auto", "dtype": None})
    if o["gradient"] not in GRADIENTS:
        raise ValueError(f"{owner}(gradient={o['gradient']!r}): gradient must be one of "
                         f"{', '.join(repr(g) for g in GRADIENTS)}")
    if o["backend"] not in BACKENDS:
        raise ValueError(f"{owner}(backend={o['backend']!r}): backend must be one of "
                         f"{', '.join(repr(g) for g in BACKENDS)}")
    dtypes = {None: None, "float64": torch.float64, "float32": torch.float32, torch.float64: torch.float64,
              torch.float32: torch.float32}
    if o["dtype"] not in dtypes:
        raise ValueError(f"{owner}(dtype={o['dtype']!r}): dtype must be None, 'float64' or 'float32'")
    if not 0 < float(o["scaling"]) < 1:
        raise ValueError(f"{owner}(scaling={o['scaling']!r}): scaling must be in (0, 1)")
    if not float(o["tol"]) > 0:
        raise ValueError(f"{owner}(tol={o['tol']!r}): tol must be > 0")
    batches = _check_batches(owner, o["batches"])
    if o["init"] is not None:
        batches = 1

    def one(x, a, y, b, i):
        eps = epsilon if isinstance(epsilon, torch.Tensor) and epsilon.requires_grad else float(epsilon)
        return sinkhorn_divergence(x, a, y, b, eps, debias=bool(debias), tol=float(o["tol"]),
                                   max_iter=int(o["max_iter"]), scaling=float(o["scaling"]),
                                   gradient=o["gradient"], init=o["init"], backend=o["backend"],
                                   dtype=dtypes[o["dtype"]])

    value, se, info, n_used = _batched(owner, p, q, n, seed, batches, one)
    info["gradient"] = o["gradient"]
    reason = None if info["status"] == "converged" else (
        f"Sinkhorn stopped at max_iter={o['max_iter']} with marginal error {info['marginal_error']:.3g} "
        f"(tol {o['tol']:g}); raise max_iter or epsilon")
    e = float(epsilon.detach()) if isinstance(epsilon, torch.Tensor) else float(epsilon)
    return Estimate(value=value, estimator="samples", divergence="sinkhorn",
                    params={"epsilon": e, "debias": bool(debias)},
                    stderr=se, error=float(info["marginal_error"]) * e, n=n_used, reason=reason, info=info)


def _quantile_ok(p, q):
    return (p.dim == 1 and q.dim == 1 and not isinstance(p, Empirical) and not isinstance(q, Empirical)
            and getattr(p, "has_density", True) and getattr(q, "has_density", True)
            and not p.batch_shape and not q.batch_shape)


def _wasserstein_quantile_est(p, q, *, n=None, seed=None, options=None, order=2):
    owner = "wasserstein"
    o = check_options(owner, options or {}, {"grid": QUANTILE_CELLS})
    if not _quantile_ok(p, q):
        raise ValueError(f"{owner}: the quantile estimator needs two 1D distributions with densities "
                         f"(got {type(p).__name__}({p.dim}D), {type(q).__name__}({q.dim}D))")
    g = o["grid"]
    if isinstance(g, bool) or not isinstance(g, int) or g < 16:
        raise ValueError(f"{owner}(grid={g!r}): grid (CDF cells per distribution's box) must be an integer >= 16")
    heavy = [nm for nm, d in (("p", p), ("q", q)) if _infinite_moment(d, order)]
    if heavy:
        return Estimate(value=torch.tensor(math.inf, dtype=p.dtype, device=p.device), estimator="quantile",
                        divergence="wasserstein", params={"order": order}, n=g,
                        reason=f"W_{order} is infinite: {' and '.join(heavy)} has no finite moment of order {order} "
                               "(a Student-t with df ≤ order)")
    info: dict = {}
    wp = wasserstein_quantile(p, q, order, g, info=info)
    with torch.no_grad():
        coarse = wasserstein_quantile(p, q, order, g // 2)  # half the CDF cells
    # error of W_p^p: the two resolutions' difference (the coarse one's error, an upper scale of the
    # fine one's for smooth densities), the mass outside the boxes and beyond u = ±U moved at most
    # the span, and rounding
    # tails: the mass beyond u = ±U and outside the boxes, moved about 4× the quantile gap at ±U
    # (for Normals the left-out ∫_U^∞ (a u + b)² φ is ≈ (aU + b)² Φ(−U))
    out = max(info["mass_outside_box"]["p"] + info["mass_outside_box"]["q"], 0.0) + float(
        torch.special.ndtr(torch.tensor(-QUANTILE_U, dtype=torch.float64)))
    wpd = float(wp.detach())
    err_pp = (abs(wpd - float(coarse)) + info["panel_change"] + 4 * out * sum(dd**order for dd in info["end_differences"])
              + 1e-13 * abs(wpd))
    val = wp if order == 1 else safe_sqrt(wp)
    err = err_pp if order == 1 else math.sqrt(wpd + err_pp) - math.sqrt(max(wpd, 0.0))
    # rounding of the quantiles themselves (~1e-16 |x| each; with a margin): bounds W_p's error
    # for either order (‖δ‖_p ≤ max |δ|), and dominates when p ≈ q (W ≪ |x|)
    err += 1e-14 * float(torch.cat([p.bounds(), q.bounds()]).abs().max())
    info.update(cells=g,
                error_covers="quadrature (CDF cells: m vs m/2; panels: the last doubling), the tails beyond the "
                             "boxes and u = ±U, rounding")
    return Estimate(value=val, estimator="quantile", divergence="wasserstein", params={"order": order},
                    error=float(err), n=g, info=info)


def _wasserstein_samples(p, q, *, n=None, seed=None, options=None, order=2):
    owner = "wasserstein"
    options = dict(options or {})
    if _quantile_ok(p, q) and not options.pop("force_samples", False):
        return _wasserstein_quantile_est(p, q, n=n, seed=seed, options=options, order=order)
    options.pop("force_samples", None)
    o = check_options(owner, options, {"batches": 4, "num_iter_max": 1_000_000})
    batches = _check_batches(owner, o["batches"])

    def one(x, a, y, b, i):
        if x.shape[1] == 1:
            wp = wasserstein_1d(x, a, y, b, order)
            return (wp if order == 1 else safe_sqrt(wp)), {"method": "1D quantile (exact)"}
        import ot

        M = sqdist(x, y)
        M = safe_sqrt(M) if order == 1 else M
        wp, log = ot.emd2(a, b, M, numItermax=int(o["num_iter_max"]), log=True)
        info = {"method": "ot.emd2 (exact, network simplex)", "status": log.get("warning") or "converged"}
        return (wp if order == 1 else safe_sqrt(wp)), info

    value, se, info, n_used = _batched(owner, p, q, n, seed, batches, one)
    reason = None if info.get("status", "converged") == "converged" else f"ot.emd2: {info['status']}"
    return Estimate(value=value, estimator="samples", divergence="wasserstein", params={"order": order},
                    stderr=se, n=n_used, reason=reason, info=info)


def _sliced_samples(p, q, *, n=None, seed=None, options=None, order=2, n_projections=100):
    owner = "sliced_wasserstein"
    o = check_options(owner, options or {}, {"batches": 4})
    batches = _check_batches(owner, o["batches"])
    L = int(n_projections)
    sampled = [nm for nm, d in (("p", p), ("q", q)) if is_sampled(d)]

    def one(x, a, y, b, i):
        # batch i: its own directions, independent of every other batch and of the draws
        gs = None if i is None or seed is None else derive_seed(seed, 1 + i, 2)
        if i is not None and seed is None:
            gs = int(torch.randint(0, 2**62, (1,)).item())
        val, per, theta = sliced(x, a, y, b, order, L, seed, gen_seed=gs)
        return val, {"projections": theta.detach(), "per_projection": per.detach()}

    value, se, info, n_used = _batched(owner, p, q, n, seed, batches, one)
    info = dict(info)
    K = info["per_projection"].numel()
    if len(info.get("batch_values", [])) > 1:
        info["stderr_covers"] = (f"the draws of {' and '.join(sampled)} and the random directions: sd of "
                                 f"{info['batches']} independent batches (draws and directions) / √{info['batches']}")
    elif K > 1:
        # fixed clouds: only the directions are random. Monte Carlo error of the projections
        # (delta method on mean^(1/p))
        per = info["per_projection"]
        m = float(per.mean())
        se_mean = float(per.std() / math.sqrt(K))
        se = se_mean / order * m ** (1.0 / order - 1) if m > 0 else 0.0
        info["stderr_covers"] = ("the random directions only: p and q are fixed point clouds, and the value is "
                                 "the sliced distance between these points (not between the distributions they "
                                 "were drawn from)")
    else:
        info["stderr_covers"] = ("nothing random: 1D fixed point clouds, a single direction, the value is exact for "
                                 "these points (not for the distributions they were drawn from)")
    return Estimate(value=value, estimator="samples", divergence="sliced_wasserstein",
                    params={"order": order, "n_projections": L}, stderr=se, n=n_used, info=info)


# --------------------------------------------------------------------------- registry
ORDER = Param("order", 2, choices=(1, 2), label="order",
              description="order of the Wasserstein distance: W_1 (earth mover's) or W_2")

register(DivergenceSpec(
    key="wasserstein", name="Wasserstein W_p", latex=r"W_p(p,q)=\Big(\inf_{\pi\in\Pi(p,q)}\int|x-y|^p\,d\pi\Big)^{1/p}",
    unit="units of x",
    family="transport", behaviour="balanced", symmetric=True, params=(ORDER,), needs=("samples",),
    direction=f"W_p(p, q), symmetric; a distance in the units of x ({PQ})",
    description="Wasserstein distance of order p (the distance, not its p-th power), Euclidean ground metric. "
                "Exact: Bures formula for Gaussian pairs (W_2; transport.bures_w2), quantile functions in 1D, "
                "network simplex (POT ot.emd2) between 2D point clouds. Finite for any supports, unlike KL.",
    from_logs=None, estimator_fns={"samples": _wasserstein_samples, "quantile": _wasserstein_quantile_est},
    look_for="It measures how far mass must move, so it still gives a useful gradient when the supports do "
             "not overlap: a q far from p is pulled towards it."))

register(DivergenceSpec(
    key="sinkhorn", name="Sinkhorn divergence (debiased)",
    unit="squared units of x",
    latex=r"S_\varepsilon=\mathrm{OT}_\varepsilon(p,q)-\tfrac12\mathrm{OT}_\varepsilon(p,p)-\tfrac12\mathrm{OT}_\varepsilon(q,q)",
    family="transport", behaviour="balanced", symmetric=True,
    params=(Param("epsilon", 0.1, 1e-10, math.inf, label="ε",
                  description="entropic blur, in units of squared distance (absolute, not relative): ε → 0 gives "
                              "W₂², large ε gives a kernel (MMD-like) discrepancy"),
            Param("debias", True, choices=(True, False), label="debias",
                  description="subtract ½OT_ε(p,p) + ½OT_ε(q,q) (True) or return the raw OT_ε(p,q) (False)")),
    needs=("samples",),
    direction=f"S_ε(p, q), symmetric, cost |x − y|² ({PQ})",
    description="Entropic optimal transport with cost |x − y|² and KL(π‖p⊗q) regularization, debiased. "
                "Log-domain Sinkhorn with ε-scaling; envelope-theorem gradients. ≥ 0, zero iff p = q.",
    from_logs=None, estimator_fns={"samples": _sinkhorn_samples},
    look_for="Small ε behaves like W₂² (moves mass along the shortest paths); large ε blurs the geometry "
             "and acts like an MMD."))

register(DivergenceSpec(
    key="sliced_wasserstein", name="Sliced Wasserstein",
    unit="units of x",
    latex=r"SW_p(p,q)=\Big(\mathbb{E}_{\theta}\,W_p^p(\theta_\#p,\theta_\#q)\Big)^{1/p}",
    family="transport", behaviour="balanced", symmetric=True,
    params=(ORDER, Param("n_projections", 100, 1, 10_000, integer=True, label="projections",
                         description="number of random directions θ on the circle (seeded)")),
    needs=("samples",),
    direction=f"SW_p(p, q), symmetric ({PQ})",
    description="Average of exact 1D Wasserstein distances of random 1D projections. Cheap (sorting), "
                "weaker than W_p in 2D; equal to W_p in 1D. Between distributions: the mean of independent "
                "batches (draws and directions), stderr from their spread.",
    from_logs=None, estimator_fns={"samples": _sliced_samples},
    look_for="Like W_p but blind to structure that no single projection sees."))
