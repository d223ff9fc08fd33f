"""Closed forms registered per (divergence, type of p, type of q) — torch's ``register_kl`` idea.

The most specific registered pair wins (smallest total distance in the two MROs). A closed
form may decline a particular pair (return ``None``, e.g. a Mixture with a non-Gaussian
component); ``estimator="auto"`` then falls back to quadrature, and says so in the result.

What is here (p the target, q the model, natural logs):

- Normal/Normal and MultivariateNormal/MultivariateNormal: KL both ways, Jeffreys, Rényi,
  Amari α, Tsallis, Hellinger², Bhattacharyya (all from the Chernoff coefficient
  J(α) = ∫p^α q^{1−α}), Pearson χ²(p‖q) and Neyman χ²(q‖p) (also with a Gaussian *mixture*
  in the numerator: p for Pearson, q for Neyman), Cauchy–Schwarz between Gaussian mixtures.
- Laplace/Laplace and Uniform/Uniform (1D intervals or 2D boxes): KL both ways, Jeffreys,
  Rényi, α, Tsallis, Hellinger², Bhattacharyya, Pearson and Neyman, from J(α) in closed form
  (Gil, Alajaji & Linder 2013, "Rényi divergence measures for commonly used univariate
  continuous distributions", Information Sciences 249; rederived below).

Infinity is an answer: a divergent integral comes back as a +inf tensor (never NaN, never a
large finite stand-in), and :func:`closed_form_reason` says why in words.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..distributions import Laplace, Mixture, MultivariateNormal, Normal, Uniform
from .gaussian import (_inv_logdet, gauss_moments, gauss_power_is_pd, gauss_power_precision, gm_components,
                       gm_log_inner, log_gauss_power_integral)

__all__ = ["register_closed_form", "find_closed_form", "supported_pairs", "closed_form_table", "closed_form_reason",
           "gauss_kl", "gauss_log_chernoff", "gm_log_chi2_integral", "laplace_kl", "laplace_log_chernoff",
           "uniform_kl", "uniform_log_chernoff"]

_TABLE: dict[tuple[str, type, type], Callable] = {}


def register_closed_form(key: str, P: type, Q: type):
    """Decorator: ``fn(p, q, **params) -> tensor | None`` is the closed form of ``key`` for
    ``p`` an instance of ``P`` and ``q`` of ``Q``."""

    def deco(fn):
        _TABLE[(key, P, Q)] = fn
        return fn

    return deco


def find_closed_form(key: str, p, q) -> Callable | None:
    best, best_rank = None, None
    for (k, P, Q), fn in _TABLE.items():
        if k != key or not isinstance(p, P) or not isinstance(q, Q):
            continue
        rank = type(p).__mro__.index(P) + type(q).__mro__.index(Q)
        if best_rank is None or rank < best_rank:
            best, best_rank = fn, rank
    return best


def supported_pairs(key: str) -> list[tuple[str, str]]:
    return [(P.__name__, Q.__name__) for (k, P, Q) in _TABLE if k == key]


def closed_form_table() -> dict[str, list[tuple[str, str]]]:
    """{divergence key: [(type of p, type of q), ...]} — generated from the registrations."""
    out: dict[str, list] = {}
    for (k, P, Q) in _TABLE:
        out.setdefault(k, []).append((P.__name__, Q.__name__))
    return out


# --------------------------------------------------------------------------- helpers
def _check_alpha(owner: str, alpha) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}(alpha={alpha!r}): alpha must be a real number") from None
    if not math.isfinite(a):
        raise ValueError(f"{owner}(alpha={alpha!r}): alpha must be finite")
    return a


def _inf_like(t):
    return torch.full_like(t, math.inf)


def _register_chernoff_family(P, Q, kl, log_chernoff, accept, chi2: bool = True):
    """Register every divergence that is a function of KL or of the Chernoff coefficient
    J(α) = ∫p^α q^{1−α} (``log_chernoff(p, q, α)`` gives log J, +inf where it diverges, −inf
    for disjoint supports):

    - ``kl`` = KL(p‖q), ``reverse_kl`` = KL(q‖p), ``jeffreys`` = their sum;
    - ``renyi`` = log J(α) / (α − 1) (α = 1: KL(p‖q));
    - ``alpha`` = (1 − J(α)) / (α(1 − α)) (α = 1: KL(p‖q), α = 0: KL(q‖p));
    - ``tsallis`` = (J(α) − 1) / (α − 1) (α = 1: KL(p‖q));
    - ``hellinger`` = 1 − J(½), ``bhattacharyya`` = −log J(½);
    - with ``chi2``: ``pearson`` = J(2) − 1 = ∫p²/q − 1, ``neyman`` = J(−1) − 1 = ∫q²/p − 1.

    J = +inf gives +inf for every one of them (α > 1 or α < 0), J = 0 gives +inf for Rényi
    (α < 1) and Bhattacharyya and the finite limits 1/(α(1−α)), 1/(1−α), 1 for α, Tsallis, H².
    ``accept(p, q)`` False declines the pair (``None``).
    """

    def _kl(p, q):
        return kl(p, q) if accept(p, q) else None

    def _rkl(p, q):
        return kl(q, p) if accept(p, q) else None

    def _jef(p, q):
        return kl(p, q) + kl(q, p) if accept(p, q) else None

    def _renyi(p, q, alpha):
        if not accept(p, q):
            return None
        if alpha == 1:
            return kl(p, q)
        return log_chernoff(p, q, alpha) / (alpha - 1)

    def _alpha(p, q, alpha):
        if not accept(p, q):
            return None
        if alpha == 1:
            return kl(p, q)
        if alpha == 0:
            return kl(q, p)
        # (1 − J) / (α(1 − α)); J = +inf (α outside [0, 1]) gives +inf, J = 0 gives 1/(α(1−α))
        return -torch.expm1(log_chernoff(p, q, alpha)) / (alpha * (1 - alpha))

    def _tsallis(p, q, alpha):
        if not accept(p, q):
            return None
        if alpha == 1:
            return kl(p, q)
        return torch.expm1(log_chernoff(p, q, alpha)) / (alpha - 1)

    def _hel(p, q):
        return -torch.expm1(log_chernoff(p, q, 0.5)) if accept(p, q) else None

    def _bha(p, q):
        return -log_chernoff(p, q, 0.5) if accept(p, q) else None

    fns = {"kl": _kl, "reverse_kl": _rkl, "jeffreys": _jef, "renyi": _renyi, "alpha": _alpha,
           "tsallis": _tsallis, "hellinger": _hel, "bhattacharyya": _bha}
    if chi2:
        fns["pearson"] = lambda p, q: torch.expm1(log_chernoff(p, q, 2.0)) if accept(p, q) else None
        fns["neyman"] = lambda p, q: torch.expm1(log_chernoff(p, q, -1.0)) if accept(p, q) else None
    for key, fn in fns.items():
        register_closed_form(key, P, Q)(fn)


# --------------------------------------------------------------------------- Gaussians
def _same_dim(p, q):
    return p.dim == q.dim


def gauss_kl(p, q):
    """KL(N(m1,S1) ‖ N(m2,S2)) = ½[tr(S2⁻¹S1) + Δᵀ S2⁻¹ Δ − k + log|S2|/|S1|]."""
    m1, S1 = gauss_moments(p)
    m2, S2 = gauss_moments(q)
    k = m1.shape[-1]
    S2inv, ld2 = _inv_logdet(S2)
    _, ld1 = _inv_logdet(S1)
    d = (m2 - m1).unsqueeze(-1)
    tr = torch.diagonal(S2inv @ S1, dim1=-2, dim2=-1).sum(-1)
    maha = (d.transpose(-1, -2) @ S2inv @ d).squeeze(-1).squeeze(-1)
    return 0.5 * (tr + maha - k + ld2 - ld1)


def gauss_log_chernoff(p, q, alpha: float):
    """log J(α) = log ∫ p^α q^{1−α} for Gaussians (batched), any real α; +inf where it diverges.

    With Λ = Σ⁻¹ the exponent's Hessian is −A, A = αΛp + (1−α)Λq, so J is finite iff A is
    positive definite: always for 0 ≤ α ≤ 1; in 1D for α > 1 iff σp² < α/(α−1)·σq², for
    α < 0 iff σq² < (1−α)/(−α)·σp² (χ²(p‖q), α = 2: σp² < 2σq²). Where finite, with
    Δ = mp − mq and M = (1−α)Σp + αΣq = Σp A Σq,

        log J = −½ α(1−α) Δᵀ M⁻¹ Δ − ½ log(|M| / (|Σp|^{1−α} |Σq|^α)),

    evaluated as the general Gaussian-power integral :func:`log_gauss_power_integral`.
    """
    alpha = _check_alpha("gauss_log_chernoff", alpha)
    m1, S1 = gauss_moments(p)
    m2, S2 = gauss_moments(q)
    return log_gauss_power_integral([(alpha, m1, S1), (1 - alpha, m2, S2)])


def _gauss_single(d):
    """(mean, cov) if ``d`` is one Gaussian: a Normal/MVN (batched allowed) or an unbatched
    Gaussian Mixture with exactly one component of positive weight; else None."""
    if isinstance(d, (Normal, MultivariateNormal)):
        return gauss_moments(d)
    comps = gm_components(d) if isinstance(d, Mixture) else None
    if comps is None:
        return None
    live = [(m, c) for lw, m, c in comps if bool(lw > -math.inf)]
    return live[0] if len(live) == 1 else None


def _gm_live(d):
    """Positive-weight components of an unbatched Gaussian (mixture) as stacked tensors
    (log w (K,), means (K, k), covs (K, k, k)), or None."""
    comps = gm_components(d)
    if comps is None:
        return None
    live = [(lw, m, c) for lw, m, c in comps if bool(lw > -math.inf)]
    return (torch.stack([lw for lw, _, _ in live]), torch.stack([m for _, m, _ in live]),
            torch.stack([c for _, _, c in live]))


def gm_log_chi2_integral(p, q):
    """log ∫ p²/q for a Gaussian or Gaussian mixture p and a single Gaussian q; None otherwise.

    For p = Σ_i w_i N_i (weights > 0) and q = N_q,

        ∫ p²/q = Σ_{i,j} w_i w_j ∫ N_i N_j / N_q,

    each term a Gaussian integral (:func:`log_gauss_power_integral` with exponents (1, 1, −1)),
    finite iff Λ_i + Λ_j − Λ_q is positive definite (Λ = Σ⁻¹). Since
    Λ_i + Λ_j − Λ_q = ½(2Λ_i − Λ_q) + ½(2Λ_j − Λ_q), the whole sum is finite iff every
    component of positive weight has 2Λ_i − Λ_q positive definite (1D: σ_i² < 2σ_q²) — however
    small its weight: a 10⁻⁶ component too wide for q makes χ²(p‖q) infinite. The sum is a
    logsumexp of the log terms, so large values do not overflow before the final exp.
    Batched parameters are supported when p and q are single Gaussians; a batched mixture, a
    mixture q with several components, or a non-Gaussian component declines (None).
    """
    if p.dim != q.dim:
        return None
    qq = _gauss_single(q)
    if qq is None:
        return None
    mq, Sq = qq
    if isinstance(p, (Normal, MultivariateNormal)):
        mp, Sp = gauss_moments(p)
        return log_gauss_power_integral([(2.0, mp, Sp), (-1.0, mq, Sq)])
    if isinstance(q, (Normal, MultivariateNormal)) and q.batch_shape:
        return None
    live = _gm_live(p)
    if live is None:
        return None
    lw, M, S = live
    L = log_gauss_power_integral([(1.0, M[:, None], S[:, None]), (1.0, M[None, :], S[None, :]), (-1.0, mq, Sq)])
    return torch.logsumexp((lw[:, None] + lw[None, :] + L).reshape(-1), dim=0)


def _pearson_gm(p, q):
    """χ²(p‖q) = ∫p²/q − 1 (see :func:`gm_log_chi2_integral`)."""
    lj = gm_log_chi2_integral(p, q)
    return None if lj is None else torch.expm1(lj)


def _neyman_gm(p, q):
    """χ²(q‖p) = ∫q²/p − 1: Pearson with the roles swapped (p a single Gaussian)."""
    lj = gm_log_chi2_integral(q, p)
    return None if lj is None else torch.expm1(lj)


for P in (Normal, MultivariateNormal):
    _register_chernoff_family(P, P, gauss_kl, gauss_log_chernoff, _same_dim, chi2=False)

for P in (Normal, MultivariateNormal, Mixture):
    for Q in (Normal, MultivariateNormal, Mixture):
        register_closed_form("pearson", P, Q)(_pearson_gm)
        register_closed_form("neyman", P, Q)(_neyman_gm)


def _cs_gm(p, q):
    A, B = gm_components(p), gm_components(q)
    if A is None or B is None or p.dim != q.dim:
        return None
    return -gm_log_inner(A, B) + 0.5 * gm_log_inner(A, A) + 0.5 * gm_log_inner(B, B)


for P in (Normal, MultivariateNormal, Mixture):
    for Q in (Normal, MultivariateNormal, Mixture):
        register_closed_form("cauchy_schwarz", P, Q)(_cs_gm)


# --------------------------------------------------------------------------- Laplace
def laplace_kl(p, q):
    """KL(Laplace(m1, b1) ‖ Laplace(m2, b2)) = log(b2/b1) + Δ/b2 + (b1/b2) e^{−Δ/b1} − 1, Δ = |m1 − m2|.

    From E_p|x − m2| = Δ + b1 e^{−Δ/b1}. Always finite (both supports are the real line).
    Written as (r − 1 − log r) + Δ/b2 + r (e^{−Δ/b1} − 1), r = b1/b2, which is 0 at p = q exactly.
    """
    m1, b1, m2, b2 = p.loc, p.scale, q.loc, q.scale
    D = (m1 - m2).abs()
    r = b1 / b2
    return (r - 1 - torch.log(r)) + D / b2 + r * torch.expm1(-D / b1)


def laplace_log_chernoff(p, q, alpha: float):
    """log J(α) = log ∫ p^α q^{1−α} for p = Laplace(m1, b1), q = Laplace(m2, b2), any real α.

    With a = α/b1, c = (1−α)/b2 and Δ = |m1 − m2|, splitting the line at the two locations:

        ∫ e^{−a|x−m1| − c|x−m2|} dx = (e^{−aΔ} + e^{−cΔ})/(a + c) + (e^{−cΔ} − e^{−aΔ})/(a − c)
                                    = 2(a e^{−cΔ} − c e^{−aΔ}) / (a² − c²),

    finite iff a + c = α/b1 + (1−α)/b2 > 0 (the two outer pieces); always for 0 ≤ α ≤ 1, for
    α > 1 iff b2 > (α−1)/α · b1, for α < 0 iff b1 > (−α)/(1−α) · b2 (e.g. χ²(p‖q), α = 2: b2 > b1/2;
    χ²(q‖p), α = −1: b1 > b2/2). Then J = (2b1)^{−α} (2b2)^{α−1} · that integral — the formula
    of Gil, Alajaji & Linder (2013), Table 2. Evaluated as
    log J = −log 2 − α log b1 − (1−α) log b2 − min(a, c)Δ + log[(1 + e^{−tΔ})/(a + c) + Δ h(tΔ)],
    t = |a − c|, h(u) = (1 − e^{−u})/u (h(0) = 1: the a = c case), with no overflow or 0/0.
    Returns +inf where a + c ≤ 0 (within 64 ulps of the terms).
    """
    alpha = _check_alpha("laplace_log_chernoff", alpha)
    m1, b1, m2, b2 = p.loc, p.scale, q.loc, q.scale
    a, c = alpha / b1, (1 - alpha) / b2
    s = a + c
    eps = torch.finfo(s.dtype).eps
    ok = s.detach() > 64 * eps * (a.detach().abs() + c.detach().abs())
    s_safe = torch.where(ok, s, torch.ones_like(s))
    D = (m1 - m2).abs()
    lo = torch.minimum(a, c)
    u = (a - c).abs() * D
    small = u.detach() < 1e-8
    u_safe = torch.where(small, torch.ones_like(u), u)
    h = torch.where(small, 1 - u / 2, -torch.expm1(-u_safe) / u_safe)
    logI = -lo * D + torch.log((1 + torch.exp(-u)) / s_safe + D * h)
    logJ = -math.log(2.0) - alpha * torch.log(b1) - (1 - alpha) * torch.log(b2) + logI
    return torch.where(ok, logJ, _inf_like(logJ))


_register_chernoff_family(Laplace, Laplace, laplace_kl, laplace_log_chernoff, lambda p, q: True)


# --------------------------------------------------------------------------- Uniform
def _uniform_geometry(p, q):
    """log|p's support|, log|q's support|, log|overlap| (−inf if they do not overlap),
    p's support ⊂ q's, q's support ⊂ p's — intervals in 1D, boxes in 2D (batched)."""
    l1, h1, l2, h2 = p.low, p.high, q.low, q.high
    ov = (torch.minimum(h1, h2) - torch.maximum(l1, l2)).clamp_min(0)
    p_in_q = (l2 <= l1) & (h1 <= h2)
    q_in_p = (l1 <= l2) & (h2 <= h1)
    logL1, logL2, logov = torch.log(h1 - l1), torch.log(h2 - l2), torch.log(ov)
    if p.dim == 2:
        logL1, logL2, logov = logL1.sum(-1), logL2.sum(-1), logov.sum(-1)
        p_in_q, q_in_p = p_in_q.all(-1), q_in_p.all(-1)
    shape = torch.broadcast_shapes(logL1.shape, logL2.shape, logov.shape)
    return (logL1.expand(shape), logL2.expand(shape), logov.expand(shape), p_in_q.expand(shape),
            q_in_p.expand(shape))


def _uniform_check(owner, p, q):
    if p.dim != q.dim:
        raise ValueError(f"{owner}(p=Uniform ({p.dim}D), q=Uniform ({q.dim}D)): p and q must have the same dimension")


def uniform_kl(p, q):
    """KL(U(A) ‖ U(B)) = log(|B|/|A|) if A ⊂ B, else +inf (q = 0 on a part of A where p > 0).

    A, B are intervals (1D) or boxes (2D), |·| their length or area. Boundaries do not matter
    (measure zero).
    """
    _uniform_check("uniform_kl", p, q)
    logL1, logL2, _, p_in_q, _ = _uniform_geometry(p, q)
    v = logL2 - logL1
    return torch.where(p_in_q, v, _inf_like(v))


def uniform_log_chernoff(p, q, alpha: float):
    """log J(α) = log ∫ p^α q^{1−α} for p = U(A), q = U(B) (intervals or boxes), any real α.

    On the overlap A ∩ B the integrand is |A|^{−α} |B|^{α−1}; off it one factor is 0, and
    0 to a negative power is +∞. Hence (Gil, Alajaji & Linder 2013, Table 2, for α ∈ (0, 1)):

    - 0 ≤ α ≤ 1: J = |A ∩ B| · |A|^{−α} |B|^{α−1} (0, i.e. log J = −∞, for disjoint supports;
      at α = 1 this is the limit from below, ∫_{q>0} p);
    - α > 1: J = (|B|/|A|)^{α−1} if A ⊂ B, else +∞ (q^{1−α} = ∞ where q = 0 < p);
    - α < 0: J = (|B|/|A|)^{α} if B ⊂ A, else +∞ (p^α = ∞ where p = 0 < q).

    So Rényi D_α = log(|B|/|A|) for every α > 1 when A ⊂ B (equal to KL), and for α < 1 it is
    finite unless the supports are disjoint.
    """
    alpha = _check_alpha("uniform_log_chernoff", alpha)
    _uniform_check("uniform_log_chernoff", p, q)
    logL1, logL2, logov, p_in_q, q_in_p = _uniform_geometry(p, q)
    if alpha > 1:
        v = (alpha - 1) * (logL2 - logL1)
        return torch.where(p_in_q, v, _inf_like(v))
    if alpha < 0:
        v = alpha * (logL2 - logL1)
        return torch.where(q_in_p, v, _inf_like(v))
    return logov - alpha * logL1 - (1 - alpha) * logL2


_register_chernoff_family(Uniform, Uniform, uniform_kl, uniform_log_chernoff, _same_dim)


# --------------------------------------------------------------------------- reasons
#: the Chernoff exponent α of the integral ∫p^α q^{1−α} behind each key (None: read params)
_EXPONENT = {"pearson": 2.0, "neyman": -1.0, "hellinger": 0.5, "bhattacharyya": 0.5,
             "renyi": None, "alpha": None, "tsallis": None}


def _g(x) -> str:
    return f"{float(x):.4g}"


def _entry(d, idx, shape):
    """The distribution ``d`` at batch index ``idx`` of the broadcast ``shape`` (unbatched
    mixtures pass through)."""
    if not idx and not getattr(d, "batch_shape", ()):
        return d
    shape = tuple(shape)
    if isinstance(d, Normal):
        return Normal(d.loc.expand(shape)[idx], d.scale.expand(shape)[idx], validate=False)
    if isinstance(d, Laplace):
        return Laplace(d.loc.expand(shape)[idx], d.scale.expand(shape)[idx], validate=False)
    if isinstance(d, MultivariateNormal):
        return MultivariateNormal(d.mean.expand(shape + (2,))[idx], d.cov.expand(shape + (2, 2))[idx], validate=False)
    if isinstance(d, Uniform):
        ev = (2,) if d.dim == 2 else ()
        return Uniform(d.low.expand(shape + ev)[idx], d.high.expand(shape + ev)[idx], validate=False)
    return d


def _support(u) -> str:
    if u.dim == 1:
        return f"[{_g(u.low)}, {_g(u.high)}]"
    return f"[{_g(u.low[0])}, {_g(u.high[0])}] × [{_g(u.low[1])}, {_g(u.high[1])}]"


def _uncovered(a, b) -> str:
    """Words for a part of Uniform ``a``'s support outside Uniform ``b``'s."""
    lows, highs = a.low.reshape(-1), a.high.reshape(-1)
    blows, bhighs = b.low.reshape(-1), b.high.reshape(-1)
    for ax in range(a.dim):
        l1, h1, l2, h2 = (float(t[ax]) for t in (lows, highs, blows, bhighs))
        if l1 < l2:
            piece = f"[{l1:.4g}, {min(h1, l2):.4g}]"
        elif h1 > h2:
            piece = f"[{max(l1, h2):.4g}, {h1:.4g}]"
        else:
            continue
        return f"x ∈ {piece}" if a.dim == 1 else f"{'xy'[ax]} ∈ {piece}"
    return "part of its support"


def _overflow(label: str, log_int: float, what: str) -> str:
    return (f"{label} overflows: {what} is finite, with log = {log_int:.6g}, but exp of that exceeds the "
            f"largest float ({torch.finfo(torch.float64).max:.3g}); the divergence is finite and too large to represent")


def _gauss_reason(key, p, q, alpha, label):
    if alpha is None:
        return (f"{label} overflows: the Gaussian closed form is finite, but its value exceeds the largest "
                "representable float (extreme means or scale ratios)")
    if key in ("pearson", "neyman"):
        num, den = (p, q) if key == "pearson" else (q, p)
        nn, dn = ("p", "q") if key == "pearson" else ("q", "p")
        lj = gm_log_chi2_integral(num, den)
        if lj is not None and math.isfinite(float(lj)):
            return _overflow(label, float(lj), f"∫{nn}²/{dn}")
        single_den = _gauss_single(den)
        if single_den is None:  # no closed form for this pair: nothing to explain
            return None
        mq, Sq = single_den
        comps = _gm_live(num)
        if comps is None:  # a (batch entry of a) single Gaussian
            if not isinstance(num, (Normal, MultivariateNormal)):
                return None
            mp, Sp = gauss_moments(num)
            comps = (torch.zeros(1, dtype=mp.dtype), mp.reshape(1, -1), Sp.reshape(1, *Sp.shape[-2:]))
        lw, M, S = comps
        for i in range(M.shape[0]):
            A, _, scale = gauss_power_precision([(2.0, M[i], S[i]), (-1.0, mq, Sq)])
            pd, ev = gauss_power_is_pd(A, scale)
            if bool(pd):
                continue
            single = M.shape[0] == 1
            which = "" if single else f": component {i} of {nn} (weight {float(lw[i].exp()):.3g}) has"
            anyw = "" if single else " (a component of any positive weight, however small, does this)"
            if num.dim == 1:
                s2, d2 = _g(S[i].reshape(())), _g(2 * Sq.reshape(()))
                if single:
                    return (f"{label} is infinite for these Normals: σ{nn}² = {s2} ≥ 2σ{dn}² = {d2}, so "
                            f"{nn}²/{dn} ∝ exp((1/(2σ{dn}²) − 1/σ{nn}²)·x²) does not decay and is not integrable")
                return (f"{label} is infinite for these Normals{which} σ² = {s2} ≥ 2σ{dn}² = {d2}, so its term "
                        f"w²·N²/{dn} ∝ exp((1/(2σ{dn}²) − 1/σ²)·x²) does not decay and is not integrable{anyw}")
            _, vecs = torch.linalg.eigh(A)
            u = vecs[..., 0]
            sig = f"Σ{nn}" if single else f"Σ_{i}"
            comp = "" if single else f" for component {i} of {nn} (weight {float(lw[i].exp()):.3g}),"
            return (f"{label} is infinite for these MultivariateNormals:{comp} 2·{sig}⁻¹ − Σ{dn}⁻¹ has "
                    f"eigenvalue {_g(ev[..., 0])} ≤ 0 along direction ({_g(u[0])}, {_g(u[1])}), so {nn}²/{dn} does "
                    f"not decay along it (the spread there is at least √2 times {dn}'s) and is not integrable{anyw}")
        return None
    if p.dim != q.dim or not isinstance(p, (Normal, MultivariateNormal)) or not isinstance(q, (Normal, MultivariateNormal)):
        return None
    lj = gauss_log_chernoff(p, q, alpha)
    if math.isfinite(float(lj)):
        return _overflow(label, float(lj), "∫p^α q^(1−α)")
    m1, S1 = gauss_moments(p)
    m2, S2 = gauss_moments(q)
    if p.dim == 1:
        sp2, sq2 = float(S1.reshape(())), float(S2.reshape(()))
        c = alpha / sp2 + (1 - alpha) / sq2
        if alpha > 1:
            cond = f"σp² = {sp2:.4g} ≥ α/(α−1)·σq² = {alpha / (alpha - 1) * sq2:.4g}"
        else:
            cond = f"σq² = {sq2:.4g} ≥ (1−α)/(−α)·σp² = {(1 - alpha) / -alpha * sp2:.4g}"
        return (f"{label} is infinite for these Normals: α/σp² + (1−α)/σq² = {c:.4g} ≤ 0 ({cond}, α = {alpha:g}), "
                "so p^α q^(1−α) ∝ exp(−½(α/σp² + (1−α)/σq²)·x²) does not decay and ∫p^α q^(1−α) diverges")
    A, _, _ = gauss_power_precision([(alpha, m1, S1), (1 - alpha, m2, S2)])
    ev, vecs = torch.linalg.eigh(A)
    u = vecs[..., 0]
    return (f"{label} is infinite for these MultivariateNormals: α·Σp⁻¹ + (1−α)·Σq⁻¹ (α = {alpha:g}) has eigenvalue "
            f"{_g(ev[0])} ≤ 0 along direction ({_g(u[0])}, {_g(u[1])}), so p^α q^(1−α) does not decay along it "
            "and ∫p^α q^(1−α) diverges")


def _laplace_reason(key, p, q, alpha, label):
    if alpha is None:
        return (f"{label} overflows: the Laplace closed form is finite, but its value exceeds the largest "
                "representable float (extreme location offset or scale ratio)")
    lj = float(laplace_log_chernoff(p, q, alpha))
    if math.isfinite(lj):
        return _overflow(label, lj, "∫p^α q^(1−α)" if key not in ("pearson", "neyman") else
                         ("∫p²/q" if key == "pearson" else "∫q²/p"))
    bp, bq = float(p.scale), float(q.scale)
    if key == "pearson":
        return (f"{label} is infinite for these Laplace distributions: b_q = {bq:.4g} ≤ b_p/2 = {bp / 2:.4g}, "
                "so p²/q ∝ exp((1/b_q − 2/b_p)·|x|) does not decay and is not integrable")
    if key == "neyman":
        return (f"{label} is infinite for these Laplace distributions: b_p = {bp:.4g} ≤ b_q/2 = {bq / 2:.4g}, "
                "so q²/p ∝ exp((1/b_p − 2/b_q)·|x|) does not decay and is not integrable")
    s = alpha / bp + (1 - alpha) / bq
    if alpha > 1:
        cond = f"b_q = {bq:.4g} ≤ (α−1)/α·b_p = {(alpha - 1) / alpha * bp:.4g}"
    else:
        cond = f"b_p = {bp:.4g} ≤ (−α)/(1−α)·b_q = {-alpha / (1 - alpha) * bq:.4g}"
    return (f"{label} is infinite for these Laplace distributions: α/b_p + (1−α)/b_q = {s:.4g} ≤ 0 ({cond}, "
            f"α = {alpha:g}), so p^α q^(1−α) ∝ exp(−(α/b_p + (1−α)/b_q)·|x|) does not decay and "
            "∫p^α q^(1−α) diverges")


def _uniform_reason(key, p, q, alpha, label):
    _, _, logov, p_in_q, q_in_p = (bool(t) if t.dtype == torch.bool else float(t) for t in _uniform_geometry(p, q))
    sp, sq = _support(p), _support(q)
    not_p_in_q = (f"p's support {sp} is not inside q's support {sq}: q = 0 < p on {_uncovered(p, q)}")
    not_q_in_p = (f"q's support {sq} is not inside p's support {sp}: p = 0 < q on {_uncovered(q, p)}")
    if key in ("kl", "jeffreys") and not p_in_q:
        return f"{label} is infinite: {not_p_in_q}, where log(p/q) = +∞"
    if key in ("reverse_kl", "jeffreys") and not q_in_p:
        return f"{label} is infinite: {not_q_in_p}, where log(q/p) = +∞"
    if alpha is None:
        return None
    if key == "pearson" and not p_in_q:
        return f"{label} is infinite: {not_p_in_q}, where p²/q = +∞"
    if key == "neyman" and not q_in_p:
        return f"{label} is infinite: {not_q_in_p}, where q²/p = +∞"
    if alpha > 1 and not p_in_q:
        return f"{label} is infinite: {not_p_in_q}, where q^(1−α) = +∞ for α = {alpha:g} > 1"
    if alpha < 0 and not q_in_p:
        return f"{label} is infinite: {not_q_in_p}, where p^α = +∞ for α = {alpha:g} < 0"
    if 0 <= alpha < 1 and logov == -math.inf:
        integral = "∫√(pq)" if key == "bhattacharyya" else "∫p^α q^(1−α)"
        return (f"{label} is infinite: p and q have disjoint supports ({sp} and {sq}), so {integral} = 0 "
                "and its logarithm is −∞")
    return None


def closed_form_reason(key: str, p, q, params: dict, value) -> str | None:
    """Why a closed-form ``value`` of divergence ``key`` between ``p`` and ``q`` is +inf, in words;
    None when it is finite everywhere, or for a pair this module has no words for.

    Covers the closed forms of this module: Gaussian pairs (Rényi/α/Tsallis whose integral
    ∫p^α q^{1−α} diverges; Pearson χ²(p‖q) when some component of p has σ² ≥ 2σq², Neyman the
    same with p and q swapped), Laplace pairs (α/b_p + (1−α)/b_q ≤ 0) and Uniform pairs
    (support not contained, or disjoint), and says "overflows" when the integral is finite but
    the value exceeds the float range. For a batched value it explains the first infinite
    entry and names its index. Example: "Pearson χ²(p‖q) is infinite for these Normals:
    σp² = 2.25 ≥ 2σq² = 2, so p²/q ∝ ... does not decay and is not integrable".
    """
    from .registry import get

    spec = get(key)
    v = torch.as_tensor(value).detach()
    inf = torch.isinf(v) & (v > 0)
    if v.numel() == 0 or not bool(inf.any()):
        return None
    params = {k: val for k, val in (params or {}).items() if not callable(val)}
    label = spec.label(**params)
    if key not in _EXPONENT and key not in ("kl", "reverse_kl", "jeffreys"):
        return None
    alpha, kind = _EXPONENT.get(key), key
    if key in _EXPONENT and alpha is None:
        alpha = _check_alpha(f"closed_form_reason({key!r})", params.get("alpha", spec.param("alpha").default))
        if alpha == 1:  # these values are KL(p‖q) ...
            alpha, kind = None, "kl"
        elif key == "alpha" and alpha == 0:  # ... and KL(q‖p)
            alpha, kind = None, "reverse_kl"
    idx = tuple(int(i) for i in torch.nonzero(inf)[0]) if v.dim() else ()
    where = f" [batch entry {idx}]" if v.numel() > 1 else ""
    pe, qe = _entry(p, idx, v.shape), _entry(q, idx, v.shape)
    with torch.no_grad():
        gauss = (Normal, MultivariateNormal, Mixture)
        if isinstance(pe, gauss) and isinstance(qe, gauss):
            out = _gauss_reason(kind, pe, qe, alpha, label)
        elif isinstance(pe, Laplace) and isinstance(qe, Laplace):
            out = _laplace_reason(kind, pe, qe, alpha, label)
        elif isinstance(pe, Uniform) and isinstance(qe, Uniform):
            out = _uniform_reason(kind, pe, qe, alpha, label)
        else:
            out = None
    return None if out is None else out + where
