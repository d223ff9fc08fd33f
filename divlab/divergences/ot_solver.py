"""Entropic OT solvers behind ``sinkhorn``: two backends, explicit (envelope) gradients, and
implicit differentiation.

Cost c(x, y) = |x − y|², OT_ε(a, b) = max_{f,g} ⟨a, f⟩ + ⟨b, g⟩ − ε⟨a⊗b, e^{(f⊕g−C)/ε} − 1⟩
(the conventions of :mod:`divlab.divergences.transport`).

Backends (``backend=``):

- ``"tensorized"``: the cost matrix C (n × m) is kept. The annealing stages of ε-scaling run in
  the log domain; at the final ε the iteration runs in the *stabilized scaling* domain
  (Schmitzer 2019): the plan P = (a⊗b) e^{(f⊕g−C)/ε} at the current potentials is formed once,
  then u ← a / (P v), v ← b / (Pᵀ u) are two matrix–vector products per iteration (no
  exponential), and the scalings are absorbed into (f, g) (f += ε log u, P rebuilt) whenever
  |log u| or |log v| exceeds :data:`ABSORB` (or a row underflows). Same fixed point and stopping
  rule as the log-domain iteration, ~20× cheaper per iteration on a CPU.
- ``"online"``: nothing of size n × m is kept. Each soft c-transform
  T(h)_i = −ε log Σ_j exp(h_j − |x_i − y_j|²/ε) runs over blocks of rows, with
  |x_i − y_j|² = |x_i|² + |y_j|² − 2x_i·y_j (one matrix product per block, after centring both
  clouds on their joint mean, which keeps the expansion accurate at large offsets). Memory is
  O((n + m)·d + block × m).
- ``"auto"``: tensorized while n·m ≤ :data:`TENSORIZED_MAX` entries, online beyond.

At the final ε both backends over-relax (:class:`Relaxation`): after 20 plain iterations the
observed contraction rate r sets ω = 2/(1 + √(1 − r)), and each half-step moves a potential ω
times its plain update (2–3.5× fewer iterations at ε = 0.01 for tol 1e-4; less at tight
tolerances, where the late iterations contract more slowly). The online c-transform is shifted
by the previous potential instead of the row maximum (one matrix product and one exponential
per block).

Symmetric problems OT_ε(a, a) use averaged updates f ← ½(f + T(f)) (u ← √(u · a/(P u)) in the
scaling domain), which converge where alternating updates oscillate.

Gradients. :class:`EnvelopeOT` returns ⟨a, T_x(g)⟩ + ⟨b, T_y(f)⟩ (one extrapolation from the
converged potentials, as GeomLoss does) and its backward is written out (Danskin's envelope
theorem), with no autograd graph over n × m matrices:
∂/∂x_i = 2a_i(x_i − Σ_j P_ij y_j) (P the row-normalized plan), ∂/∂a_i = f_i, and
∂/∂ε = KL(π‖a⊗b) = (OT_ε − ⟨π, C⟩)/ε. :func:`implicit_potentials` differentiates the potentials
themselves by the implicit function theorem on the optimality conditions (see its docstring);
everything built from them (the value, the plan, the entropic map) then has exact gradients at
convergence, including those the envelope theorem does not give.

References: Schmitzer, *Stabilized sparse scaling algorithms for entropy regularized transport
problems* (SIAM J. Sci. Comput. 2019); Feydy et al. (AISTATS 2019) and GeomLoss for the
symmetric updates and the extrapolated envelope gradient; Blondel et al., *Efficient and modular
implicit differentiation* (NeurIPS 2022) and OTT-JAX's implicit differentiation; Luise et al.
(2018) for the gradient of the entropic plan.
"""

from __future__ import annotations

import math
import os
import time

import torch


__all__ = ["TENSORIZED_MAX", "ABSORB", "pick_backend", "center", "solve_ab", "solve_sym", "EnvelopeOT",
           "EnvelopeOTSym", "implicit_potentials", "plan_dense", "ctransform", "Meter", "Relaxation"]

#: n·m above which ``backend="auto"`` switches from the tensorized to the online backend
#: (4·10⁶ entries: 32 MB per float64 matrix)
TENSORIZED_MAX = 4_000_000
#: |log u| beyond which the scaling-domain iteration absorbs its scalings into the potentials
ABSORB = {torch.float64: 50.0, torch.float32: 10.0}
#: entries of one row block of the online backend (1 MiB in float64: below the 4 MiB mmap threshold
#: set by :func:`divlab.device.tune_cpu_allocator`, so block temporaries come from the heap, not
#: from fresh page-faulted mappings; 16 MiB blocks were ~2× slower per c-transform at n = 10⁴, and
#: 1 MiB was as fast as 2 MiB or faster: 0.27–0.30 s against 0.33 s)
BLOCK_ENTRIES = 1 << 17


def pair_sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|x_i − y_j|² (n, m) by explicit differences, one coordinate at a time (exact 0 on the
    diagonal, never negative; no (n, m, d) temporary)."""
    C = (x[:, None, 0] - y[None, :, 0]).square_()
    for k in range(1, x.shape[1]):
        C.add_((x[:, None, k] - y[None, :, k]).square_())
    return C


def pick_backend(backend: str, n: int, m: int) -> str:
    if backend == "auto":
        return "tensorized" if n * m <= TENSORIZED_MAX else "online"
    return backend


def center(x: torch.Tensor, y: torch.Tensor):
    """Both clouds shifted by their joint mean (detached): the cost is translation invariant."""
    c = torch.cat([x.detach(), y.detach()]).mean(0)
    return x - c, y - c


def eps_schedule(diameter2: float, eps: float, scaling: float) -> list[float]:
    """Geometric ε-annealing from max(diameter², ε) down to ε, by factor ``scaling`` (pure)."""
    start = max(float(diameter2), eps)
    k = int(math.ceil(math.log(start / eps) / -math.log(scaling))) if start > eps else 0
    return [start * scaling**i for i in range(k)] + [eps]


def _diam2(x, y) -> float:
    lo = torch.minimum(x.detach().min(0).values, y.detach().min(0).values)
    hi = torch.maximum(x.detach().max(0).values, y.detach().max(0).values)
    return float(((hi - lo) ** 2).sum())


# --------------------------------------------------------------------------- c-transforms
def ctransform(eps, x, y, h, *, C=None, need=(), block=None, guess=None):
    """T_i = −ε log Σ_j exp(h_j − |x_i − y_j|²/ε) (n,), and on request per row i, with the
    row-normalized weights P_ij = softmax_j(h_j − |x_i − y_j|²/ε): ``"bary"`` Σ_j P_ij y_j (n, d) and
    ``"cost"`` Σ_j P_ij |x_i − y_j|² (n,). Dense when ``C`` (n, m) is given, else blockwise over
    rows (memory block × m). Returns (T, {name: tensor}).

    ``guess`` (n,), blockwise only: an estimate of T (the previous iterate's potential). Each row
    is then shifted by s_i = (|x_i|² − guess_i)/ε instead of its maximum, and the shift enters the
    block's single matrix product ([x, −s, 1]·[2y/ε, 1, h − |y|²/ε]ᵀ): one product, one
    exponential and one sum per block instead of five passes (~30 % faster at n = 10⁴). Rows
    whose sum is not a normal float (a guess off by more than ~700·ε) are redone with the max."""
    if C is not None:
        S = torch.sub(h[None, :], C, alpha=1.0 / eps)
        mx = S.max(1).values
        mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
        P = S.sub_(mx[:, None]).exp_()
        tot = P.sum(1)
        lse = tot.log() + mx
        out = {}
        if need:
            P.div_(tot[:, None])
            if "bary" in need:
                out["bary"] = P @ y
            if "cost" in need:
                out["cost"] = (P * C).sum(1)
        return -eps * lse, out
    n, m = x.shape[0], y.shape[0]
    block = block or max(1, BLOCK_ENTRIES // max(m, 1))
    y2 = (y * y).sum(1)
    x2 = (x * x).sum(1)
    u = h - y2 / eps
    yy = y * (2.0 / eps)
    T = x.new_empty(n)
    bary = x.new_empty(n, y.shape[1]) if "bary" in need else None
    cost = x.new_empty(n) if "cost" in need else None
    rhs = None
    if need:
        rhs = torch.cat([y, y2[:, None]], 1)
    shift = Xa = Ya = None
    if guess is not None and bool(torch.isfinite(guess).all()) and bool(torch.isfinite(u).all()):
        shift = (x2 - guess) / eps
        ones_m = torch.ones(m, 1, dtype=x.dtype, device=x.device)
        Ya = torch.cat([yy, ones_m, u[:, None]], 1).T.contiguous()
        Xa = torch.cat([x, -shift[:, None], torch.ones(n, 1, dtype=x.dtype, device=x.device)], 1)
    big = math.log(torch.finfo(x.dtype).max) - 5
    for s in range(0, n, block):
        e = min(n, s + block)
        if Xa is not None:
            S = Xa[s:e] @ Ya
            S.exp_()
            tot = S.sum(1)
            lt = tot.log()
            ok = torch.isfinite(lt) & (lt.abs() < big)
            if bool(ok.all()):
                T[s:e] = x2[s:e] - eps * (lt + shift[s:e])
                if need:
                    W = (S @ rhs) / tot[:, None]
                    _fill(x, x2, s, e, W, bary, cost)
                continue
        S = torch.addmm(u[None, :], x[s:e], yy.T)
        mx = S.max(1).values
        mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
        S.sub_(mx[:, None]).exp_()
        tot = S.sum(1)
        T[s:e] = x2[s:e] - eps * (tot.log() + mx)
        if need:
            W = (S @ rhs) / tot[:, None]
            _fill(x, x2, s, e, W, bary, cost)
    out = {}
    if bary is not None:
        out["bary"] = bary
    if cost is not None:
        out["cost"] = cost
    return T, out


def _fill(x, x2, s, e, W, bary, cost):
    """The rows s:e of the barycentres and transport costs from W = P·[y, |y|²] (row-normalized)."""
    if bary is not None:
        bary[s:e] = W[:, :-1]
    if cost is not None:
        cost[s:e] = (x2[s:e] - 2 * (x[s:e] * W[:, :-1]).sum(1) + W[:, -1]).clamp_min(0)


# --------------------------------------------------------------------------- solvers
class Relaxation:
    """Over-relaxation factor ω of the final-ε Sinkhorn iterations (no autograd).

    Each half-step moves a potential a factor ω along its plain update, f ← f + ω (T(g) − f)
    (in the scaling domain u ← u^(1−ω) (a/(P v))^ω). Plain Sinkhorn is ω = 1; 1 < ω < 2 converges
    to the same fixed point, several times faster when ε is small (Thibault et al., *Overrelaxed
    Sinkhorn–Knopp algorithm*, 2021; Lehmann et al., *A note on overrelaxation in the Sinkhorn
    algorithm*, 2022). ``"auto"`` runs :attr:`WARMUP` plain iterations, estimates their
    contraction rate r from the marginal errors of the last :attr:`WINDOW`, and sets
    ω = 2 / (1 + √(1 − r)) (the SOR optimum for that rate), at most :attr:`MAX`; if the error
    then grows 10× above its best, it falls back to ω = 1 for good. The stopping rule counts the
    column error of the relaxed potential too, so ``tol`` means the same with or without it.
    A number in (0, 2) fixes ω."""

    WARMUP, WINDOW, MAX = 20, 10, 1.9

    def __init__(self, omega="auto"):
        self.auto = omega == "auto"
        if not self.auto:
            if isinstance(omega, bool) or not isinstance(omega, (int, float)) or not 0 < float(omega) < 2:
                raise ValueError(f"sinkhorn(omega={omega!r}): omega must be 'auto' or a number in (0, 2)")
        self.omega = 1.0 if self.auto else float(omega)
        self.errs: list[float] = []
        self.best = math.inf
        self.failed = False

    def update(self, err: float) -> None:
        self.errs.append(err)
        if not self.auto or self.failed:
            return
        if self.omega == 1.0:
            k = len(self.errs)
            if k >= self.WARMUP and self.errs[-1 - self.WINDOW] > 0 and math.isfinite(self.errs[-1 - self.WINDOW]):
                r = (self.errs[-1] / self.errs[-1 - self.WINDOW]) ** (1.0 / self.WINDOW)
                if 0 < r < 1:
                    self.omega = min(self.MAX, 2.0 / (1.0 + math.sqrt(1.0 - r)))
                    self.best = err
        elif not math.isfinite(err) or err > 10 * self.best:
            self.fail()
        self.best = min(self.best, err)

    def fail(self) -> None:
        self.omega, self.failed = 1.0, True


def _log_stage(eps, T_xy, T_yx, la, lb, f, g):
    """One alternating log-domain update (online backend), each c-transform shifted by the
    previous potential (see :func:`ctransform`'s ``guess``)."""
    g = T_yx(eps, la + f / eps, guess=g)
    f = T_xy(eps, lb + g / eps, guess=f)
    return f, g


def solve_ab(x, la, y, lb, eps, *, tol=1e-9, max_iter=2000, scaling=0.5, inner=2, init=None, backend="auto",
             C=None, omega="auto"):
    """Dual potentials (f, g) of OT_ε(a, b) for clouds x (n, d), y (m, d) (no autograd).

    ε-scaling from the clouds' diameter² (skipped with ``init`` = (f, g), a warm start); at the
    final ε, alternating updates until the marginal L1 error Σ_i |π_i· − a_i| (+ Σ_j |π_·j − b_j|
    while over-relaxed; the columns are exact after a plain g-update) < ``tol`` or ``max_iter``
    iterations. ``omega``: the final stage's over-relaxation (:class:`Relaxation`; "auto" by
    default, 1.0 for plain Sinkhorn). ``C``: the cost matrix when the caller has it (tensorized
    backend). Returns (f, g, iterations, error, status, backend).
    """
    eps = float(eps)
    n, m = x.shape[0], y.shape[0]
    backend = pick_backend(backend, n, m)
    if backend == "tensorized":
        if C is None:
            C = pair_sqdist(x, y)
        T_xy = lambda e, h: -e * torch.logsumexp(h[None, :] - C / e, dim=1)  # noqa: E731
        T_yx = lambda e, h: -e * torch.logsumexp(h[None, :] - C.T / e, dim=1)  # noqa: E731
    else:
        T_xy = lambda e, h, guess=None: ctransform(e, x, y, h, guess=guess)[0]  # noqa: E731
        T_yx = lambda e, h, guess=None: ctransform(e, y, x, h, guess=guess)[0]  # noqa: E731
    a = la.exp()
    iters = 0
    if init is not None:
        f, g = init
        f, g = f.to(x.dtype), g.to(x.dtype)
        sched = [eps]
    else:
        sched = eps_schedule(float(C.max()) if C is not None and C.numel() else _diam2(x, y), eps, scaling)
        f = T_xy(sched[0], lb)
        g = T_yx(sched[0], la + f / sched[0])
    if backend == "tensorized":
        buf = torch.empty_like(C)
        for e in sched[:-1]:
            f, g, it, _, _ = _scaling_ab(C, la, lb, e, f, g, 0.0, inner, T_xy, T_yx, buf)
            iters += it
        f, g, it, err, status = _scaling_ab(C, la, lb, eps, f, g, tol, max_iter, T_xy, T_yx, buf, omega)
        return f, g, iters + it, err, status, backend
    for e in sched[:-1]:
        for _ in range(inner):
            f, g = _log_stage(e, T_xy, T_yx, la, lb, f, g)
            iters += 1
    b = lb.exp()
    relax = Relaxation(omega)
    err, status = math.inf, "max_iter"
    for _ in range(max_iter):
        w = relax.omega
        g_plain = T_yx(eps, la + f / eps, guess=g)
        # column error of (f, g) with the relaxed g (0 for plain updates), row error of (f, g)
        g = g_plain if w == 1.0 else torch.lerp(g, g_plain, w)
        col = 0.0 if w == 1.0 else float((b * torch.expm1((g - g_plain) / eps).abs()).sum())
        f_plain = T_xy(eps, lb + g / eps, guess=f)
        err = float((a * torch.expm1((f - f_plain) / eps).abs()).sum()) + col
        iters += 1
        if not math.isfinite(err) and not bool(torch.isfinite(f_plain).all()):
            status = "diverged: non-finite potentials"
            f = f_plain
            break
        if err < tol:
            f = f_plain
            status = "converged"
            break
        f = f_plain if w == 1.0 else torch.lerp(f, f_plain, w)
        relax.update(err)
    return f, g, iters, err, status, backend


def _plan(C, la, lb, f, g, eps, out=None):
    """(a⊗b) e^{(f⊕g−C)/ε}, written into ``out`` (in place: no n × m temporaries)."""
    P = torch.add((f + eps * la)[:, None], (g + eps * lb)[None, :], out=out)
    return P.sub_(C).mul_(1.0 / eps).exp_()


def _scaling_ab(C, la, lb, eps, f, g, tol, max_iter, T_xy, T_yx, buf=None, omega="auto"):
    """Iterations at one ε in the stabilized scaling domain (see the module docstring), from the
    potentials (f, g); ``tol`` = 0 runs exactly ``max_iter`` iterations."""
    a, b = la.exp(), lb.exp()
    tau = ABSORB.get(C.dtype, 10.0)
    P = _plan(C, la, lb, f, g, eps, buf)
    u = torch.ones_like(a)
    v = torch.ones_like(b)
    relax = Relaxation(omega if tol > 0 else 1.0)
    err, status, it = math.inf, "max_iter", 0
    while it < max_iter:
        w = relax.omega
        Ptu = P.T @ u
        v_plain = b / Ptu
        # over-relaxed v = v^(1−ω)·v_plain^ω; its column error v·Pᵀu − b joins the row error
        v = v_plain if w == 1.0 else v.pow(1.0 - w).mul_(v_plain.pow(w))
        Pv = P @ v
        r = u * Pv
        err = float((r - a).abs().sum())
        if w != 1.0:
            err += float((v * Ptu - b).abs().sum())
        it += 1
        bad = not math.isfinite(err) or not bool(torch.isfinite(v).all())
        if not bad and err < tol:
            status = "converged"
            break
        if it >= max_iter:
            break
        u_new = a / Pv
        if w != 1.0:
            u_new = u.pow(1.0 - w).mul_(u_new.pow(w))
        relax.update(err)
        lu, lv = u_new.log(), v.log()
        if bad or not bool(torch.isfinite(lu).all()) or float(lu.abs().max()) > tau or float(lv.abs().max()) > tau:
            # absorb the scalings (or restart from an exact log-domain step after an underflow)
            if bad or not bool(torch.isfinite(lu).all()):
                g = T_yx(eps, la + f / eps)
                f = T_xy(eps, lb + g / eps)
                if not bool(torch.isfinite(f).all()):
                    status = "diverged: non-finite potentials"
                    break
            else:
                f, g = f + eps * lu, g + eps * lv
            P = _plan(C, la, lb, f, g, eps, buf)
            u = torch.ones_like(a)
            v = torch.ones_like(b)
            if bad:
                relax.fail()
            continue
        u = u_new
    if status != "diverged: non-finite potentials" and bool(torch.isfinite(v).all()):
        # the returned pair is the one whose error was measured: columns exact (v), rows off by err
        f, g = f + eps * u.log(), g + eps * v.log()
    return f, g, it, err, status


def _scaling_sym(C, la, eps, f, tol, max_iter, T, buf=None):
    """Averaged symmetric updates at one ε in the scaling domain, u ← √(u · a/(P u))."""
    a = la.exp()
    tau = ABSORB.get(C.dtype, 10.0)
    P = _plan(C, la, la, f, f, eps, buf)
    u = torch.ones_like(a)
    err, status, it = math.inf, "max_iter", 0
    while it < max_iter:
        Pu = P @ u
        err = float((u * Pu - a).abs().sum())
        it += 1
        if math.isfinite(err) and err < tol:
            status = "converged"
            break
        u_new = torch.sqrt(u * a / Pu)
        lu = u_new.log()
        if not math.isfinite(err) or not bool(torch.isfinite(lu).all()) or float(lu.abs().max()) > tau:
            if not math.isfinite(err) or not bool(torch.isfinite(lu).all()):
                f = 0.5 * (f + T(eps, la + f / eps))
            else:
                f = f + eps * lu
            P = _plan(C, la, la, f, f, eps, buf)
            u = torch.ones_like(a)
            continue
        u = u_new
    return f + eps * u.log(), it, err, status


def solve_sym(x, la, eps, *, tol=1e-9, max_iter=2000, scaling=0.5, inner=2, init=None, backend="auto", C=None):
    """The potential f = g of the symmetric problem OT_ε(a, a) by averaged updates
    f ← ½(f + T(f)) (no autograd). Returns (f, iterations, error, status, backend)."""
    eps = float(eps)
    n = x.shape[0]
    backend = pick_backend(backend, n, n)
    if backend == "tensorized":
        if C is None:
            C = pair_sqdist(x, x)
        T = lambda e, h: -e * torch.logsumexp(h[None, :] - C / e, dim=1)  # noqa: E731
    else:
        T = lambda e, h, guess=None: ctransform(e, x, x, h, guess=guess)[0]  # noqa: E731
    a = la.exp()
    iters = 0
    if init is not None:
        f = init.to(x.dtype)
        sched = [eps]
    else:
        sched = eps_schedule(float(C.max()) if C is not None and C.numel() else _diam2(x, x), eps, scaling)
        f = T(sched[0], la)
    if backend == "tensorized":
        buf = torch.empty_like(C)
        for e in sched[:-1]:
            f, it, _, _ = _scaling_sym(C, la, e, f, 0.0, inner, T, buf)
            iters += it
        f, it, err, status = _scaling_sym(C, la, eps, f, tol, max_iter, T, buf)
        return f, iters + it, err, status, backend
    for e in sched[:-1]:
        for _ in range(inner):
            f = 0.5 * (f + T(e, la + f / e, guess=f))
            iters += 1
    err, status = math.inf, "max_iter"
    for _ in range(max_iter):
        t = T(eps, la + f / eps, guess=f)
        err = float((a * torch.expm1((f - t) / eps).abs()).sum())
        f = 0.5 * (f + t)
        iters += 1
        if err < tol:
            status = "converged"
            break
    return f, iters, err, status, backend


# --------------------------------------------------------------------------- envelope gradients
def _eps_tensor(eps, like):
    if isinstance(eps, torch.Tensor):
        return eps.to(like.dtype)
    return torch.tensor(float(eps), dtype=like.dtype, device=like.device)


class EnvelopeOT(torch.autograd.Function):
    """OT_ε(a, b) ≈ ⟨a, T_x(g)⟩ + ⟨b, T_y(f)⟩ from converged potentials (f, g), with the envelope
    gradient written out: no autograd graph over the n × m cost. Inputs x, a, y, b, ε (a 0-dim
    tensor), f, g (constants), C (the cost matrix, or None: online), info (a dict that receives the transport cost)."""

    @staticmethod
    def forward(ctx, x, a, y, b, eps, f, g, C, info):
        e = float(eps)
        la, lb = a.log(), b.log()
        fe, ox = ctransform(e, x, y, lb + g / e, C=C, need=("bary", "cost"), guess=f)
        ge, oy = ctransform(e, y, x, la + f / e, C=None if C is None else C.T, need=("bary",), guess=g)
        value = (a * fe).sum() + (b * ge).sum()
        cost = (a * ox["cost"]).sum()
        if info is not None:
            info["transport_cost"] = float(cost)
        ctx.save_for_backward(x, a, y, b, fe, ge, ox["bary"], oy["bary"])
        ctx.kl = (value - cost) / e
        return value

    @staticmethod
    def backward(ctx, gv):
        x, a, y, b, fe, ge, bx, by = ctx.saved_tensors
        gx = gv * 2 * a[:, None] * (x - bx) if ctx.needs_input_grad[0] else None
        ga = gv * fe if ctx.needs_input_grad[1] else None
        gy = gv * 2 * b[:, None] * (y - by) if ctx.needs_input_grad[2] else None
        gb = gv * ge if ctx.needs_input_grad[3] else None
        geps = gv * ctx.kl if ctx.needs_input_grad[4] else None
        return gx, ga, gy, gb, geps, None, None, None, None


class EnvelopeOTSym(torch.autograd.Function):
    """OT_ε(a, a) ≈ 2⟨a, T_x(f)⟩ with its envelope gradient written out (both slots of C(x, x)
    move with x): ∂/∂x_i = 4a_i(x_i − Σ_j P_ij x_j), ∂/∂a = 2T_x(f), ∂/∂ε = KL(π‖a⊗a)."""

    @staticmethod
    def forward(ctx, x, a, eps, f, C):
        e = float(eps)
        fe, o = ctransform(e, x, x, a.log() + f / e, C=C, need=("bary", "cost"), guess=f)
        value = 2 * (a * fe).sum()
        ctx.save_for_backward(x, a, fe, o["bary"])
        ctx.kl = (value - (a * o["cost"]).sum()) / e
        return value

    @staticmethod
    def backward(ctx, gv):
        x, a, fe, bx = ctx.saved_tensors
        gx = gv * 4 * a[:, None] * (x - bx) if ctx.needs_input_grad[0] else None
        ga = gv * 2 * fe if ctx.needs_input_grad[1] else None
        geps = gv * ctx.kl if ctx.needs_input_grad[2] else None
        return gx, ga, geps, None, None


# --------------------------------------------------------------------------- implicit differentiation
def _residual(x, a, y, b, eps, f, g):
    """Optimality conditions of the dual, F(f, g; x, a, y, b, ε) = 0 at the solution:
    F_f = f − T_x(g), F_g = g − T_y(f) (the soft c-transforms, dense)."""
    C = pair_sqdist(x, y)
    rf = f + eps * torch.logsumexp(b.log()[None, :] + (g[None, :] - C) / eps, dim=1)
    rg = g + eps * torch.logsumexp(a.log()[:, None] + (f[:, None] - C) / eps, dim=0)
    return rf, rg


def plan_dense(x, a, y, b, eps, f, g):
    """The entropic plan π_ij = a_i b_j exp((f_i + g_j − |x_i − y_j|²)/ε), differentiable."""
    return torch.exp((f[:, None] + g[None, :] - pair_sqdist(x, y)) / eps + a.log()[:, None] + b.log()[None, :])


class _ImplicitPotentials(torch.autograd.Function):
    """(f, g) = the solution of F(f, g; θ) = 0; backward by the implicit function theorem."""

    @staticmethod
    def forward(ctx, x, a, y, b, eps, f, g, solver, info):
        ctx.save_for_backward(x, a, y, b, eps, f, g)
        ctx.solver, ctx.info = solver, info
        return f.clone(), g.clone()

    @staticmethod
    def backward(ctx, vf, vg):
        t0 = time.perf_counter()
        x, a, y, b, eps, f, g = ctx.saved_tensors
        n, m = f.shape[0], g.shape[0]
        e = float(eps)
        with torch.no_grad():
            P = torch.exp((f[:, None] + g[None, :] - pair_sqdist(x, y)) / e + a.log()[:, None] + b.log()[None, :])
            # F's Jacobian in (f, g) is J = D⁻¹H, D = diag(a, b), H = [[diag(a), π], [πᵀ, diag(b)]]
            # (symmetric PSD; kernel (1, −1): the potentials' common shift). Jᵀw = v ⇔ H z = v, w = D z.
            v = torch.cat([vf, vg])
            # the component of v along the shift (1, −1) cannot be matched: the potentials' shift is a
            # convention of the solver, not a function of θ; remove it (a gauge-invariant loss has none)
            k = torch.cat([torch.ones(n, dtype=f.dtype), -torch.ones(m, dtype=f.dtype)]) / math.sqrt(n + m)
            v = v - (v @ k) * k
            Pr, Pc = P.sum(1), P.sum(0)
            if ctx.solver == "dense" or (ctx.solver == "auto" and n + m <= 3000):
                H = torch.zeros(n + m, n + m, dtype=f.dtype)
                H[:n, :n] = torch.diag(Pr)
                H[n:, n:] = torch.diag(Pc)
                H[:n, n:] = P
                H[n:, :n] = P.T
                H = H + torch.outer(k, k) * float(Pr.sum())
                z = torch.linalg.solve(H, v)
                method, its = "dense solve", 0
            else:
                z, its = _cg(lambda s: torch.cat([Pr * s[:n] + P @ s[n:], P.T @ s[:n] + Pc * s[n:]]),
                             v, torch.cat([Pr, Pc]), k)
                method = "conjugate gradients"
            w = torch.cat([Pr, Pc]) * z
        wf, wg = w[:n], w[n:]
        with torch.enable_grad():
            xs = [t.detach().requires_grad_(True) for t in (x, a, y, b, eps)]
            rf, rg = _residual(*xs, f.detach(), g.detach())
            grads = torch.autograd.grad((rf, rg), xs, grad_outputs=(-wf, -wg), allow_unused=True)
        if ctx.info is not None:
            ctx.info.setdefault("implicit", {}).update(method=method, cg_iterations=its,
                                                       time_s=time.perf_counter() - t0)
        grads = [gr if need else None for gr, need in zip(grads, ctx.needs_input_grad[:5])]
        return (*grads, None, None, None, None)


def _cg(A, rhs, diag, k, tol=1e-12, max_iter=5000):
    """Preconditioned conjugate gradients for the PSD system A z = rhs, rhs ⊥ k (the kernel)."""
    z = torch.zeros_like(rhs)
    r = rhs.clone()
    Minv = 1.0 / diag
    s = Minv * r
    s = s - (s @ k) * k
    p = s.clone()
    rs = r @ s
    nrm = float(rhs.norm())
    for it in range(1, max_iter + 1):
        Ap = A(p)
        alpha = rs / (p @ Ap)
        z = z + alpha * p
        r = r - alpha * Ap
        if float(r.norm()) <= tol * nrm:
            return z, it
        s = Minv * r
        s = s - (s @ k) * k
        rs_new = r @ s
        p = s + (rs_new / rs) * p
        rs = rs_new
    return z, max_iter


def implicit_potentials(x, a, y, b, eps, f, g, *, solver="auto", info=None):
    """The converged potentials (f, g) as differentiable functions of (x, a, y, b, ε).

    At the solution F(f, g; θ) = 0 with F_f = f − T_x(g), F_g = g − T_y(f). By the implicit
    function theorem, d(f, g)/dθ = −J⁻¹ ∂F/∂θ, J = ∂F/∂(f, g); the backward pass solves the
    transposed system once per backward call (a dense solve for n + m ≤ 3000, else conjugate
    gradients with Jacobi preconditioning; ``solver`` = "dense" | "cg" | "auto") and
    contracts with ∂F/∂θ by autograd on the residual (dense n × m). J is singular along the
    common shift f + t, g − t (a convention); the backward removes that component, so gradients
    of gauge-invariant outputs (the value, the plan, f_i + g_j, the entropic map) are exact at
    convergence. The potentials' own gradients carry an arbitrary shift (t, −t) along that
    kernel: use them through gauge-invariant combinations such as f_i + g_j or f − c,
    c = (⟨a, f⟩ − ⟨b, g⟩)/2 (tests/test_sinkhorn_gradients.py). Gradients in the weights are
    meaningful along mass-preserving directions (Σδa = 0), where the problem stays balanced.
    """
    eps_t = _eps_tensor(eps, x)
    return _ImplicitPotentials.apply(x, a, y, b, eps_t, f.detach(), g.detach(), solver, info)


# --------------------------------------------------------------------------- measuring
class Meter:
    """Wall time and peak memory of a block: CUDA's peak allocator statistics on a GPU; on a
    CPU the growth of the process's peak resident set (Linux VmHWM, reset through
    /proc/self/clear_refs when allowed) over its resident set at the start — an upper bound that
    also counts anything else the process allocated meanwhile. ``DIVLAB_METER_RESET=0`` leaves the
    process's peak alone (for a caller that measures it itself) and reports no memory."""

    def __init__(self, device):
        self.device = torch.device(device)

    @staticmethod
    def _status(key):
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def __enter__(self):
        self.t0 = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif os.environ.get("DIVLAB_METER_RESET", "1") == "0":
            # a caller measuring the whole process's peak (bench/bench_transport_peers.py) asked us
            # not to reset it: this meter then reports no memory (None)
            self.reset, self.base = False, None
        else:
            try:
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")
                self.reset = True
            except OSError:
                self.reset = False
            self.base = self._status("VmRSS:")
        return self

    def __exit__(self, *exc):
        self.time_s = time.perf_counter() - self.t0
        if self.device.type == "cuda":
            self.peak_mib = (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
            self.kind = "CUDA peak allocated − allocated at the start"
        else:
            hwm = self._status("VmHWM:")
            self.peak_mib = None if hwm is None or self.base is None or not self.reset else max(hwm - self.base, 0) / 2**20
            self.kind = "process peak RSS − RSS at the start (Linux VmHWM)"
        return False

    def as_dict(self):
        return {"time_s": self.time_s, "peak_mib": self.peak_mib, "memory_kind": self.kind}
