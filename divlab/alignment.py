"""Alignment over discrete outcomes, exactly: KL-regularized optima, best-of-n, KL estimators.

A policy π over K outcomes (answers, tokens) is kept near a reference π_ref while it gains reward
r. Everything here is an exact finite sum or a 1D root find; Monte Carlo appears only as a check.

- :func:`tilt` — the optimum of E_π[r] − β·KL(π‖π_ref): π* ∝ π_ref·exp(r/β) (exact).
- :func:`regularized_optimum` — the optimum of E_π[r] − β·D(π_ref‖π) for other regularizers in
  divlab's convention (p = π_ref the fixed reference, q = π the policy): ``"reverse_kl"``
  (KL(π‖π_ref): the tilt), ``"kl"`` (KL(π_ref‖π)), ``"js"``, ``"alpha"`` (Amari, any α in
  [−2, 3]) — the f-DPO family. Writing D = Σ π_ref·g(u) with u = π/π_ref, the KKT condition is
  g'(u_i) = (r_i − λ)/β per outcome (u_i = 0 where that has no solution ≥ 0), and the normalizer λ
  is the root of Σ π_ref·u_i(λ) = 1 (monotone; bracketed, then Brent's method).
- :func:`best_of_n` — the exact law of the best of n draws from π_ref: with reward levels
  v₁ < v₂ < ... and F the reference's CDF over levels, P(best level ≤ v) = F(v)ⁿ; within a level the
  chosen outcome is distributed ∝ π_ref (ties broken at random).
  :func:`bon_kl_formula` is the widely quoted log n − (n−1)/n, an upper bound on
  KL(π_bon‖π_ref) that the exact value reaches only without atoms (the continuous limit).
- :func:`policy_stats` — exact KL(π‖π_ref), expected reward, win rate against π_ref (ties ½) and
  Pass@k; :func:`frontier` — reward against KL for the tilt over β and best-of-n over n.
- :func:`kl_estimators` — k1 = log(π/π_ref), k2 = ½·log²(π/π_ref), k3 = π_ref/π − 1 − log(π_ref/π)
  on samples of π: mean, bias and variance exactly (sums over outcomes) and by simulation, and the
  expected gradient each gives as a loss (∇ through log π(x) with the samples fixed), with respect
  to π's logits: k1 → 0, k2 → ∇KL(π‖π_ref), k3 → ∇KL(π_ref‖π), exactly and by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from .distributions.categorical import Categorical

__all__ = ["tilt", "regularized_optimum", "REGULARIZERS", "best_of_n", "bon_kl_formula", "policy_stats",
           "frontier", "Frontier", "tilt_at_kl", "kl_estimators", "EstimatorZoo", "ESTIMATOR_KEYS"]

#: regularizers of :func:`regularized_optimum` (registry keys, p = π_ref, q = π)
REGULARIZERS = ("reverse_kl", "kl", "js", "alpha")
ESTIMATOR_KEYS = ("k1", "k2", "k3")


# --------------------------------------------------------------------------- inputs
def _ref(ref, owner: str) -> tuple[np.ndarray, list | None]:
    if isinstance(ref, Categorical):
        if ref.batch_shape:
            raise ValueError(f"{owner}(ref=...): one Categorical reference, not a batch")
        return ref.probs.detach().cpu().double().numpy(), ref.labels
    c = Categorical(probs=ref)
    return c.probs.numpy(), None


def _reward(reward, K: int, owner: str) -> np.ndarray:
    try:
        r = np.asarray(reward, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}(reward={reward!r}): reward must be an array of numbers") from None
    if r.shape != (K,):
        raise ValueError(f"{owner}(reward with shape {r.shape}): need one reward per outcome, shape ({K},)")
    if not np.isfinite(r).all():
        i = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"{owner}(reward[{i}]={r[i]!r}): rewards must be finite")
    return r


def _positive(owner, name, v, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{owner}({name}={v!r}): {name} must be a finite number > 0")
    if integer and float(v) != int(v):
        raise ValueError(f"{owner}({name}={v!r}): {name} must be a positive integer")
    return int(v) if integer else float(v)


def _cat(probs, labels) -> Categorical:
    probs = np.clip(probs, 0.0, None)
    return Categorical(probs=probs / probs.sum(), labels=labels)


def _kl(a: np.ndarray, b: np.ndarray) -> float:
    """KL(a‖b) = Σ a log(a/b), 0 log 0 = 0, +inf where b = 0 < a."""
    m = a > 0
    if np.any(b[m] <= 0):
        return math.inf
    return float(np.sum(a[m] * (np.log(a[m]) - np.log(b[m]))))


# --------------------------------------------------------------------------- optima
def tilt(ref, reward, beta: float) -> Categorical:
    """π* = argmax_π E_π[r] − β·KL(π‖π_ref) = π_ref·exp(r/β) / Z, exactly (in log space).

    β → ∞ gives π_ref; β → 0 the reference restricted to the best outcome(s). Outcomes with
    π_ref = 0 keep probability 0."""
    p, labels = _ref(ref, "tilt")
    r = _reward(reward, p.size, "tilt")
    beta = _positive("tilt", "beta", beta)
    return _cat(_tilt_np(p, r, beta), labels)


def _tilt_np(p: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        z = np.log(p) + r / beta
    z = z - z[np.isfinite(z)].max()
    w = np.exp(z)
    return w / w.sum()


def _u_of(key: str, alpha: float):
    """u(y), the solution of g'(u) = y (0 where none ≥ 0), and the sup of y over which it is finite."""
    if key == "reverse_kl" or (key == "alpha" and alpha == 0):
        return (lambda y: np.exp(y - 1.0)), math.inf
    if key == "kl" or (key == "alpha" and alpha == 1):
        return (lambda y: 1.0 / (-y)), 0.0
    if key == "js":
        def u(y):
            e = np.exp(2.0 * y)
            return e / (2.0 - e)
        return u, 0.5 * math.log(2.0)
    if alpha > 0:  # g'(u) = −u^(−α)/α < 0
        return (lambda y: (-alpha * y) ** (-1.0 / alpha)), 0.0
    a = -alpha  # α < 0: g'(u) = u^|α|/|α| ≥ 0; u = 0 where y ≤ 0
    return (lambda y: np.where(y > 0, (a * np.maximum(y, 0.0)) ** (1.0 / a), 0.0)), math.inf


def regularized_optimum(ref, reward, beta: float, divergence: str = "reverse_kl", alpha: float = 0.5) -> Categorical:
    """argmax_π E_π[r] − β·D(π_ref‖π) over distributions π ≪ π_ref (see the module docstring).

    ``divergence``: "reverse_kl" (= KL(π‖π_ref), the tilt), "kl" (= KL(π_ref‖π): the optimum
    is π = β·π_ref/(λ − r), heavy on every outcome), "js", or "alpha" with ``alpha`` in [−2, 3]
    (α → 0: the tilt; α = 1: forward KL; α < 0 can set outcomes to 0)."""
    owner = "regularized_optimum"
    if divergence not in REGULARIZERS:
        raise ValueError(f"{owner}(divergence={divergence!r}): divergence must be one of {', '.join(REGULARIZERS)}")
    p, labels = _ref(ref, owner)
    r = _reward(reward, p.size, owner)
    beta = _positive(owner, "beta", beta)
    if divergence == "alpha":
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not -2.0 <= alpha <= 3.0:
            raise ValueError(f"{owner}(alpha={alpha!r}): alpha must be a number in [-2, 3]")
    if divergence == "reverse_kl" or (divergence == "alpha" and alpha == 0):
        return tilt(Categorical(probs=p, labels=labels), r, beta)
    s = p > 0
    ps, rs = p[s], r[s]
    u, ysup = _u_of(divergence, float(alpha))

    def mass(lam):
        with np.errstate(over="ignore", divide="ignore"):
            return float(np.sum(ps * u((rs - lam) / beta)))

    # mass(λ) decreases in λ; it is finite for λ > lam_min = max r − β·sup(y) (−inf: everywhere)
    lam_min = rs.max() - beta * ysup if math.isfinite(ysup) else -math.inf
    span = max(1.0, float(rs.max() - rs.min()), beta)
    hi = (lam_min if math.isfinite(lam_min) else float(rs.max())) + span
    while mass(hi) > 1.0:
        hi += span
        span *= 2
    if math.isfinite(lam_min):
        t, floor = (hi - lam_min) / 2, 1e-12 * max(1.0, abs(lam_min))
        while mass(lam_min + t) < 1.0 and t > floor:
            t /= 2
        lo = lam_min + t
    else:
        step = span
        lo = hi - step
        while mass(lo) < 1.0:
            step *= 2
            lo = hi - step
    lam = brentq(lambda x: mass(x) - 1.0, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    out = np.zeros_like(p)
    out[s] = ps * u((rs - lam) / beta)
    return _cat(out, labels)


def best_of_n(ref, reward, n: int) -> Categorical:
    """The exact law of the outcome returned by best-of-n sampling from π_ref (ties at random)."""
    p, labels = _ref(ref, "best_of_n")
    r = _reward(reward, p.size, "best_of_n")
    n = _positive("best_of_n", "n", n, integer=True)
    return _cat(_bon_np(p, r, n), labels)


def _bon_np(p: np.ndarray, r: np.ndarray, n: int) -> np.ndarray:
    levels, inv = np.unique(r, return_inverse=True)
    mass = np.bincount(inv, weights=p, minlength=levels.size)
    F = np.clip(np.cumsum(mass), 0.0, 1.0)
    F[-1] = 1.0
    Fm = np.concatenate([[0.0], F[:-1]])
    level_prob = F**n - Fm**n  # P(best level = v)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(mass[inv] > 0, p / np.where(mass[inv] > 0, mass[inv], 1.0), 0.0)
    out = np.clip(share * level_prob[inv], 0.0, None)
    return out / out.sum()


def bon_kl_formula(n: int) -> float:
    """log n − (n − 1)/n: the KL(π_bon‖π_ref) usually quoted for best-of-n; an upper bound
    (Beirami et al., 2024), reached only when π_ref has no atoms."""
    n = _positive("bon_kl_formula", "n", n, integer=True)
    return math.log(n) - (n - 1) / n


def policy_stats(pi, ref, reward, k=(1, 4, 16), correct=None) -> dict:
    """Exact numbers for a policy π against π_ref: ``kl`` = KL(π‖π_ref) (nats), ``reward`` = E_π[r],
    ``ref_reward`` = E_π_ref[r], ``win_rate`` = P(r(Y) > r(Y')) + ½·P(r(Y) = r(Y')) for Y ~ π,
    Y' ~ π_ref, and ``pass_at`` = {k: 1 − (1 − P_π(correct))^k} with ``correct`` a boolean array
    (default: the outcomes of maximal reward)."""
    a, _ = _ref(pi, "policy_stats")
    b, _ = _ref(ref, "policy_stats")
    if a.size != b.size:
        raise ValueError(f"policy_stats: π has {a.size} outcomes and π_ref {b.size}")
    r = _reward(reward, a.size, "policy_stats")
    levels, inv = np.unique(r, return_inverse=True)
    ma = np.bincount(inv, weights=a, minlength=levels.size)
    mb = np.bincount(inv, weights=b, minlength=levels.size)
    Fb_below = np.concatenate([[0.0], np.cumsum(mb)[:-1]])
    win = float(np.sum(ma * (Fb_below + 0.5 * mb)))
    corr = (r == r.max()) if correct is None else np.asarray(correct, dtype=bool)
    if corr.shape != (a.size,):
        raise ValueError(f"policy_stats(correct with shape {corr.shape}): need one flag per outcome ({a.size},)")
    pc = float(a[corr].sum())
    ks = [_positive("policy_stats", "k", kk, integer=True) for kk in k]
    return {"kl": _kl(a, b), "reward": float(a @ r), "ref_reward": float(b @ r), "win_rate": win,
            "p_correct": pc, "pass_at": {kk: 1.0 - (1.0 - pc) ** kk for kk in ks}}


# --------------------------------------------------------------------------- frontier
@dataclass
class Frontier:
    """Reward against KL(π‖π_ref): the tilt over ``betas`` and best-of-n over ``ns``."""

    betas: np.ndarray
    tilt_kl: np.ndarray
    tilt_reward: np.ndarray
    ns: np.ndarray
    bon_kl: np.ndarray
    bon_formula: np.ndarray
    bon_reward: np.ndarray
    #: the tilt's reward at each best-of-n KL (same budget): never below bon_reward
    tilt_reward_at_bon_kl: np.ndarray
    ref_reward: float = 0.0
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


def tilt_at_kl(ref, reward, kl: float) -> tuple[float, Categorical]:
    """(β, tilt) with KL(tilt‖π_ref) = ``kl`` (bisection on log β; KL decreases with β). ``kl`` must
    be below the KL of the reference restricted to its best outcomes, log(1/π_ref(best))."""
    p, labels = _ref(ref, "tilt_at_kl")
    r = _reward(reward, p.size, "tilt_at_kl")
    best = p[(r == r[p > 0].max()) & (p > 0)].sum()
    kmax = -math.log(best)
    if -1e-12 < kl < 1e-14:  # zero up to rounding (best-of-1 is π_ref itself)
        kl = 0.0
    if not 0 <= kl < kmax:
        raise ValueError(f"tilt_at_kl(kl={kl!r}): kl must be in [0, {kmax:.6g}) (the KL of π_ref restricted to "
                         "its best outcomes)")
    if kl == 0:
        return math.inf, Categorical(probs=p, labels=labels)
    def f(lb):
        return _kl(_tilt_np(p, r, math.exp(lb)), p) - kl

    lo, hi = -5.0, 5.0
    while f(lo) < 0:
        lo -= 5.0
    while f(hi) > 0 and hi < 600.0:
        hi += 5.0
    lb = brentq(f, lo, hi, xtol=1e-13, maxiter=500)
    return math.exp(lb), _cat(_tilt_np(p, r, math.exp(lb)), labels)


def frontier(ref, reward, betas=None, ns=(1, 2, 4, 8, 16, 32, 64, 128)) -> Frontier:
    """The reward-vs-KL frontier: tilts over ``betas`` (default 60 values, log-spaced around the
    reward's spread) and best-of-n over ``ns``, with the formula log n − (n−1)/n beside the exact
    KL of best-of-n, and the tilt's reward at each best-of-n's exact KL (the same budget)."""
    p, labels = _ref(ref, "frontier")
    r = _reward(reward, p.size, "frontier")
    refc = Categorical(probs=p, labels=labels)
    spread = float(np.sqrt(max(p @ (r - p @ r) ** 2, 1e-12)))
    best = float(r[p > 0].max())
    if betas is None:
        betas = spread * np.logspace(-2, 2, 60)[::-1]
    betas = np.asarray([_positive("frontier", "beta", float(b)) for b in betas])
    t_kl, t_r = [], []
    for b in betas:
        pi = _tilt_np(p, r, float(b))
        t_kl.append(_kl(pi, p))
        t_r.append(float(pi @ r))
    b_kl, b_f, b_r, t_at = [], [], [], []
    for n in ns:
        pb = _bon_np(p, r, _positive("frontier", "n", n, integer=True))
        kl = _kl(pb, p)
        kl = 0.0 if kl < 1e-14 else kl  # n = 1 is π_ref itself: 0 up to rounding
        b_kl.append(kl)
        b_f.append(bon_kl_formula(n))
        b_r.append(float(pb @ r))
        try:
            _, tq = tilt_at_kl(refc, r, kl)
            t_at.append(float(tq.probs.detach().cpu().numpy() @ r))
        except ValueError:  # the budget reaches the best outcome: the tilt's supremum
            t_at.append(best)
    return Frontier(betas=betas, tilt_kl=np.array(t_kl), tilt_reward=np.array(t_r), ns=np.asarray(ns),
                    bon_kl=np.array(b_kl), bon_formula=np.array(b_f), bon_reward=np.array(b_r),
                    tilt_reward_at_bon_kl=np.array(t_at), ref_reward=float(p @ r))


# --------------------------------------------------------------------------- KL estimators
@dataclass
class EstimatorZoo:
    """k1, k2, k3 on samples of π: per estimator (keys of the dicts), exactly and by simulation.

    ``kl`` = KL(π‖π_ref), ``kl_forward`` = KL(π_ref‖π); ``mean``/``var`` exact, ``bias`` = mean − kl;
    ``mc_mean``/``mc_var``/``mc_se`` from ``n`` draws; ``grad`` the exact expected gradient with
    respect to π's logits, ``grad_target`` what it equals (0, ∇KL(π‖π_ref), ∇KL(π_ref‖π)),
    ``mc_grad`` the simulated average gradient (autograd over the logits, samples fixed) and
    ``mc_grad_se`` its per-coordinate standard error."""

    kl: float
    kl_forward: float
    mean: dict
    var: dict
    bias: dict
    mc_mean: dict
    mc_var: dict
    mc_se: dict
    grad: dict
    grad_target: dict
    mc_grad: dict
    mc_grad_se: dict
    n: int
    grad_of_kl: np.ndarray
    grad_of_forward_kl: np.ndarray


def _k_values(lp: np.ndarray, lr: np.ndarray) -> dict:
    """Per-outcome k1, k2, k3 from log π and log π_ref."""
    L = lp - lr
    return {"k1": L, "k2": 0.5 * L * L, "k3": np.expm1(-L) + L}


def kl_estimators(pi, ref, n: int = 100_000, seed: int = 0) -> EstimatorZoo:
    """The estimator zoo for KL(π‖π_ref) (see the module docstring). ``n`` draws of π for the
    simulation (seeded). π must be ≪ π_ref (else KL is infinite) and π_ref ≪ π for k3."""
    import torch

    a, _ = _ref(pi, "kl_estimators")
    b, _ = _ref(ref, "kl_estimators")
    if a.size != b.size:
        raise ValueError(f"kl_estimators: π has {a.size} outcomes and π_ref {b.size}")
    bad = np.flatnonzero((a > 0) != (b > 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"kl_estimators: outcome {i} has π = {a[i]:.4g} and π_ref = {b[i]:.4g}; the estimators need "
                         "the same support (log(π/π_ref) must be finite on every sample)")
    n = _positive("kl_estimators", "n", n, integer=True)
    s = a > 0
    lp = np.full_like(a, 0.0)
    lr = np.full_like(b, 0.0)
    lp[s], lr[s] = np.log(a[s]), np.log(b[s])
    k = _k_values(lp, lr)
    kl = float(np.sum(a[s] * (lp[s] - lr[s])))
    klf = float(np.sum(b[s] * (lr[s] - lp[s])))
    mean = {key: float(a @ v) for key, v in k.items()}
    var = {key: float(a @ (v - mean[key]) ** 2) for key, v in k.items()}
    L = lp - lr
    g_kl = a * L - a * (a @ L)  # ∇_θ KL(π‖π_ref) for π = softmax(θ)
    g_fwd = a - b  # ∇_θ KL(π_ref‖π)
    grad = {"k1": np.zeros_like(a), "k2": g_kl, "k3": g_fwd}
    target = {"k1": "0", "k2": "∇KL(π‖π_ref)", "k3": "∇KL(π_ref‖π)"}
    # simulation: draws of π, values and autograd gradients through log π(x) (samples fixed)
    rng = np.random.default_rng(seed)
    x = rng.choice(a.size, size=n, p=a / a.sum())
    mc_mean, mc_var, mc_se, mc_grad, mc_grad_se = {}, {}, {}, {}, {}
    for key, v in k.items():
        vals = v[x]
        mc_mean[key] = float(vals.mean())
        mc_var[key] = float(vals.var(ddof=1)) if n > 1 else 0.0
        mc_se[key] = math.sqrt(mc_var[key] / n)
    theta = torch.tensor(lp, dtype=torch.float64, requires_grad=True)
    xt = torch.as_tensor(x)
    lrt = torch.as_tensor(lr, dtype=torch.float64)
    counts = np.bincount(x, minlength=a.size)
    for key in ESTIMATOR_KEYS:
        lq = torch.log_softmax(theta, 0)[xt]
        Lx = lq - lrt[xt]
        kx = {"k1": Lx, "k2": 0.5 * Lx * Lx, "k3": torch.expm1(-Lx) + Lx}[key]
        (g,) = torch.autograd.grad(kx.mean(), theta)
        mc_grad[key] = g.numpy()
        # standard error per coordinate: per-sample gradient c(x)·(e_x − π)
        c = {"k1": np.ones_like(L), "k2": L, "k3": -np.expm1(-L)}[key]
        first = (c * c * counts) / n  # E[(c e_x)_j^2] part on coordinate j = x
        cross = (c * counts) / n
        m2 = first - 2 * a * (c * c * counts) / n + a * a * float(np.sum(c * c * counts) / n)
        mean_j = cross - a * float(np.sum(c * counts) / n)
        mc_grad_se[key] = np.sqrt(np.maximum(m2 - mean_j**2, 0.0) / n)
    return EstimatorZoo(kl=kl, kl_forward=klf, mean=mean, var=var, bias={kk: mean[kk] - kl for kk in mean},
                        mc_mean=mc_mean, mc_var=mc_var, mc_se=mc_se, grad=grad, grad_target=target, mc_grad=mc_grad,
                        mc_grad_se=mc_grad_se, n=n, grad_of_kl=g_kl, grad_of_forward_kl=g_fwd)
