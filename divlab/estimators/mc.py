"""Monte Carlo estimators of density divergences (estimator ``"mc"``), reparameterized.

Every density divergence in the registry has one, reached as
``dl.estimate(p, q, key, estimator="mc", n=..., seed=...)``. Each draws from the model q
(reparameterized, so the value is differentiable in q's parameters), from the target p, or
from both, whichever makes the formula *exact* when one support does not contain the other
and keeps the terms bounded where possible. With ``r = p/q`` and ``ℓ = log r``; the last column
names the weights whose effective sample size and Pareto k̂ are reported (see Diagnostics):

============== ====== ========================================================= ======== ====================
key            draws  estimator                                                 bias     k̂ / ESS weights
============== ====== ========================================================= ======== ====================
kl             p      E_p[ℓ]                                                    unbiased terms ℓ
reverse_kl     q      E_q[−ℓ]                                                   unbiased terms −ℓ
jeffreys       p, q   E_p[ℓ] + E_q[−ℓ]                                          unbiased terms, worse side
js             p, q   ½E_p[log 2 − log(1 + 1/r)] + ½E_q[log 2 − log(1 + r)]     unbiased terms, worse side
hellinger      q      1 − E_q[√r]                                               unbiased terms 1 − √r
tv             p      E_p[(1 − 1/r)₊]  (= ∫(p − q)₊, terms in [0, 1])           unbiased terms (bounded)
pearson        p      E_p[r] − 1       (χ²(p‖q) = ∫p²/q − 1)                    unbiased terms r − 1
neyman         q      E_q[1/r] − 1     (χ²(q‖p) = ∫q²/p − 1)                    unbiased terms 1/r − 1
alpha          q      (1 − E_q[r^α]) / (α(1 − α)), 0 < α < 1 or α < 0           unbiased terms ∝ 1 − r^α
alpha (α > 1)  p      (E_p[r^(α−1)] − 1) / (α(α − 1)); α = 1, 0: the KLs        unbiased terms ∝ r^(α−1) − 1
tsallis        q / p  α · D_α (index α = "q"), draws as alpha; α = 1: KL(p‖q)   unbiased as alpha
skew_kl        p      E_p[−log(λ + (1 − λ)/r)]; λ = 0: KL(p‖q)                  unbiased terms
f_divergence   q, p   E_q[f(r)] + f'(∞)·P_p(q = 0) (f normalized, f'(1) = 0)    unbiased terms f(r); 1[q=0]
renyi          q      log(E_q[r^α]) / (α − 1), α < 1; α = 1: KL(p‖q)            biased   weights r^α
renyi (α > 1)  p      log(E_p[r^(α−1)]) / (α − 1)                               biased   weights r^(α−1)
bhattacharyya  q      −log E_q[√r]                                              biased   weights √r
cauchy_schwarz p, q   −log Ĉ + ½ log E_p[p] + ½ log E_q[q], Ĉ = ½(E_p[q] + E_q[p]) biased   the 4 means' weights
============== ====== ========================================================= ======== ====================

For α > 1 (alpha, tsallis, renyi) ∫p^α q^{1−α} = E_p[r^{α−1}] is averaged over draws of the
*target*: they see p's mass where q = 0 (+inf, with the reason), which draws from q cannot
(they returned −0.5 for alpha(2) between U(0, 1) and U(2, 3)); the value stays differentiable
in q's parameters through log q at the fixed draws.

Standard errors. For the unbiased ones, ``stderr`` is the sample standard deviation of the
terms over √n (summed in quadrature over independent draws from p and q). For the log of a
mean (renyi, bhattacharyya, cauchy_schwarz, and :func:`vr_bound`) it is the delta method:
SE(log m̂) ≈ SE(m̂)/m̂, i.e. the standard deviation of the normalized weights
w_i = e^{t_i}/mean(e^t) over √n, times the outer factor (1/|α − 1| for Rényi). These
estimators are consistent but biased — by Jensen, E[log m̂] ≤ log m, so the Rényi estimate
is biased *up* for α < 1 and *down* for α > 1 — with a bias of about Var(w)/(2n) = SE²/2
(for log m̂), which shrinks like 1/n while the SE shrinks like 1/√n: the delta-method SE is an
honest error bar once it is small (SE ≪ 1), and unreliable when the weights are heavy-tailed
(e.g. α ≫ 1, or q much narrower than p).
For a batch of models the reported ``stderr`` is the largest over the batch. Whether a
stderr holds at all is what the diagnostics below say.

Mixture targets. Draws from a :class:`~divlab.distributions.Mixture` target are stratified
over its components (⌈n/K⌉ from each, stratum weights w_k), so a component of weight 1e-6 counts
with weight 1e-6 exactly: plain draws miss it and gave KL = −1.0e-6 ± 1e-18 for
(1 − 1e-6)·N(0, 1) + 1e-6·N(10, 0.5²) against N(0, 1) (truth 3.5e-5).

Mixture models. A :class:`~divlab.distributions.Mixture` q has no reparameterized sampler
(the component choice is discrete). Its expectations are taken *stratified over components*:
E_q[g] = Σ_k w_k E_{q_k}[g], with ⌈n/K⌉ reparameterized draws from each component q_k. This
is unbiased, differentiable in the weights and in every component's parameters, and its SE
is √(Σ_k w_k² s_k²/m). A q with no reparameterized sampler at all (e.g. a GridDensity with
trainable heights) uses the score-function ("magic box") surrogate
t_i · exp(log q(x_i) − stopgrad log q(x_i)), whose value is t_i and whose gradient adds the
missing t_i ∇ log q term; ``info["gradient"]`` says which gradient was used.

Infinity is an answer: a draw where a needed density is 0 makes the value +inf, and
``reason`` says which density vanished where. NaN is never returned.

Diagnostics (every estimate). ``info["ess"]`` and ``info["khat"]``: the effective sample size
(Σw)²/Σw² and the Pareto k̂ (:func:`pareto_khat`: Zhang & Stephens' generalized Pareto fit with
the PSIS prior, Vehtari et al. 2024) of the weights in the table's last column. For a mean of
terms t_i (the unbiased rows) the "weights" are the terms themselves: ESS of |t_i| and k̂ the
larger of the two tails' (t and −t; posterior's ``pareto_khat(tail="both")``), because the CLT
error bar needs E[t²] < ∞ and either tail can break it (a bounded tail, such as ℓ near its
maximum, gets k̂ < 0 and does not mask the other). For a log-mean-exp the weights are e^{t_i}
(the importance weights, as in PSIS). Stratified draws weigh each term by its stratum weight;
two-sided estimators report the worse side (smallest ESS, largest k̂); a batch the worst member
(per member in ``ess_members`` / ``khat_members``). k̂ > 0.7 (:data:`KHAT_MAX`): the variance is
likely infinite, ``info["unreliable"] = True`` with ``info["warning"]`` in words, and
``Estimate.reliable`` is False (the repr shows "(unreliable: k̂=…)" instead of "± se"); the
stderr stays the computed one. k̂ is noisy: with n = 4000 draws a tail of index 1.25 is flagged
in ~90 % of runs and one of index 0.9 in ~70 %; finite-variance cases are flagged in ≲ 1 % at
n ≥ 1000 (at n = 400, ~20 % for reverse KL from N(0, 2) to the lessons' two-mode target, whose
terms pile up at a local maximum just below the tail).

Lower bound. Every divergence here is >= 0 (the registry's ``value_range``). An estimate below 0
is clamped at 0, straight-through (the value is clamped, the gradient stays the raw unbiased
estimator's); within 3 standard errors it is sampling noise (``info["note"]``), further below
it is marked unreliable with the reason (the draws miss or misweigh part of the mass), never
silently. ``info["clamped"]`` keeps the raw value.

The Rényi / VR bound. The variational Rényi bound of Li & Turner (2016),
``L_β(q) = 1/(1 − β) log E_q[(p/q)^{1−β}]``, is the same log-mean-exp of reparameterized
draws from q as our ``renyi`` estimator. With m̂ = mean_i r(x_i)^α, x_i ~ q:

    renyi mc (α)    = log m̂ / (α − 1)             our D^R_α(p‖q), target first
    vr_bound (β)    = log m̂ / α,   α = 1 − β       Li & Turner's L_β = −D^R_β(q‖p) (model first)
                    = −β/(1 − β) · renyi mc (α = 1 − β)

(the population identity is the skew symmetry D^R_β(q‖p) = β/(1 − β)·D^R_{1−β}(p‖q)).
So maximizing the VR bound in β is minimizing our ``renyi`` at α = 1 − β; see :func:`vr_bound`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..distributions import Distribution, Mixture
from ..distributions.base import rng
from .result import Estimate

__all__ = ["mc_estimate", "vr_bound", "MC_FORMULAS", "DEFAULT_N", "register", "KHAT_MAX", "pareto_khat",
           "psis_diagnostics", "term_diagnostics"]

DEFAULT_N = 4096
LOG2 = math.log(2.0)


# --------------------------------------------------------------------------- draws
@dataclass
class _Draws:
    """Draws arranged as K strata of m draws each (component-major), weights W (K, *batch)."""

    x: torch.Tensor  # (K*m, *batch?, *event)
    W: torch.Tensor | None  # (K, *batch) stratum weights summing to 1; None: one plain stratum
    m: int
    gradient: str
    #: log-density of q at x for the score-function surrogate (None: not needed)
    log_q_for_score: torch.Tensor | None = None
    #: ("logw", log importance weights (N, B)) of a log-mean-exp over these draws (diagnostics)
    logw: tuple | None = None

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def _target_mixture(p: Distribution) -> Mixture | None:
    """The unbatched Mixture behind a target (itself, or the ``base`` of a wrapper such as the
    fitting engine's column view), else None."""
    base = getattr(p, "base", p)
    if isinstance(base, Mixture) and not tuple(base.batch_shape) and len(base.components) > 1:
        return base
    return None


def _draw_p(p: Distribution, n: int, seed) -> _Draws:
    """Draws from the fixed target. A Mixture target is stratified over its components (⌈n/K⌉
    draws from each, stratum weights w_k), so a component of weight 1e-6 is represented with
    weight 1e-6 exactly instead of being missed by n ≪ 1e6 draws."""
    mix = _target_mixture(p)
    if mix is not None:
        K = len(mix.components)
        m = max(2, -(-n // K))
        ev = tuple(mix.event_shape)
        with rng(seed, mix.device):
            xs = [(c.rsample(m) if c.has_rsample else c.sample(m)).detach().reshape((m,) + ev)
                  for c in mix.components]
        return _Draws(x=torch.cat(xs, 0), W=mix.weights.detach(), m=m,
                      gradient="draws from p (fixed target), stratified over its mixture components")
    x = p.rsample(n, seed=seed) if p.has_rsample else p.sample(n, seed=seed)
    return _Draws(x=x, W=None, m=n, gradient="draws from p (fixed target)")


def _draw_q(q: Distribution, n: int, seed) -> _Draws:
    if q.has_rsample:
        return _Draws(x=q.rsample(n, seed=seed), W=None, m=n, gradient="reparameterized")
    if isinstance(q, Mixture) and all(c.has_rsample for c in q.components):
        K = len(q.components)
        m = max(2, -(-n // K))
        batch = tuple(q.batch_shape)
        ev = tuple(q.event_shape)
        with rng(seed, q.device):
            xs = [c.rsample(m).expand((m,) + batch + ev) for c in q.components]
        W = q.weights.expand(batch + (K,)).movedim(-1, 0)
        return _Draws(x=torch.cat(xs, 0), W=W, m=m,
                      gradient="stratified over mixture components, reparameterized within each")
    x = q.sample(n, seed=seed)
    return _Draws(x=x, W=None, m=n, gradient="score function (q has no reparameterized sampler)")


def _logs(p, q, dr: _Draws, ref: torch.dtype):
    """(log p, log q) at the draws, in the dtype of p, shape (N, *batch). Draws from an
    unbatched distribution get singleton batch dims, so a batch of models shares them."""
    x = dr.x
    ev = len(p.event_shape)
    xb = x.dim() - 1 - ev  # batch dims the draws carry
    nb = max(len(p.batch_shape), len(q.batch_shape))
    if nb > xb:
        x = x.reshape((x.shape[0],) + (1,) * (nb - xb) + tuple(x.shape[1:]))
    lp = p.log_prob(x.to(device=p.device, dtype=p.dtype)).to(ref)
    lq = q.log_prob(x.to(device=q.device, dtype=q.dtype)).to(device=lp.device, dtype=ref)
    return torch.broadcast_tensors(lp, lq)


def _safe_lr(lp, lq):
    """ℓ = log p − log q where both are finite; the masks say where p = 0 and where q = 0."""
    ok = torch.isfinite(lp) & torch.isfinite(lq)
    lr = torch.where(ok, lp, torch.zeros_like(lp)) - torch.where(ok, lq, torch.zeros_like(lq))
    return lr, ok, ~torch.isfinite(lp), ~torch.isfinite(lq)


def _apply_score(terms, dr: _Draws, lq, log_space=False):
    """Add the score-function term for non-reparameterized q draws (value unchanged)."""
    if dr.gradient.startswith("score") and lq.requires_grad:
        d = torch.where(torch.isfinite(lq), lq - lq.detach(), torch.zeros_like(lq))
        if log_space:
            return terms + d
        fin = torch.isfinite(terms.detach())
        base = torch.where(fin, terms.detach(), torch.zeros_like(terms)).mean(0, keepdim=True)
        return terms + torch.where(fin, terms.detach() - base, torch.zeros_like(terms)) * d
    return terms


# --------------------------------------------------------------------------- reductions
def _strata(t: torch.Tensor, dr: _Draws):
    K = 1 if dr.W is None else dr.W.shape[0]
    return t.reshape((K, dr.m) + tuple(t.shape[1:]))


def _W(dr: _Draws, like: torch.Tensor):
    if dr.W is None:
        return torch.ones((1,) + (1,) * (like.dim() - 2), dtype=like.dtype, device=like.device)
    W = dr.W.to(device=like.device, dtype=like.dtype)
    return W.reshape(W.shape + (1,) * (like.dim() - 1 - W.dim()))


def _mean_var(terms: torch.Tensor, dr: _Draws):
    """Stratified mean Σ_k W_k mean_k(t) (differentiable) and its variance (detached).

    Zero-weight strata are masked before any product, so an infinite term there cannot turn
    into 0·inf = NaN. Non-finite terms are left out of the variance (the value is then
    infinite and the caller reports that instead of an error bar)."""
    t = _strata(terms, dr)
    W = _W(dr, t)
    live = (W > 0).expand(t.shape[:1] + t.shape[2:]).unsqueeze(1).expand_as(t)
    t = torch.where(live, t, torch.zeros_like(t))
    value = (W * t.mean(1)).sum(0)
    td = t.detach()
    fin = torch.isfinite(td)
    tf = torch.where(fin, td, torch.zeros_like(td))
    var = (W.detach() ** 2 * tf.var(1) / dr.m).sum(0) if dr.m > 1 else torch.zeros_like(value.detach())
    return value, var


def _log_mean_exp(logt: torch.Tensor, dr: _Draws):
    """log Σ_k W_k mean_k(e^t) (differentiable) and the delta-method variance of it (detached):
    Var(m̂)/m̂², computed from the normalized weights e^{t − log m̂} (no overflow)."""
    t = _strata(logt, dr)
    W = _W(dr, t)
    logW = torch.where(W > 0, torch.log(torch.where(W > 0, W, torch.ones_like(W))), torch.full_like(W, -math.inf))
    lme = torch.logsumexp((t + logW.unsqueeze(1) - math.log(dr.m)).reshape((-1,) + tuple(t.shape[2:])), dim=0)
    with torch.no_grad():
        ok = torch.isfinite(lme)
        shift = torch.where(ok, lme, torch.zeros_like(lme))
        w = torch.exp(t.detach() - shift)
        w = torch.where(torch.isfinite(w), w, torch.zeros_like(w))
        var = (W.detach() ** 2 * w.var(1) / dr.m).sum(0) if dr.m > 1 else torch.zeros_like(lme.detach())
        var = torch.where(ok, var, torch.zeros_like(var))
    return lme, var


def _max_se(var) -> float:
    v = var.detach()
    v = v[torch.isfinite(v)]
    return float(v.clamp_min(0).sqrt().max()) if v.numel() else 0.0


def _inf_where(terms, mask):
    """+inf where ``mask`` (a needed density vanished), ``terms`` elsewhere. The terms there were
    computed from masked (finite) log-ratios, so no NaN reaches the gradient."""
    return torch.where(mask, torch.full_like(terms, math.inf), terms)


# --------------------------------------------------------------------------- diagnostics
#: k̂ above this: the importance weights' tail is too heavy for the error bar (Vehtari et al.)
KHAT_MAX = 0.7


def _flat_strata(v: torch.Tensor, dr: _Draws, log: bool) -> torch.Tensor:
    """Per-draw values (N, B): ``v`` (N, *batch) scaled by the stratum weight W_k (added as
    log W_k when ``log``; an empty stratum's draws are left out), flattened over the batch."""
    t = _strata(v.detach(), dr)
    if dr.W is not None:
        W = _W(dr, t).unsqueeze(1)
        if log:
            t = t + torch.where(W > 0, torch.log(torch.where(W > 0, W, torch.ones_like(W))), torch.full_like(W, -math.inf))
        else:
            t = torch.where(W > 0, t * W, torch.full_like(t * W, math.nan))
    return t.reshape((t.shape[0] * t.shape[1], -1))


def _w_linear(terms: torch.Tensor, dr: _Draws):
    """Diagnostics input of a mean of terms: the terms themselves, W_k·t_i (both tails count)."""
    with torch.no_grad():
        return ("terms", _flat_strata(terms, dr, log=False))


def _w_log(logt: torch.Tensor, dr: _Draws):
    """Diagnostics input of a log-mean-exp: the log weights t_i + log W_k (weights e^{t_i})."""
    with torch.no_grad():
        return ("logw", _flat_strata(logt, dr, log=True))


def _tail_len(N: int) -> int:
    return int(math.ceil(min(0.2 * N, 3 * math.sqrt(N))))


def _np(v) -> np.ndarray:
    a = v.detach().to(device="cpu", dtype=torch.float64).numpy() if isinstance(v, torch.Tensor) else np.asarray(v, np.float64)
    return a[:, None] if a.ndim == 1 else a


def pareto_khat(v) -> np.ndarray:
    """Pareto k̂ of the right tail of ``v`` (N, B), column by column (−inf or NaN: left out).

    A generalized Pareto distribution is fitted to the exceedances of the M largest values over
    the (M+1)-th largest by the empirical-Bayes estimator of Zhang & Stephens (2009) with the
    weakly informative prior of PSIS (Vehtari, Simpson, Gelman, Yao & Gabry 2024, "Pareto
    smoothed importance sampling"; as arviz's ``_gpdfit``): a grid of 30 + ⌊√M⌋ values of b,
    each weighted by its profile likelihood, then k̂ = mean log(1 − b̄x) shrunk towards ½ with
    weight 10. M = ⌈min(N/5, 3√N)⌉ as in PSIS; where that k̂ exceeds 0.7, k̂ is the *smallest*
    of the fits on the top M, ⌈M/2⌉ and ⌈M/4⌉ values (those with at least 10): a pile-up of values just below the
    threshold (a critical value of the summand, e.g. log q/p between the two modes of a mixture
    target, hit by many draws) makes a single fit look heavy although the tail beyond it is
    light, while a truly heavy tail is heavy at every depth. (This costs some power: ξ = 0.9
    tails are flagged in ~2/3 of the runs at N = 4000, ξ = 1.25 in ~90 %.)
    k̂ < ½: finite variance; k̂ > 0.7 (:data:`KHAT_MAX`): the variance is likely infinite and a
    CLT error bar does not hold. −inf when fewer than 5 of the largest values exceed the
    threshold (a flat, bounded tail)."""
    v = _np(v)
    M = _tail_len(int(v.shape[0]))
    out = _gpd_khat(v, M)
    for m in (-(-M // 2), -(-M // 4)):
        if m >= 10 and bool((out > KHAT_MAX).any()):  # the guard only matters for a flag
            out = np.minimum(out, _gpd_khat(v, m))
    return out


def _gpd_khat(v: np.ndarray, M: int) -> np.ndarray:
    """Zhang–Stephens / PSIS k̂ of the exceedances of the top M of each column of ``v`` (N, B)
    (numpy: these are small arrays, and torch's per-op overhead would dominate)."""
    N, B = v.shape
    khat = np.full(B, -np.inf)
    if M < 5 or N < M + 1:
        return khat
    with np.errstate(all="ignore"):
        present = np.isfinite(v) | np.isposinf(v)
        floor = np.where(present, v, np.inf).min(0)
        v = np.where(present, v, floor)
        top = -np.sort(-np.partition(v, N - M - 1, axis=0)[N - M - 1:], axis=0)  # the M+1 largest, descending
        x = (top[:M] - top[M])[::-1]  # ascending exceedances (M, B)
        valid = np.isfinite(x) & (x > 0)
        nv = valid.sum(0)
        ok = (nv >= 5) & np.isfinite(top[M])
        if not ok.any():
            return khat
        x, valid, nv = x[:, ok], valid[:, ok], nv[ok]
        nf = nv.astype(np.float64)
        x = np.where(valid, x, 0.0)  # invalid ones are zeros at the start
        x = x / np.maximum(x[-1:], np.finfo(np.float64).tiny)  # scale-free: the largest is 1
        x_safe = np.where(valid, x, 1.0)
        qi = (M - nv) + np.floor(nf / 4 + 0.5).astype(np.int64) - 1  # first quartile of the valid ones
        xq = np.take_along_axis(x, qi[None, :], 0)[0]
        xmax = x[-1]
        m_est = 30 + int(math.sqrt(M))
        j = np.arange(1, m_est + 1, dtype=np.float64)
        b = (1 - np.sqrt(m_est / (j - 0.5)))[:, None] / (3 * xq[None, :]) + 1 / xmax[None, :]  # (m_est, B')
        lg = np.log1p(-b[:, None, :] * x_safe[None, :, :])  # (m_est, M, B')
        k = np.where(valid[None], lg, 0.0).sum(1) / nf[None, :]
        ll = nf[None, :] * (np.log(-(b / k)) - k - 1)
        ll = np.where(np.isfinite(ll), ll, -np.inf)
        w = np.exp(ll - ll.max(0, keepdims=True))
        w = w / w.sum(0, keepdims=True)
        w = np.where(w >= 10 * np.finfo(np.float64).eps, w, 0.0)
        w = w / w.sum(0, keepdims=True)
        bpost = (b * w).sum(0)
        kpost = np.where(valid, np.log1p(-bpost[None, :] * x_safe), 0.0).sum(0) / nf
        kpost = (nf * kpost + 10 * 0.5) / (nf + 10)
    khat[ok] = np.where(np.isfinite(kpost), kpost, np.inf)
    return khat


def psis_diagnostics(logw):
    """(ESS, k̂) of importance weights given as log weights ``logw`` (N, B) (−inf: weight 0),
    column by column (numpy arrays (B,)): ESS = (Σw)²/Σw² (N when every weight is 0) and the
    Pareto k̂ of the weights' right tail (:func:`pareto_khat`), as in PSIS."""
    lw = _np(logw)
    N = lw.shape[0]
    with np.errstate(all="ignore"):
        lw = np.where(np.isnan(lw) | np.isposinf(lw), -np.inf, lw)
        mx = lw.max(0)
        alive = np.isfinite(mx)
        w = np.exp(lw - np.where(alive, mx, 0.0))
        ess = np.where(alive, w.sum(0) ** 2 / (w * w).sum(0), float(N))
        khat = pareto_khat(w)
    return ess, np.where(alive, khat, -np.inf)


def term_diagnostics(terms):
    """(ESS, k̂) of the terms t (N, B) of a plain mean (NaN / ±inf: left out), numpy (B,): ESS
    of the magnitudes |t| and the larger of the Pareto k̂ of the two tails of t (right: t,
    left: −t), as recommended for a general Monte Carlo mean by Vehtari et al. (2024;
    posterior's ``pareto_khat(tail = "both")``). A bounded tail (e.g. log r near its maximum)
    gets a negative k̂ and does not mask the other."""
    t = _np(terms)
    N = t.shape[0]
    with np.errstate(all="ignore"):
        fin = np.isfinite(t)
        a = np.where(fin, np.abs(t), 0.0)
        a = a / np.maximum(a.max(0), np.finfo(np.float64).tiny)
        s1, s2 = a.sum(0), (a * a).sum(0)
        ess = np.where(s2 > 0, s1 * s1 / s2, float(N))
        tt = np.where(fin, t, np.nan)
        return ess, np.maximum(pareto_khat(tt), pareto_khat(-tt))


def _diagnose(ws: list, B: int):
    """Combine the diagnostics inputs of one estimate (one per side / per mean): per member
    the smallest ESS and the largest k̂ (numpy arrays (B,))."""
    ess = khat = None
    for kind, v in ws:
        e, k = psis_diagnostics(v) if kind == "logw" else term_diagnostics(v)
        e, k = np.broadcast_to(e, (B,)), np.broadcast_to(k, (B,))
        ess = e if ess is None else np.minimum(ess, e)
        khat = k if khat is None else np.maximum(khat, k)
    return ess, khat


# --------------------------------------------------------------------------- formulas
# Each formula: (p, q, n, seed, **params) -> (value, var, n_used, reason_if_inf, info)

def _one_side(side, p, q, n, seed):
    dr = _draw_p(p, n, seed) if side == "p" else _draw_q(q, n, seed)
    lp, lq = _logs(p, q, dr, p.dtype)
    return dr, lp, lq


def _linear(side, p, q, n, seed, term_fn, inf_mask_fn, reason):
    dr, lp, lq = _one_side(side, p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    terms = _inf_where(term_fn(lr), inf_mask_fn(p0, q0))
    terms = torch.where(p0 & q0, torch.zeros_like(terms), terms)  # both 0 at a draw: contributes nothing
    if side == "q":
        terms = _apply_score(terms, dr, lq)
    value, var = _mean_var(terms, dr)
    return value, var, dr.n, reason, {"draws": side, "gradient": dr.gradient, "_w": [_w_linear(terms, dr)]}


_REASON_Q0_P = "a draw from the target p landed where the model q = 0"
_REASON_P0_Q = "a draw from the model q landed where the target p = 0"


def _never(p0, q0):
    return torch.zeros_like(p0)


def _f_kl(p, q, n, seed):
    return _linear("p", p, q, n, seed, lambda lr: lr, lambda p0, q0: q0 & ~p0, "KL(p‖q) is infinite: " + _REASON_Q0_P)


def _f_reverse_kl(p, q, n, seed):
    return _linear("q", p, q, n, seed, lambda lr: -lr, lambda p0, q0: p0 & ~q0,
                   "KL(q‖p) is infinite: " + _REASON_P0_Q)


def _two_sided(p, q, n, seed, fp, fq, maskp, maskq, reason):
    vp, varp, np_, _, ip = _linear("p", p, q, n, seed, fp, maskp, reason)
    vq, varq, nq, _, iq = _linear("q", p, q, n, None if seed is None else seed + 1, fq, maskq, reason)
    return vp + vq, varp + varq, np_ + nq, reason, {"draws": "p and q", "gradient": iq["gradient"],
                                                    "_w": ip["_w"] + iq["_w"]}


def _f_jeffreys(p, q, n, seed):
    return _two_sided(p, q, n, seed, lambda lr: lr, lambda lr: -lr, lambda p0, q0: q0 & ~p0, lambda p0, q0: p0 & ~q0,
                      "Jeffreys is infinite: a draw from one distribution landed where the other is 0")


def _js_fix(p, q, n, seed):
    # the p0/q0 draws: term limit ½ log 2 on the side whose draw found the other density 0
    vp_dr, lp, lq = _one_side("p", p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    tp = torch.where(q0, torch.full_like(lr, 0.5 * LOG2), 0.5 * (LOG2 - torch.nn.functional.softplus(-lr)))
    vp, varp = _mean_var(tp, vp_dr)
    dq, lp2, lq2 = _one_side("q", p, q, n, None if seed is None else seed + 1)
    lr2, ok2, p02, q02 = _safe_lr(lp2, lq2)
    tq = torch.where(p02, torch.full_like(lr2, 0.5 * LOG2), 0.5 * (LOG2 - torch.nn.functional.softplus(lr2)))
    tq = _apply_score(tq, dq, lq2)
    vq, varq = _mean_var(tq, dq)
    return vp + vq, varp + varq, vp_dr.n + dq.n, "", {"draws": "p and q", "gradient": dq.gradient,
                                                      "_w": [_w_linear(tp, vp_dr), _w_linear(tq, dq)]}


def _hellinger(p, q, n, seed):
    dr, lp, lq = _one_side("q", p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    t = torch.where(p0, torch.ones_like(lr), -torch.expm1(0.5 * lr))
    t = _apply_score(t, dr, lq)
    value, var = _mean_var(t, dr)
    return value, var, dr.n, "", {"draws": "q", "gradient": dr.gradient, "_w": [_w_linear(t, dr)]}


def _tv(p, q, n, seed):
    # ∫(p − q)₊ = E_p[(1 − q/p)₊]: terms in [0, 1]; a q = 0 draw contributes 1
    dr, lp, lq = _one_side("p", p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    t = torch.where(q0, torch.ones_like(lr), torch.relu(-torch.expm1(-lr)))
    value, var = _mean_var(t, dr)
    return value, var, dr.n, "", {"draws": "p", "gradient": dr.gradient, "_w": [_w_linear(t, dr)]}


def _f_pearson(p, q, n, seed):
    return _linear("p", p, q, n, seed, torch.expm1, lambda p0, q0: q0 & ~p0,
                   "χ²(p‖q) is infinite: " + _REASON_Q0_P)


def _f_neyman(p, q, n, seed):
    return _linear("q", p, q, n, seed, lambda lr: torch.expm1(-lr), lambda p0, q0: p0 & ~q0,
                   "χ²(q‖p) is infinite: " + _REASON_P0_Q)


def _f_alpha(p, q, n, seed, alpha):
    a = float(alpha)
    if a == 1.0:
        return _f_kl(p, q, n, seed)
    if a == 0.0:
        return _f_reverse_kl(p, q, n, seed)
    if a > 1.0:
        # ∫p^α q^{1−α} = E_p[r^{α−1}] from draws of the target: they see p's mass where q = 0
        # (+inf there), which draws from q cannot; differentiable in q's parameters through log q
        dr, lp, lq = _one_side("p", p, q, n, seed)
        lr, ok, p0, q0 = _safe_lr(lp, lq)
        t = torch.expm1((a - 1) * lr) / (a * (a - 1))
        t = torch.where(p0 & ~q0, torch.full_like(t, -1.0 / (a * (a - 1))), t)  # r = 0 (measure zero)
        t = torch.where(p0 & q0, torch.zeros_like(t), t)
        over = ~torch.isfinite(t.detach())
        t = _inf_where(t, (q0 & ~p0) | over)
        value, var = _mean_var(t, dr)
        why = (f"D_α (α={a:g}) is infinite: " + (
            _REASON_Q0_P + " (for α > 1, ∫p^α q^{1−α} diverges where q = 0)" if bool((q0 & ~p0).any())
            else "(p/q)^(α−1) overflowed at a draw from p"))
        return value, var, dr.n, why, {"draws": "p", "gradient": dr.gradient, "_w": [_w_linear(t, dr)]}
    dr, lp, lq = _one_side("q", p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    t = -torch.expm1(a * lr) / (a * (1 - a))
    if a > 0:  # r = 0 at a p = 0 draw: r^α = 0, term 1/(α(1−α))
        t = torch.where(p0, torch.full_like(t, 1.0 / (a * (1 - a))), t)
    else:  # r^α = inf at a p = 0 draw
        t = _inf_where(t, p0 & ~q0)
    t = torch.where(~torch.isfinite(t.detach()) & ~(p0 & ~q0), torch.full_like(t, math.inf), t)
    t = _apply_score(t, dr, lq)
    value, var = _mean_var(t, dr)
    why = (f"D_α (α={a:g}) is infinite: " + (_REASON_P0_Q if a < 0 else "(p/q)^α overflowed at a draw from q"))
    return value, var, dr.n, why, {"draws": "q", "gradient": dr.gradient, "_w": [_w_linear(t, dr)]}


def _f_tsallis(p, q, n, seed, alpha):
    a = float(alpha)
    v, var, n_, why, info = _f_alpha(p, q, n, seed, a)
    return a * v, a * a * var, n_, why.replace("D_α", "Tsallis D_q"), info


def _f_skew_kl(p, q, n, seed, lam):
    lam = float(lam)
    if lam == 0.0:
        return _f_kl(p, q, n, seed)
    dr, lp, lq = _one_side("p", p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    # −log(λ + (1 − λ)/r) = −logaddexp(log λ, log(1 − λ) − ℓ); q = 0 draw: −log λ (finite)
    t = -torch.logaddexp(torch.full_like(lr, math.log(lam)), math.log1p(-lam) - lr)
    t = torch.where(q0, torch.full_like(t, -math.log(lam)), t)
    value, var = _mean_var(t, dr)
    return value, var, dr.n, "", {"draws": "p", "gradient": dr.gradient, "_w": [_w_linear(t, dr)]}


def _f_generic(p, q, n, seed, f):
    """E_q[f(r)] over draws of q (p = 0 there: f(0)), plus f'(∞)·P_p(q = 0) over draws of p:
    the mass of p where q = 0, which draws from q cannot see."""
    from ..divergences.fdiv import generic_fdivergence

    fd = generic_fdivergence(f, check=False)
    dr, lp, lq = _one_side("q", p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    t = fd.core(lr, torch.zeros_like(lr))  # q f(p/q) at q = 1: f(r)
    f0 = float(fd.f0()) if bool(p0.any()) else 0.0
    t = torch.where(p0, torch.full_like(t, f0) if math.isfinite(f0) else torch.full_like(t, math.inf), t)
    t = _apply_score(t, dr, lq)
    value, var = _mean_var(t, dr)
    # p's mass where q = 0: the indicator over draws of p, times f'(∞)
    dp, lp2, lq2 = _one_side("p", p, q, n, None if seed is None else seed + 1)
    miss = torch.isfinite(lp2) & ~torch.isfinite(lq2)
    fpi = float(fd.fprime_inf()) if bool(miss.any()) else 0.0
    t2 = torch.where(miss, torch.full_like(lp2, fpi if math.isfinite(fpi) else math.inf), torch.zeros_like(lp2))
    v2, var2 = _mean_var(t2, dp)
    value = value + v2
    why = ("D_f is infinite: f'(∞) = ∞ and " + _REASON_Q0_P if bool(torch.isinf(v2.detach()).any())
           else "D_f is infinite: f(0) = ∞ and " + _REASON_P0_Q)
    return (value, var + var2, dr.n + dp.n, why,
            {"draws": "q (and p, for p's mass where q = 0)", "gradient": dr.gradient,
             "_w": [_w_linear(t, dr), _w_linear(t2, dp)]})


def _log_chernoff_q(p, q, n, seed, a):
    """log E_q[r^a] (log-mean-exp) and its delta-method variance; also the draws' info."""
    dr, lp, lq = _one_side("q", p, q, n, seed)
    lr, ok, p0, q0 = _safe_lr(lp, lq)
    t = a * lr
    t = torch.where(p0, torch.full_like(t, -math.inf if a > 0 else math.inf), t)
    t = _apply_score(t, dr, lq, log_space=True)
    lme, var = _log_mean_exp(t, dr)
    dr.logw = _w_log(t, dr)
    return lme, var, dr


def _f_renyi(p, q, n, seed, alpha):
    a = float(alpha)
    if a == 1.0:
        return _f_kl(p, q, n, seed)
    info = {"gradient": None, "bias": "log of a mean: consistent, biased O(1/n)"}
    if a > 1.0:
        # log ∫p^α q^{1−α} = log E_p[r^{α−1}] from draws of the target (they see q = 0: +inf)
        dr, lp, lq = _one_side("p", p, q, n, seed)
        lr, ok, p0, q0 = _safe_lr(lp, lq)
        t = (a - 1) * lr
        t = torch.where(q0 & ~p0, torch.full_like(t, math.inf), t)
        t = torch.where(p0, torch.full_like(t, -math.inf), t)
        lme, var = _log_mean_exp(t, dr)
        value = lme / (a - 1)
        why = (f"Rényi D_α (α={a:g}) is infinite: " + _REASON_Q0_P
               + " (for α > 1, ∫p^α q^{1−α} diverges where q = 0)")
        return (value, var / (a - 1) ** 2, dr.n, why,
                {**info, "draws": "p", "gradient": dr.gradient, "_w": [_w_log(t, dr)]})
    lme, var, dr = _log_chernoff_q(p, q, n, seed, a)
    value = lme / (a - 1)
    # no draw from q where p > 0: ∫p^α q^{1−α} is 0 (α < 1) -> +inf
    none = torch.isneginf(lme.detach())
    value = torch.where(none, torch.full_like(value, math.inf), value)
    return (value, var / (a - 1) ** 2, dr.n,
            f"Rényi D_α (α={a:g}) is infinite: no draw from the model q landed where the target p > 0 "
            "(the supports do not overlap, as far as n draws can tell)",
            {**info, "draws": "q", "gradient": dr.gradient, "_w": [dr.logw]})


def _f_bhattacharyya(p, q, n, seed):
    lme, var, dr = _log_chernoff_q(p, q, n, seed, 0.5)
    return (-lme, var, dr.n, "Bhattacharyya distance is infinite: no draw from q landed where p > 0 "
            "(disjoint supports, as far as n draws can tell)",
            {"draws": "q", "gradient": dr.gradient, "bias": "log of a mean: consistent, biased O(1/n)",
             "_w": [dr.logw]})


def _f_cauchy_schwarz(p, q, n, seed):
    """D_CS = −log ∫pq + ½ log ∫p² + ½ log ∫q², with ∫p² = E_p[p], ∫q² = E_q[q] and
    ∫pq = ½(E_p[q] + E_q[p]) from independent draws of p and q. Delta method over the
    per-draw influence terms: ψ(x) = ½p(x)/A − ½q(x)/C for x ~ p, φ(y) = ½q(y)/B − ½p(y)/C
    for y ~ q (A = ∫p², B = ∫q², C = ∫pq)."""
    dp, lp_p, lq_p = _one_side("p", p, q, n, seed)
    dq, lp_q, lq_q = _one_side("q", p, q, n, None if seed is None else seed + 1)
    lq_q_s = _apply_score(lq_q, dq, lq_q, log_space=True)  # terms log q(y) ~ q: score for log-space
    lp_q_s = _apply_score(lp_q, dq, lq_q, log_space=True)
    logA, _ = _log_mean_exp(lp_p, dp)
    logB, _ = _log_mean_exp(lq_q_s, dq)
    logC1, _ = _log_mean_exp(lq_p, dp)
    logC2, _ = _log_mean_exp(lp_q_s, dq)
    logC = torch.logaddexp(logC1, logC2) - LOG2
    value = -logC + 0.5 * logA + 0.5 * logB
    with torch.no_grad():
        def infl(l_self, l_other, lS, lC):
            a = torch.exp(l_self - lS)
            c = torch.where(torch.isfinite(lC), torch.exp(l_other - lC), torch.zeros_like(l_other))
            return 0.5 * a - 0.5 * c

        psi = infl(lp_p.detach(), lq_p.detach(), logA.detach(), logC.detach())
        phi = infl(lq_q.detach(), lp_q.detach(), logB.detach(), logC.detach())
        _, varp = _mean_var(torch.where(torch.isfinite(psi), psi, torch.zeros_like(psi)), dp)
        _, varq = _mean_var(torch.where(torch.isfinite(phi), phi, torch.zeros_like(phi)), dq)
    none = torch.isneginf(logC.detach())
    value = torch.where(none, torch.full_like(value, math.inf), value)
    return (value, varp + varq, dp.n + dq.n,
            "Cauchy–Schwarz is infinite: ∫pq = 0 as far as the draws can tell (no draw of either "
            "distribution landed where the other has density)",
            {"draws": "p and q", "gradient": dq.gradient, "bias": "log of means: consistent, biased O(1/n)",
             "_w": [_w_log(lp_p, dp), _w_log(lq_p, dp), _w_log(lq_q, dq), _w_log(lp_q, dq)]})


MC_FORMULAS = {
    "kl": _f_kl, "reverse_kl": _f_reverse_kl, "jeffreys": _f_jeffreys, "js": _js_fix,
    "hellinger": _hellinger, "tv": _tv, "pearson": _f_pearson, "neyman": _f_neyman,
    "alpha": _f_alpha, "tsallis": _f_tsallis, "skew_kl": _f_skew_kl, "f_divergence": _f_generic,
    "renyi": _f_renyi, "bhattacharyya": _f_bhattacharyya, "cauchy_schwarz": _f_cauchy_schwarz,
}
#: the divergences whose mc estimate is a log of a mean (consistent, biased O(1/n))
BIASED = ("renyi", "bhattacharyya", "cauchy_schwarz")
#: what the reported ESS and Pareto k̂ are of (``info["weights"]``): for a mean, the averaged
#: terms t (both tails; ESS of |t|); for a log-mean-exp, the weights e^t (module docstring)
WEIGHTS = {
    "kl": "terms log r at draws from p", "reverse_kl": "terms −log r at draws from q",
    "jeffreys": "terms ±log r at draws from p and from q (the worse side)",
    "js": "the JS terms at draws from p and from q (the worse side)",
    "hellinger": "terms 1 − √r at draws from q", "tv": "terms (1 − 1/r)₊ at draws from p (bounded)",
    "pearson": "terms r − 1 at draws from p", "neyman": "terms 1/r − 1 at draws from q",
    "alpha": "terms ∝ 1 − r^α at draws from q (α < 1); ∝ r^(α−1) − 1 at draws from p (α > 1)",
    "tsallis": "as alpha", "skew_kl": "terms −log(λ + (1 − λ)/r) at draws from p",
    "f_divergence": "terms f(r) at draws from q; f'(∞)·1[q = 0] at draws from p",
    "renyi": "weights r^α at draws from q (α < 1); r^(α−1) at draws from p (α > 1)",
    "bhattacharyya": "weights √r at draws from q",
    "cauchy_schwarz": "weights p and q at draws from p, q and p at draws from q (the worst of the four means)",
}


# --------------------------------------------------------------------------- front
def _check(owner, p, q, n, options):
    if options:
        raise ValueError(f"{owner}: unknown option {sorted(options)[0]!r} (the mc estimator takes none)")
    for name, d in (("p", p), ("q", q)):
        if not isinstance(d, Distribution) or not getattr(d, "has_density", True):
            raise ValueError(f"{owner}: the mc estimator needs densities, and {name} = {type(d).__name__} has none")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise ValueError(f"{owner}(n={n!r}): n must be an integer >= 2")
    if p.batch_shape:
        raise ValueError(f"{owner}: the target p has batch_shape {tuple(p.batch_shape)}; "
                         "batch the model q instead")
    return n or DEFAULT_N


def _lower_bound(key: str) -> float:
    from ..divergences.registry import _REGISTRY

    spec = _REGISTRY.get(key)
    return float(spec.value_range[0]) if spec is not None else 0.0


def _fmt(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 1e4 else f"{x:.3g}"


def _judge(value: torch.Tensor, var: torch.Tensor, ws: list, lo: float | None, what: str, n: int):
    """The diagnostics of an estimate: ESS and k̂ per member; members whose finite value is
    unreliable (k̂ > :data:`KHAT_MAX`, or below the lower bound ``lo`` by more than 3 standard
    errors) with the reasons in words; and the value clamped at ``lo`` (straight-through: the
    gradient stays the unbiased raw estimator's). Returns (value, info additions)."""
    v = value.detach()
    B = max(1, v.numel())
    ess, khat = _diagnose(ws, B) if ws else (np.full(B, float(n)), np.full(B, -np.inf))
    ess, khat = torch.from_numpy(np.array(ess, dtype=np.float64)), torch.from_numpy(np.array(khat, dtype=np.float64))
    vf = v.reshape(-1).to(torch.float64).cpu()
    se = var.detach().reshape(-1).to(torch.float64).cpu().clamp_min(0).sqrt().expand(vf.shape)
    fin = torch.isfinite(vf)
    heavy = fin & (khat > KHAT_MAX)
    out: dict = {}
    sel = fin if fin.any() else torch.ones_like(fin)  # an infinite member has its reason instead
    out["ess"] = float(ess[sel].min())
    out["khat"] = float(khat[sel].max())
    if B > 1:
        out["ess_members"] = [float(e) for e in ess]
        out["khat_members"] = [float(k) for k in khat]
    warnings = []
    if heavy.any():
        kmax = float(khat[heavy].max())
        warnings.append(f"the Pareto k̂ of the weights is {_fmt(kmax)} > {KHAT_MAX}: the variance "
                        f"is likely infinite and the error bar does not hold"
                        + (f" ({int(heavy.sum())} of {B} members)" if B > 1 else ""))
    if lo is not None:
        below = fin & (vf < lo)
        if below.any():
            far = below & (vf < lo - 3 * se)
            raw = float(vf[below].min())
            out["clamped"] = {"raw_min": raw, "members": int(below.sum()), "bound": lo}
            if far.any():
                rf = float(vf[far].min())
                warnings.append(f"the estimate {_fmt(rf)} is below {_fmt(lo)}, the lower bound of {what}, by more "
                                f"than 3 standard errors: the draws miss or misweigh part of the mass, so the "
                                f"error bar does not hold; the value is clamped at {_fmt(lo)}")
            else:
                out["note"] = (f"the estimate {_fmt(raw)} is below {_fmt(lo)}, the lower bound of {what}, by less "
                               f"than 3 standard errors (sampling noise): the value is clamped at {_fmt(lo)} "
                               "(its gradient is the raw estimate's)")
            vd = value.detach()
            lift = torch.where(torch.isfinite(vd) & (vd < lo), lo - torch.where(torch.isfinite(vd), vd, torch.zeros_like(vd)),
                               torch.zeros_like(vd))
            value = value + lift  # straight-through: the value is clamped, the gradient is the raw one
    bad = heavy.clone()
    if lo is not None and "clamped" in out:
        bad |= fin & (vf < lo - 3 * se)
    if bad.any():
        out["unreliable"] = True
        out["warning"] = "; ".join(warnings)
        if B > 1:
            out["unreliable_members"] = [int(i) for i in bad.nonzero().reshape(-1)]
    return value, out


def mc_estimate(key: str, p, q, *, n=None, seed=None, options=None, **params) -> Estimate:
    """Monte Carlo estimate of the registered divergence ``key`` (see the module table)."""
    owner = f"divergence({key!r}) mc"
    n = _check(owner, p, q, n, options)
    value, var, n_used, reason_if_inf, info = MC_FORMULAS[key](p, q, n, seed, **params)
    ws = info.pop("_w", [])
    nan = torch.isnan(value.detach())
    if bool(nan.any()):  # pragma: no cover - every formula is masked; keep the promise anyway
        value = torch.where(nan, torch.full_like(value, math.inf), value)
        reason_if_inf = reason_if_inf or "the Monte Carlo terms were undefined (0/0) at some draw"
    inf = bool(torch.isinf(value.detach()).any())
    if key in BIASED:
        info = {**info, "stderr": "delta method (log of a mean)"}
    value, diag = _judge(value, var, ws, _lower_bound(key), key, n_used)
    info = {**info, **diag, "weights": WEIGHTS.get(key, "")}
    shown = {k: v for k, v in params.items() if not callable(v)}
    return Estimate(value=value, estimator="mc", divergence=key, params=shown,
                    stderr=0.0 if inf else _max_se(var), n=n_used,
                    reason=(reason_if_inf or f"{key} is infinite") if inf else None, info=info)


def _bind(key):
    def fn(p, q, *, n=None, seed=None, options=None, **params):
        return mc_estimate(key, p, q, n=n, seed=seed, options=options, **params)

    fn.__name__ = f"mc_{key}"
    fn.__doc__ = f"Monte Carlo estimate of {key!r} (see divlab.estimators.mc)."
    return fn


mc_kl, mc_reverse_kl, mc_alpha = _bind("kl"), _bind("reverse_kl"), _bind("alpha")


def vr_bound(p, q, beta: float = 0.5, *, n: int | None = None, seed: int | None = None, log_z: float = 0.0) -> Estimate:
    """The variational Rényi (VR) bound of Li & Turner (2016), estimated from n reparameterized
    draws of q:

        L̂_β = 1/(1 − β) · log (1/n) Σ_i (p̃(x_i)/q(x_i))^{1−β},   x_i ~ q,

    where p̃ = Z·p is the (possibly unnormalized) target, ``log_z`` = log Z (0 for divlab's
    normalized targets). β → 1 is the ELBO E_q[log p̃ − log q]; β = 0 is log Z (exactly, for any
    q whose support covers p); it is a lower bound on log Z for β > 0 and an upper one for β < 0.

    Relation to ``renyi`` (our convention D^R_α(p‖q) = log ∫p^α q^{1−α} / (α − 1), target first):
    with p normalized, L_β = log Z − D^R_β(q‖p) (Li & Turner write D_β(q‖p): model first), and by
    the skew symmetry D^R_β(q‖p) = β/(1 − β) · D^R_{1−β}(p‖q) for β ∈ (0, 1):

        L_β = log Z − β/(1 − β) · renyi(p, q, α = 1 − β).

    For β > 0 (α = 1 − β < 1) the estimators agree draw for draw: with m̂ = mean_i r(x_i)^α
    (the same draws for the same seed), L̂_β = log Z + log m̂ / α and the ``renyi`` mc estimate
    is log m̂ / (α − 1), so L̂_β = log Z − β/(1 − β) · renyi_mc. (For β < 0, α > 1, ``renyi``
    draws from p instead; the VR bound stays an average over q, as a bound on log Z must.) Both are biased (log of a mean):
    E[L̂_β] increases with n towards L_β for β > 0 (Li & Turner, Thm 2). ``stderr`` by the
    delta method (module docstring); ``info`` has the ESS and Pareto k̂ of the weights r^α.
    Returns an :class:`Estimate` with ``divergence="vr_bound"``, ``params={"beta": β}``.
    """
    owner = "vr_bound"
    b = float(beta)
    if not math.isfinite(b) or b == 1.0:
        raise ValueError(f"{owner}(beta={beta!r}): beta must be a finite number other than 1 "
                         "(β = 1 is the ELBO: use -divergence(p, q, 'reverse_kl', estimator='mc'))")
    n = _check(owner, p, q, n, None)
    a = 1.0 - b
    lme, var, dr = _log_chernoff_q(p, q, n, seed, a)
    value = float(log_z) + lme / a
    bad = ~torch.isfinite(value.detach())
    reason = None
    if bool(bad.any()):
        reason = ("VR bound is −inf: " + ("no draw from q landed where p > 0" if b < 1 else
                  "(p/q)^(1−β) is infinite at a draw from q where p = 0 (β > 1)"))
    value, diag = _judge(value, var / (a * a), [dr.logw], None, "the VR bound", dr.n)
    return Estimate(value=value, estimator="mc", divergence="vr_bound", params={"beta": b},
                    stderr=0.0 if reason else _max_se(var / (a * a)), n=dr.n, reason=reason,
                    info={"draws": "q", "gradient": dr.gradient, "stderr": "delta method (log of a mean)",
                          "renyi_alpha": a, **diag, "weights": "(p/q)^(1−β) at draws from q"})


def register() -> None:
    """Add ``"mc"`` to the registry entry of every density divergence that has a formula here
    (idempotent)."""
    from ..divergences.registry import get, keys

    for key in MC_FORMULAS:
        if key in keys():
            get(key).estimator_fns.setdefault("mc", _bind(key))
