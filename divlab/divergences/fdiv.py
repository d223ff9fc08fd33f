"""f-divergences D_f(p‖q) = ∫ q f(p/q), computed from log-ratios.

Every f here is normalized so that f(1) = 0 and f'(1) = 0 (adding c·(u − 1) changes no
divergence because ∫(p − q) = 0), which makes each pointwise integrand q·f(p/q) non-negative:
sums of non-negative terms are accurate, and D(p‖p) = 0 holds to rounding.

Where one density vanishes the integrand takes its limit:
- p = 0 < q contributes q · f(0)        (``f0``; infinite for reverse KL: mode-seeking),
- q = 0 < p contributes p · f'(∞)       (``fprime_inf`` = lim f(u)/u; infinite for KL).

Gradient weight. With x = T_θ(ε) reparameterizing q_θ and r = p/q,
    ∇_θ D_f(p‖q_θ) = E_q[ h(r) (∇ₓ log q_θ − ∇ₓ log p) ∂x/∂θ ],   h(r) = r² f''(r).
h says where the model is pushed: reverse KL weighs all of q's mass equally (h ≡ 1), forward
KL weighs by r = p/q, so regions where p has mass that q lacks dominate (mass-covering).
References: Csiszár (1967); Ali & Silvey (1966); Amari (2009) for the α family; Minka (2005),
"Divergence measures and message passing"; Wang, Liu & Liu (2018), "Variational inference with
tail-adaptive f-divergence" for the gradient weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch

from ._util import LOG2, as_t, finite_or, wsum

__all__ = ["FDivergence", "f_from_logs", "f_grad_from_logs", "FDIVS", "generic_fdivergence"]

INF = math.inf


@dataclass(frozen=True)
class FDivergence:
    """The pieces of an f-divergence: f, its pointwise integrand from logs, limits, weight h."""

    f: Callable  # f(u, **params) on u >= 0 (tensor)
    core: Callable  # core(lp, lq, **params) = q f(p/q) for finite lp, lq
    f0: Callable  # f0(**params) -> float or tensor: lim_{u->0} f(u)
    fprime_inf: Callable  # fprime_inf(**params): lim_{u->inf} f(u)/u
    h: Callable | None  # h(r, **params) = r^2 f''(r); None when f'' is not a function
    h_note: str = ""
    #: grad(lp, lq, p, q, **params) -> (core, ∂core/∂lq), elementwise, for finite lp and lq with
    #: p = exp(lp), q = exp(lq) given (the fitting engine's hot loop: no autograd graph, no
    #: repeated exp); None: the engine differentiates ``core`` by autograd
    grad: Callable | None = None


def _pq(lp, lq):
    return lp.exp(), lq.exp()


# --------------------------------------------------------------------------- named f's
def _kl_core(lp, lq):
    p, q = _pq(lp, lq)
    return p * (lp - lq) - p + q


def _rkl_core(lp, lq):
    p, q = _pq(lp, lq)
    return q * (lq - lp) - q + p


def _alpha_core(lp, lq, alpha):
    a = as_t(alpha, lp)
    is1, is0 = a == 1, a == 0
    a_s = torch.where(is1 | is0, torch.full_like(a, 0.5), a)
    p, q = _pq(lp, lq)
    gen = (a_s * p + (1 - a_s) * q - torch.exp(a_s * lp + (1 - a_s) * lq)) / (a_s * (1 - a_s))
    return torch.where(is1, _kl_core(lp, lq), torch.where(is0, _rkl_core(lp, lq), gen))


def _alpha_f(u, alpha):
    a = as_t(alpha, u)
    if bool((a == 1).all()):
        return torch.special.xlogy(u, u) - u + 1
    if bool((a == 0).all()):
        return -torch.log(u) + u - 1
    return (u**a - a * u - (1 - a)) / (a * (a - 1))


def _alpha_f0(alpha):
    a = float(alpha)
    return 1.0 / a if a > 0 else INF


def _alpha_fi(alpha):
    a = float(alpha)
    return 1.0 / (1.0 - a) if a < 1 else INF


def _skew_core(lp, lq, lam):
    lam_t = as_t(lam, lp)
    p, q = _pq(lp, lq)
    # log m = log(λ p + (1 − λ) q), stable in logs
    lm = torch.logaddexp(torch.log(lam_t) + lp, torch.log1p(-lam_t) + lq)
    m = lm.exp()
    return p * (lp - lm) - p + m


def _skew_f(u, lam):
    lam = as_t(lam, u)
    m = lam * u + 1 - lam
    return torch.special.xlogy(u, u) - torch.special.xlogy(u, m) - u + m


def _skew_h(r, lam):
    lam = as_t(lam, r)
    m = lam * r + 1 - lam
    return r - lam * r * r / m - lam * (1 - lam) * r * r / (m * m)


def _skew_fi(lam):
    lam = float(lam)
    return lam - 1 - math.log(lam) if lam > 0 else INF


def _tsallis_core(lp, lq, alpha):
    return as_t(alpha, lp) * _alpha_core(lp, lq, alpha)


def _js_core(lp, lq):
    p, q = _pq(lp, lq)
    lm = torch.logaddexp(lp, lq) - LOG2
    return 0.5 * (p * (lp - lm) + q * (lq - lm))


def _js_f(u):
    return 0.5 * (torch.special.xlogy(u, u) - torch.special.xlogy(u + 1, (u + 1) / 2))


def _hel_core(lp, lq):
    return 0.5 * (torch.exp(0.5 * lp) - torch.exp(0.5 * lq)) ** 2


def _tv_core(lp, lq):
    p, q = _pq(lp, lq)
    return 0.5 * (p - q).abs()


def _sq_ratio_core(la, lb):
    """b·(a/b − 1)² from logs without 0·inf: for log(a/b) > 30 use exp(2 la − lb)·(1 − b/a)²."""
    d = la - lb
    big = d > 30
    d_small = torch.where(big, torch.zeros_like(d), d)
    small = lb.exp() * torch.expm1(d_small) ** 2
    d_big = torch.where(big, d, torch.full_like(d, 31.0))
    lb_big = torch.where(big, lb, torch.zeros_like(lb))
    large = torch.exp(2 * d_big + lb_big) * (-torch.expm1(-d_big)) ** 2
    return torch.where(big, large, small)


def _pearson_core(lp, lq):
    return _sq_ratio_core(lp, lq)


def _neyman_core(lp, lq):
    return _sq_ratio_core(lq, lp)


def _jeffreys_core(lp, lq):
    p, q = _pq(lp, lq)
    return (p - q) * (lp - lq)


# --------------------------------------------------------------------------- analytic ∂core/∂lq
# Each rule returns (core, ∂core/∂lq) for finite lp, lq, with p = exp(lp) and q = exp(lq) passed
# in (the engine has them already). Derivation: for core = q·f(p/q) with r = p/q,
# ∂core/∂log q = q·(f(r) − r f'(r)); each rule below is that expression, simplified, and written
# with the same operations as its ``core`` so that the value agrees with ``core`` to rounding.
# tests/test_grad_rules.py checks every rule against autograd of ``core``.
def _kl_grad(lp, lq, p, q):
    return p * (lp - lq) - p + q, q - p


def _rkl_grad(lp, lq, p, q):
    d = q * (lq - lp)
    return d - q + p, d


def _jeffreys_grad(lp, lq, p, q):
    dl = lp - lq
    return (p - q) * dl, q - p - q * dl


def _js_grad(lp, lq, p, q):
    lm = torch.logaddexp(lp, lq) - LOG2
    b = q * (lq - lm)
    return 0.5 * (p * (lp - lm) + b), 0.5 * b


def _hel_grad(lp, lq, p, q):
    sp, sq = torch.exp(0.5 * lp), torch.exp(0.5 * lq)
    d = sp - sq
    return 0.5 * d * d, -0.5 * d * sq


def _tv_grad(lp, lq, p, q):
    d = p - q
    return 0.5 * d.abs(), -0.5 * torch.sign(d) * q


def _alpha_grad(lp, lq, p, q, alpha):
    a = as_t(alpha, lp)
    is1, is0 = a == 1, a == 0
    a_s = torch.where(is1 | is0, torch.full_like(a, 0.5), a)
    t = torch.exp(a_s * lp + (1 - a_s) * lq)
    gen = (a_s * p + (1 - a_s) * q - t) / (a_s * (1 - a_s))
    dgen = (q - t) / a_s
    if not bool((is1 | is0).any()):
        return gen, dgen
    kc, kd = _kl_grad(lp, lq, p, q)
    rc, rd = _rkl_grad(lp, lq, p, q)
    return (torch.where(is1, kc, torch.where(is0, rc, gen)), torch.where(is1, kd, torch.where(is0, rd, dgen)))


def _tsallis_grad(lp, lq, p, q, alpha):
    a = as_t(alpha, lp)
    c, d = _alpha_grad(lp, lq, p, q, alpha)
    return a * c, a * d


def _skew_grad(lp, lq, p, q, lam):
    lam_t = as_t(lam, lp)
    lm = torch.logaddexp(torch.log(lam_t) + lp, torch.log1p(-lam_t) + lq)
    m = lm.exp()
    # ∂lm/∂lq = (1 − λ) q / m
    return p * (lp - lm) - p + m, (1 - lam_t) * q * (1 - torch.exp(lp - lm))


def _sq_ratio_grad(la, lb):
    """(b·(a/b − 1)², its derivative by la, its derivative by lb), as in :func:`_sq_ratio_core`."""
    d = la - lb
    big = d > 30
    d_small = torch.where(big, torch.zeros_like(d), d)
    b = lb.exp()
    em = torch.expm1(d_small)
    small = b * em * em
    ds_a = 2 * b * em * (em + 1)  # ∂/∂la of b·expm1(d)²
    d_big = torch.where(big, d, torch.full_like(d, 31.0))
    lb_big = torch.where(big, lb, torch.zeros_like(lb))
    e_big = torch.exp(2 * d_big + lb_big)
    om = -torch.expm1(-d_big)  # 1 − e^{−d}
    large = e_big * om * om
    dl_a = 2 * e_big * om  # ∂/∂la of e^{2d + lb}(1 − e^{−d})²
    core = torch.where(big, large, small)
    da = torch.where(big, dl_a, ds_a)
    return core, da, core - da  # ∂/∂lb = core − ∂/∂la (core is b·g(d): ∂b = core, ∂d = −∂la part)


def _pearson_grad(lp, lq, p, q):
    core, _, db = _sq_ratio_grad(lp, lq)
    return core, db


def _neyman_grad(lp, lq, p, q):
    core, da, _ = _sq_ratio_grad(lq, lp)
    return core, da


_GRADS = {"kl": _kl_grad, "reverse_kl": _rkl_grad, "jeffreys": _jeffreys_grad, "js": _js_grad,
          "hellinger": _hel_grad, "tv": _tv_grad, "alpha": _alpha_grad, "tsallis": _tsallis_grad,
          "skew_kl": _skew_grad, "pearson": _pearson_grad, "neyman": _neyman_grad}


FDIVS: dict[str, FDivergence] = {
    "kl": FDivergence(
        f=lambda u: torch.special.xlogy(u, u) - u + 1, core=_kl_core,
        f0=lambda: 1.0, fprime_inf=lambda: INF, h=lambda r: r),
    "reverse_kl": FDivergence(
        f=lambda u: -torch.log(u) + u - 1, core=_rkl_core,
        f0=lambda: INF, fprime_inf=lambda: 1.0, h=lambda r: torch.ones_like(r)),
    "jeffreys": FDivergence(
        f=lambda u: (u - 1) * torch.log(u), core=_jeffreys_core,
        f0=lambda: INF, fprime_inf=lambda: INF, h=lambda r: r + 1),
    "js": FDivergence(
        f=_js_f, core=_js_core, f0=lambda: 0.5 * LOG2, fprime_inf=lambda: 0.5 * LOG2,
        h=lambda r: r / (2 * (r + 1))),
    "hellinger": FDivergence(
        f=lambda u: 0.5 * (torch.sqrt(u) - 1) ** 2, core=_hel_core, f0=lambda: 0.5, fprime_inf=lambda: 0.5,
        h=lambda r: 0.25 * torch.sqrt(r)),
    "tv": FDivergence(
        f=lambda u: 0.5 * (u - 1).abs(), core=_tv_core, f0=lambda: 0.5, fprime_inf=lambda: 0.5, h=None,
        h_note="f''(u) = δ(u − 1): all the weight sits where p = q, so TV's gradient is "
               "−½ ∫ sign(p − q) ∇_θ q_θ (a score-function form, not a smooth weight)"),
    "pearson": FDivergence(
        f=lambda u: (u - 1) ** 2, core=_pearson_core, f0=lambda: 1.0, fprime_inf=lambda: INF,
        h=lambda r: 2 * r * r),
    "neyman": FDivergence(
        f=lambda u: (u - 1) ** 2 / u, core=_neyman_core, f0=lambda: INF, fprime_inf=lambda: 1.0,
        h=lambda r: 2 / r),
    "alpha": FDivergence(
        f=_alpha_f, core=_alpha_core, f0=_alpha_f0, fprime_inf=_alpha_fi,
        h=lambda r, alpha: r ** as_t(alpha, r)),
    "skew_kl": FDivergence(
        f=_skew_f, core=_skew_core, f0=lambda lam: 1.0 - float(lam), fprime_inf=_skew_fi, h=_skew_h),
    "tsallis": FDivergence(
        f=lambda u, alpha: as_t(alpha, u) * _alpha_f(u, alpha), core=_tsallis_core,
        f0=lambda alpha: 1.0, fprime_inf=lambda alpha: float(alpha) / (1 - float(alpha)) if float(alpha) < 1 else INF,
        h=lambda r, alpha: as_t(alpha, r) * r ** as_t(alpha, r)),
}
FDIVS = {k: replace(v, grad=_GRADS[k]) for k, v in FDIVS.items()}


def _limit_term(mask: torch.Tensor, dens: torch.Tensor, factor) -> torch.Tensor:
    """dens·factor on ``mask``, 0 elsewhere; an infinite factor gives +inf without NaN gradients."""
    fac = factor if isinstance(factor, torch.Tensor) else torch.tensor(float(factor), device=dens.device, dtype=dens.dtype)
    fac = fac.expand_as(dens) if fac.dim() else fac.expand(dens.shape)
    finite = torch.isfinite(fac)
    safe = torch.where(finite, fac, torch.zeros_like(fac))
    term = torch.where(mask & finite, dens * safe, torch.zeros_like(dens))
    return term + torch.where(mask & ~finite, torch.full_like(dens, math.inf), torch.zeros_like(dens))


def f_from_logs(fd: FDivergence, lp: torch.Tensor, lq: torch.Tensor, w: torch.Tensor, **params) -> torch.Tensor:
    """Quadrature of ∫ q f(p/q) from normalized log-densities on a grid (see module doc)."""
    lp, lq = torch.broadcast_tensors(lp, lq)
    p_pos = lp > -math.inf
    q_pos = lq > -math.inf
    both = p_pos & q_pos
    if bool(both.all()):  # the common case (both densities positive on the grid): no masking needed
        return wsum(fd.core(lp, lq, **params), w)
    core = fd.core(finite_or(lp, both), finite_or(lq, both), **params)
    val = torch.where(both, core, torch.zeros_like(core))
    only_q = q_pos & ~p_pos
    only_p = p_pos & ~q_pos
    if bool(only_q.any()):
        val = val + _limit_term(only_q, finite_or(lq, only_q, -1e300).exp(), fd.f0(**params))
    if bool(only_p.any()):
        val = val + _limit_term(only_p, finite_or(lp, only_p, -1e300).exp(), fd.fprime_inf(**params))
    return wsum(val, w)


def f_grad_from_logs(fd: FDivergence, lp, lq, p, q, w, **params):
    """(D_f per member, ∂D_f/∂lq_i / w_i) in the engine's grid-last layout: lp, p (1, N) or
    (B, N), lq, q (B, N), w (N,); parameters scalars or (B, 1). Finite lp and lq only (the
    engine falls back to autograd of :func:`f_from_logs` otherwise)."""
    core, d = fd.grad(lp, lq, p, q, **params)
    return core @ w, d


# --------------------------------------------------------------------------- generic f
def generic_fdivergence(f: Callable, *, f0: float | None = None, fprime_inf: float | None = None,
                        check: bool = True) -> FDivergence:
    """An f-divergence from any convex ``f`` with f(1) = 0 (a torch function of u >= 0).

    The limits f(0) = lim_{u→0+} f(u) and f'(∞) = lim_{t→0+} t·f(1/t) are taken numerically
    unless given (``f0``, ``fprime_inf``): see :func:`limit_at_zero` (float64, on t = 10^-k,
    no overflow: a sequence that keeps growing is +inf; one that converges is extrapolated).
    Both are computed once and cached. h(r) = r² f''(r) comes from autograd. With ``check``
    the function is tested: f(1) = 0 and f'' >= 0 on a log-spaced set of points in [1e-3, 1e3].
    """
    if not callable(f):
        raise ValueError(f"f_divergence(f={f!r}): f must be a callable of a tensor u >= 0")
    # normalize f'(1) = 0 by subtracting f'(1)(u - 1): the divergence is unchanged
    one = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    try:
        with torch.enable_grad():
            f1 = f(one)
            (d1,) = torch.autograd.grad(f1, one)
    except Exception as exc:  # a user function can fail in any way: report it, whatever it is
        raise ValueError(f"f_divergence(f={getattr(f, '__name__', f)!r}): f(1) could not be evaluated: {exc}") from None
    slope = float(d1.detach())
    if check:
        f1 = float(f1.detach())
        if not math.isfinite(f1) or abs(f1) > 1e-10:
            raise ValueError(f"f_divergence(f={getattr(f, '__name__', 'f')}): f(1) must be 0, got {f1:.6g}")
        u = torch.logspace(-3, 3, 61, dtype=torch.float64)
        h = _h_autograd(f, u)
        if not torch.isfinite(h).all() or (h < -1e-9 * (1 + h.abs())).any():
            bad = float(u[(~torch.isfinite(h)) | (h < 0)][0])
            raise ValueError(f"f_divergence(f={getattr(f, '__name__', 'f')}): f must be convex "
                             f"(f''(u) < 0 or undefined at u = {bad:.3g})")

    def fn(u):
        return f(u) - slope * (u - 1)

    def core(lp, lq):
        q = lq.exp()
        return q * fn(torch.exp(lp - lq))

    name = getattr(f, "__name__", "f")
    cache: dict = {}

    def lim0():
        if f0 is not None:
            return float(f0)
        if "f0" not in cache:
            cache["f0"] = limit_at_zero(fn, what=f"f(0) = lim f(u), u → 0+, of f={name}")
        return cache["f0"]

    def liminf():
        if fprime_inf is not None:
            return float(fprime_inf)
        if "fpi" not in cache:
            cache["fpi"] = limit_at_zero(lambda t: t * fn(1.0 / t), what=f"f'(∞) = lim t·f(1/t), t → 0+, of f={name}")
        return cache["fpi"]

    return FDivergence(f=fn, core=core, f0=lim0, fprime_inf=liminf, h=lambda r: _h_autograd(fn, r))


#: the decades at which :func:`limit_at_zero` evaluates g: t = 10^-k, k = 0, 1, ..., 300
_LIMIT_DECADES = 300


def limit_at_zero(g: Callable, *, what: str = "the limit") -> float:
    """lim_{t→0+} g(t) for a g that is eventually monotone near 0 (the limits of a convex f:
    f(0) = lim f(u), and f'(∞) = lim t·f(1/t)), in (−∞, +∞].

    g is evaluated in float64 on t = 10^-k, k = 0..300. Values past the first non-finite one
    are dropped: an intermediate overflow (``(u − 1)**2`` at u = 1e155 is inf, although
    ``(u − 1)**2/(1 + u)`` is not) or a 0·inf = NaN says nothing about the limit. On the
    finite prefix, three points k₁ < k₂ < k₃ equally spaced (the first, middle and last)
    give the steps Δ₁ = g₂ − g₁ and Δ₂ = g₃ − g₂:

    - |Δ₂| ≤ 1e-9·max(1, |g₃|): converged, the limit is g₃;
    - Δ₂/Δ₁ ≥ 0.99: the steps do not shrink (logarithmic growth such as −log u gives equal
      steps, a power u^-c growing ones): the limit is ±inf in the direction of Δ₂;
    - otherwise the steps shrink geometrically in k (errors like t^c): Aitken's Δ²
      extrapolation g₃ + Δ₂·ρ/(1 − ρ), ρ = Δ₂/Δ₁ (exact for a geometric error).

    A sequence with fewer than 3 finite values is +inf when the first non-finite one is +inf
    (g overflowed at once); otherwise the limit cannot be told and ``ValueError`` says so."""
    t = torch.logspace(0, -_LIMIT_DECADES, _LIMIT_DECADES + 1, dtype=torch.float64)
    with torch.no_grad():
        try:
            v = torch.as_tensor(g(t), dtype=torch.float64).reshape(-1)
            if v.numel() != t.numel():
                raise ValueError("not elementwise")
        except Exception:  # a user f that is not elementwise: one point at a time
            vals = []
            for ti in t:
                try:
                    vals.append(float(torch.as_tensor(g(ti), dtype=torch.float64).reshape(())))
                except Exception:
                    vals.append(math.nan)
            v = torch.tensor(vals, dtype=torch.float64)
    bad = (~torch.isfinite(v)).nonzero()
    K = int(bad[0, 0]) if bad.numel() else int(v.numel())
    if K < 3:
        if K < v.numel() and float(v[K]) == math.inf:
            return math.inf
        raise ValueError(f"f_divergence: {what} could not be determined (f is not finite near the limit); "
                         "give it explicitly (f0= / fprime_inf=)")
    s = (K - 1) // 2
    g1, g2, g3 = float(v[K - 1 - 2 * s]), float(v[K - 1 - s]), float(v[K - 1])
    d1, d2 = g2 - g1, g3 - g2
    if abs(d2) <= 1e-9 * max(1.0, abs(g3)):
        return g3
    rho = d2 / d1 if d1 != 0 else math.inf
    if rho >= 0.99:
        return math.copysign(math.inf, d2)
    return g3 + d2 * rho / (1.0 - rho)


def _h_autograd(f, r: torch.Tensor) -> torch.Tensor:
    r = r.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = f(r)
        (d1,) = torch.autograd.grad(y.sum(), r, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), r, allow_unused=True)
    if d2 is None:
        d2 = torch.zeros_like(r)
    return (r * r * d2).detach()
