"""Sample-based divergences between one fixed target cloud and B model clouds at once.

The fitting engine's ``"samples"`` estimator: the target is a fixed weighted cloud (x (n, d),
a (n,)), drawn once with the fit's seed; each of the B models is a reparameterized weighted
cloud (y (B, M, d), b (B, M)) made from fixed base noise (common random numbers: the loss is a
deterministic, differentiable function of the parameters, so convergence detection and LBFGS
work; its optimum differs from the population one by O(1/√n)). Mixture models are weighted
clouds (w_k/m on each of a component's m points), so their weights get gradients too.

Each function returns the B values (differentiable in y and b) and agrees with the registry's
single-pair estimator on the same clouds (tests/test_families.py checks this):

- ``mmd`` / ``energy``: MMD² with gaussian / imq / energy kernels, U- or V-statistic
  (:func:`divlab.divergences.kernel.mmd2`).
- ``sinkhorn``: the debiased Sinkhorn divergence S_ε = OT_ε(a, b) − ½OT_ε(a, a) − ½OT_ε(b, b),
  log-domain, batched over models; OT_ε(a, a) of the fixed target is computed once; potentials
  are warm-started from the previous step (ε-scaling only on the first); gradients by the
  envelope theorem (one differentiable soft-c-transform after the loop, as in
  :func:`divlab.divergences.transport.ot_eps`).
- ``wasserstein`` (1D): the exact W_p between weighted 1D clouds from their quantile functions
  (merged cumulative levels), differentiable in points and weights.
- ``sliced_wasserstein``: the same on fixed random projections (seeded).
- ``ksd``: KSD² of each model cloud against the target's score (IMQ kernel), U- or V-statistic.
"""

from __future__ import annotations

import math

import torch

from ..divergences._samples import safe_sqrt
from ..divergences.stein import BETA
from ..divergences.transport import eps_schedule

__all__ = ["SAMPLE_LOSSES", "SinkhornState", "batched_mmd2", "batched_sinkhorn", "batched_w1d",
           "batched_sliced", "batched_ksd2"]


def _sqd(x, y):
    """|x_i − y_j|² for (..., n, d), (..., m, d) -> (..., n, m), by explicit differences (exact 0
    on the diagonal, never negative)."""
    return ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1)


def _sqd_fast(x, y):
    """|x_i − y_j|² by ‖x‖² + ‖y‖² − 2⟨x, y⟩ (one matmul; clamped at 0). For the smooth kernels
    (gaussian, imq) only: its rounding near 0 would make −|x − y|'s gradient blow up."""
    xx = (x * x).sum(-1)
    yy = (y * y).sum(-1)
    return (xx[..., :, None] + yy[..., None, :] - 2 * x @ y.transpose(-1, -2)).clamp_min(0)


def _kernel(d2, kernel, h):
    if kernel == "gaussian":
        return torch.exp(-d2 / (2 * h * h))
    if kernel == "imq":
        return torch.rsqrt(1 + d2 / (h * h))
    return -safe_sqrt(d2)  # energy


def _self_term(K, w, statistic):
    """Σ_ij w_i w_j K_ij (biased) or Σ_{i≠j} w_i w_j K_ij / (1 − Σ w_i²) (unbiased), batched."""
    full = torch.einsum("...i,...ij,...j->...", w, K, w)
    if statistic == "biased":
        return full
    s2 = (w * w).sum(-1)
    diag = (w * w * torch.diagonal(K, dim1=-2, dim2=-1)).sum(-1)
    return (full - diag) / (1 - s2)


def batched_mmd2(x, a, y, b, *, kernel="gaussian", bandwidth=1.0, statistic="unbiased", cache=None):
    """MMD² between the target cloud (x, a) and each model cloud (y[i], b[i]); (B,)."""
    h = float(bandwidth)
    sq = _sqd if kernel == "energy" else _sqd_fast
    if cache is not None and "xx" in cache:
        xx = cache["xx"]
    else:
        xx = _self_term(_kernel(_sqd(x, x), kernel, h), a, statistic)
        if cache is not None:
            cache["xx"] = xx
    yy = _self_term(_kernel(sq(y, y), kernel, h), b, statistic)
    xy = torch.einsum("i,bij,bj->b", a, _kernel(sq(x[None], y), kernel, h), b)
    return xx + yy - 2 * xy


# --------------------------------------------------------------------------- Sinkhorn
def _softmin(eps, C, h):
    """−ε log Σ_j exp(h_j − C_ij/ε), batched: C (B, n, m), h (B, m) -> (B, n)."""
    return -eps * torch.logsumexp(h[:, None, :] - C / eps, dim=2)


class SinkhornState:
    """Warm-start potentials and iteration counts of a batched Sinkhorn fit."""

    def __init__(self):
        self.f = self.g = self.fb = None
        self.aa = None
        self.iterations = 0
        self.calls = 0
        self.last_error = 0.0
        self.not_converged = 0


def _solve_ab(C, la, lb, eps, f, tol, max_iter, scaling):
    """Alternating updates for OT_ε(a, b_i), batched; returns (f, g, iterations, errors (B,))."""
    a = la.exp()
    it = 0
    if f is None:
        sched = eps_schedule(float(C.max()), eps, scaling)
        g = torch.zeros_like(lb)
        f = _softmin(sched[0], C, lb + g / sched[0])
        for e in sched[:-1]:
            for _ in range(2):
                g = _softmin(e, C.transpose(1, 2), la + f / e)
                f = _softmin(e, C, lb + g / e)
                it += 1
    err = torch.full((C.shape[0],), math.inf, dtype=C.dtype, device=C.device)
    for _ in range(max_iter):
        g = _softmin(eps, C.transpose(1, 2), la[None].expand(C.shape[0], -1) + f / eps)
        f_new = _softmin(eps, C, lb + g / eps)
        err = (a * torch.expm1((f - f_new) / eps).abs()).sum(-1)
        f = f_new
        it += 1
        if bool((err < tol).all()):
            break
    g = _softmin(eps, C.transpose(1, 2), la[None].expand(C.shape[0], -1) + f / eps)
    return f, g, it, err


def _solve_sym(C, la, eps, f, tol, max_iter, scaling):
    """Averaged symmetric updates for OT_ε(b_i, b_i), batched; la (B, m)."""
    a = la.exp()
    it = 0
    if f is None:
        sched = eps_schedule(float(C.max()), eps, scaling)
        f = _softmin(sched[0], C, la)
        for e in sched[:-1]:
            for _ in range(2):
                f = 0.5 * (f + _softmin(e, C, la + f / e))
                it += 1
    err = torch.full((C.shape[0],), math.inf, dtype=C.dtype, device=C.device)
    for _ in range(max_iter):
        t = _softmin(eps, C, la + f / eps)
        err = (a * torch.expm1((f - t) / eps).abs()).sum(-1)
        f = 0.5 * (f + t)
        it += 1
        if bool((err < tol).all()):
            break
    return f, it, err


def batched_sinkhorn(x, a, y, b, *, epsilon=0.1, debias=True, state: SinkhornState, tol=1e-6, max_iter=200,
                     scaling=0.5, warm=True):
    """S_ε (or OT_ε without ``debias``) between the target cloud and each model cloud; (B,).

    ``tol``: marginal error at which the potentials are accepted (looser than the single-pair
    default: a fit step needs a good gradient, not the value to 1e-9); ``max_iter`` per step.
    Warm starts (``warm``) reuse the previous step's potentials; the total iteration count is
    kept in ``state``.
    """
    eps = float(epsilon)
    la = torch.log(a)
    # the model-side costs, once, with their graph; the loop runs on detached views
    Cyx = _sqd_fast(y, x[None])  # (B, M, n)
    Cyy = _sqd_fast(y, y.detach()) if debias else None
    with torch.no_grad():
        yd, lbd = y.detach(), torch.log(b.detach())
        C = Cyx.detach().transpose(1, 2)  # (B, n, M)
        f0 = state.f if (warm and state.f is not None and state.f.shape[0] == C.shape[0]) else None
        f, g, it, err = _solve_ab(C, la, lbd, eps, f0, tol, max_iter, scaling)
        state.f, state.g = f, g
        iters, errs = it, err
        if debias:
            if state.aa is None:
                Cx = _sqd(x, x)[None]
                fa, it_a, _ = _solve_sym(Cx, la[None], eps, None, tol, max_iter * 10, scaling)
                state.aa = 2 * (a * fa[0]).sum()
                iters += it_a
            fb0 = state.fb if (warm and state.fb is not None and state.fb.shape == lbd.shape) else None
            fb, it_b, err_b = _solve_sym(Cyy.detach(), lbd, eps, fb0, tol, max_iter, scaling)
            state.fb = fb
            iters += it_b
            errs = torch.maximum(errs, err_b)
    state.iterations += iters
    state.calls += 1
    state.last_error = float(errs.max())
    state.not_converged += int((errs >= tol).sum())
    # envelope gradients: one differentiable soft c-transform on the model side
    g_e = _softmin(eps, Cyx, (la + f / eps).expand(y.shape[0], -1))
    ot_ab = (a * f).sum(-1) + (b * g_e).sum(-1)
    if not debias:
        return ot_ab
    f_bb = _softmin(eps, Cyy, lbd + state.fb / eps)
    ot_bb = 2 * (b * f_bb).sum(-1)
    return ot_ab - 0.5 * state.aa - 0.5 * ot_bb


# --------------------------------------------------------------------------- Wasserstein
def batched_w1d(x, a, y, b, order: int):
    """W_p^p between the weighted 1D cloud (x (n,), a) and each (y (B, M), b): exact, from the
    quantile functions on the merged cumulative levels; (B,). Differentiable in y and b."""
    B, M = y.shape
    xs, ix = torch.sort(x)
    ua = torch.cumsum(a[ix], 0)
    ys, iy = torch.sort(y, -1)
    ub = torch.cumsum(torch.gather(b, 1, iy), -1)
    ua_b = ua[None].expand(B, -1)
    u = torch.sort(torch.cat([ua_b, ub], -1), -1).values.clamp(max=1.0)
    du = torch.diff(u, dim=-1, prepend=torch.zeros_like(u[:, :1]))
    mid = (u - du / 2).detach()
    ia = torch.searchsorted(ua_b.detach().contiguous(), mid).clamp(max=x.numel() - 1)
    ib = torch.searchsorted(ub.detach().contiguous(), mid).clamp(max=M - 1)
    diff = xs[ia] - torch.gather(ys, 1, ib)
    return (du * diff.abs() ** order).sum(-1)


def _root(v, order):
    return v if order == 1 else safe_sqrt(v)


def batched_sliced(x, a, y, b, order: int, theta_dirs: torch.Tensor):
    """Sliced W_p over fixed directions (L, d); (B,)."""
    B, M, _ = y.shape
    L = theta_dirs.shape[0]
    px = x @ theta_dirs.T  # (n, L)
    py = y @ theta_dirs.T  # (B, M, L)
    per = []
    for l in range(L):  # a loop over projections, each batched over all members
        per.append(batched_w1d(px[:, l], a, py[..., l], b, order))
    return _root(torch.stack(per, 0).mean(0), order)


# --------------------------------------------------------------------------- KSD
def batched_ksd2(y, b, s, *, bandwidth=1.0, statistic="unbiased"):
    """KSD² (IMQ, β = −½) of model clouds y (B, M, d) with weights b given target scores s at y."""
    d = y.shape[-1]
    r = y[:, :, None, :] - y[:, None, :, :]
    d2 = (r * r).sum(-1)
    Bm = bandwidth**2 + d2
    k = Bm**BETA
    ss = torch.einsum("bid,bjd->bij", s, s)
    cross = (r * (s[:, None, :, :] - s[:, :, None, :])).sum(-1)
    U = (k * ss + 2 * BETA * Bm ** (BETA - 1) * cross
         - 2 * BETA * (d * Bm ** (BETA - 1) + 2 * (BETA - 1) * Bm ** (BETA - 2) * d2))
    return _self_term(U, b, statistic)


SAMPLE_LOSSES = ("mmd", "energy", "sinkhorn", "wasserstein", "sliced_wasserstein", "ksd")
