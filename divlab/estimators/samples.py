"""Estimators of KL(p‖q) and Rényi D_α(p‖q) from samples alone (any dimension d).

Reached as ``dl.estimate(X, Y, "kl", estimator="knn")`` with point clouds X ~ p (target) and
Y ~ q (model) of shape (n, d) / (m, d) (or :class:`~divlab.distributions.Empirical`), or with a
distribution on either side (it is sampled: ``n`` draws, ``seed``). Registered on the ``kl`` and
``renyi`` entries (``dv`` / ``nwj``: ``kl`` only). None of them is differentiable (they are
measurements, not training losses). With ρ_k(i) the distance from X_i to its k-th nearest
neighbour among the other X's and ν_k(i) the distance to its k-th nearest neighbour among the Y's:

========= ============================================================================================
name      estimator
========= ============================================================================================
knn       KL: Wang, Kulkarni & Verdú (2009), (d/n) Σ log(ν/ρ) + log(m/(n−1)); with
          ``bias_correction`` (default) their adaptive choice: radius ε_i = max(ρ_k(i), ν_k(i)),
          l_i / k_i neighbours of each sample inside it, plus ψ(l_i) − ψ(k_i).
          Rényi: Póczos & Schneider (2011), ∫p^α q^{1−α} ≈ B_{k,α} · mean_i [(n−1)ρ_k^d / (m ν_k^d)]^{1−α},
          B_{k,α} = Γ(k)² / (Γ(k−α+1) Γ(k+α−1)) (their bias correction; needs k > |α − 1|).
nn_ratio  Noshad, Moon, Yasaei Sekeh & Hero (2017): for each Y_j, among its k nearest neighbours in
          X ∪ Y, N_j from X and M_j from Y; r̂_j = (m/n) N_j / (M_j + 1) estimates p/q at Y_j;
          KL = mean_j r̂_j log r̂_j, ∫p^α q^{1−α} = mean_j r̂_j^α. Default k = ⌈√m⌉. Its ``error``
          adds |D̂(⌈k/2⌉) − D̂(k)|, the Jensen bias (~1/k) of a function of a count ratio.
kde       Plug-in: Gaussian kernel density estimates (leave-one-out for p̂ at its own samples),
          KL = mean_i log(p̂(X_i)/q̂(X_i)), Rényi = log mean_i (p̂/q̂)^{α−1}(X_i) / (α − 1);
          bandwidth per coordinate by Scott's rule σ̂ n^{−1/(d+4)} (``bandwidth="scott"``),
          Silverman's (4/(d+2))^{1/(d+4)} σ̂ n^{−1/(d+4)}, or a number. info["bandwidth_rule"].
dv, nwj   Variational *lower bounds* with a small MLP critic T trained by Adam on half of the samples
          and evaluated on the other half: Donsker–Varadhan E_p[T] − log E_q[e^T], Nguyen–
          Wainwright–Jordan E_p[T] − E_q[e^{T−1}]. KL ≥ both for every T; the gap to KL is not in the
          error bar (info["bound"] = "lower", info["warning"]). Their variance grows like e^{KL}
          (Song & Ermon 2020, "Understanding the Limitations of Variational MI Estimators").
========= ============================================================================================

Uncertainty. ``stderr`` is the spread of the per-sample terms over √n (the delta method for a
log of a mean: Rényi, DV). The nearest-neighbour and kernel estimators are also *biased* at
finite n (bias ~ n^{−γ}; we assume γ = 1/d, the slow rate of densities with unbounded support
such as Gaussians, so the bar errs wide); ``error`` is a Richardson-style
bias indicator: the same estimator on the two halves of the samples, |D̂_n − mean(D̂_{n/2})| /
(2^γ − 1), or from the quarters, |mean(D̂_{n/2}) − mean(D̂_{n/4})| / (2^γ(2^γ − 1)), whichever is
larger (info["bias_rate"] = γ). An honest interval is value ± (3·stderr + error).

References: Q. Wang, S. Kulkarni, S. Verdú, "Divergence estimation for multidimensional densities
via k-nearest-neighbor distances", IEEE Trans. IT 55(5), 2009; B. Póczos, J. Schneider, "On the
estimation of α-divergences", AISTATS 2011; M. Noshad, K. Moon, S. Yasaei Sekeh, A. Hero, "Direct
estimation of information divergence using nearest neighbor ratios", ISIT 2017; M. Donsker,
S. Varadhan (1983); X. Nguyen, M. Wainwright, M. Jordan, IEEE Trans. IT 56(11), 2010.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from ..distributions import Distribution, Empirical
from .result import Estimate

__all__ = ["SAMPLE_ESTIMATORS", "DEFAULT_N", "register", "sample_estimate"]

DEFAULT_N = 2000
#: estimator name -> divergences it is registered on
SAMPLE_ESTIMATORS = {"knn": ("kl", "renyi"), "nn_ratio": ("kl", "renyi"), "kde": ("kl", "renyi"),
                     "dv": ("kl",), "nwj": ("kl",)}
BOUND_NOTE = ("a variational lower bound on KL(p‖q) (held-out estimate of the bound for the trained critic): "
              "the true KL can be larger, and the gap is not in the error bar")


# --------------------------------------------------------------------------- inputs
def _seed(seed, side):
    if seed is None:
        return None
    from ..divergences._samples import derive_seed

    return derive_seed(seed, side)


def _points(d, n, seed, owner, name) -> np.ndarray:
    """Equally weighted samples of one side as a float64 array (count, dim)."""
    if isinstance(d, Empirical):
        x, w = d.cloud()
        w = w.detach()
        if not torch.allclose(w, torch.full_like(w, 1.0 / w.numel()), rtol=1e-9, atol=0.0):
            raise ValueError(f"{owner}: {name} = {d!r} has unequal weights; sample estimators take equally "
                             f"weighted samples (resample it first: Empirical({name}.sample(n)))")
        return x.detach().to(torch.float64).cpu().numpy()
    if not isinstance(d, Distribution):
        raise ValueError(f"{owner}: {name} must be a point cloud or a divlab distribution, got {type(d).__name__}")
    if d.batch_shape:
        raise ValueError(f"{owner}: {name} has batch_shape {tuple(d.batch_shape)}; sample estimators take one "
                         "distribution at a time")
    x = d.sample(n, seed=seed).reshape(n, d.dim)
    return x.detach().to(torch.float64).cpu().numpy()


def _check_options(owner, options, allowed):
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{owner}: unknown option {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    out = dict(allowed)
    out.update(options)
    return out


def _check_int(owner, name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}({name}={value!r}): {name} must be an integer >= {low}")
    return int(value)


# --------------------------------------------------------------------------- kNN (Wang–Kulkarni–Verdú, Póczos–Schneider)
def _knn_query(tree, pts, k):
    d, _ = tree.query(pts, k=k)
    return np.asarray(d).reshape(len(pts), -1)


def _no_ties(owner, rho, nu):
    if (rho <= 0).any():
        raise ValueError(f"{owner}: p's samples contain repeated points (distance 0 to a nearest neighbour); "
                         "nearest-neighbour estimators need samples of a continuous distribution")
    if (nu <= 0).any():
        raise ValueError(f"{owner}: a sample of p coincides with a sample of q (distance 0); nearest-neighbour "
                         "estimators need samples of continuous distributions (and two different clouds)")


def _knn_terms(X, Y, key, alpha, k, bias_correction, owner):
    """Per-sample terms: KL -> t_i with KL ≈ mean t; Rényi -> w_i with ∫p^α q^{1−α} ≈ mean w."""
    from scipy.spatial import cKDTree
    from scipy.special import digamma, gammaln

    n, d = X.shape
    m = Y.shape[0]
    if n < k + 1 or m < k:
        raise ValueError(f"{owner}(k={k}): need more than k samples of p (have {n}) and at least k of q (have {m})")
    tx, ty = cKDTree(X), cKDTree(Y)
    if key == "kl" and bias_correction:
        cap_x, cap_y = min(n - 1, 10 * k), min(m, 10 * k)
        dx = _knn_query(tx, X, cap_x + 1)[:, 1:]
        dy = _knn_query(ty, X, cap_y)
        _no_ties(owner, dx[:, :1], dy[:, :1])
        eps = np.maximum(dx[:, k - 1], dy[:, k - 1])
        li = np.clip((dx <= eps[:, None]).sum(1), k, cap_x)
        ki = np.clip((dy <= eps[:, None]).sum(1), k, cap_y)
        rho = dx[np.arange(n), li - 1]
        nu = dy[np.arange(n), ki - 1]
        return d * (np.log(nu) - np.log(rho)) + digamma(li) - digamma(ki) + math.log(m / (n - 1))
    rho = _knn_query(tx, X, k + 1)[:, k]
    nu = _knn_query(ty, X, k)[:, k - 1]
    _no_ties(owner, rho, nu)
    logratio = math.log((n - 1) / m) + d * (np.log(rho) - np.log(nu))  # log of the p̂/q̂ ratio's inverse, ≈ log(q/p)
    if key == "kl":
        return -logratio
    logB = 2 * gammaln(k) - gammaln(k - alpha + 1) - gammaln(k + alpha - 1)
    return np.exp((1 - alpha) * logratio + logB)


# --------------------------------------------------------------------------- NN ratio (Noshad et al.)
def _nnr_terms(X, Y, key, alpha, k, owner):
    from scipy.spatial import cKDTree

    n, m = X.shape[0], Y.shape[0]
    if n + m - 1 < k:
        raise ValueError(f"{owner}(k={k}): need at least k + 1 samples in all (have {n + m})")
    Z = np.concatenate([X, Y])
    tz = cKDTree(Z)
    _, idx = tz.query(Y, k=k + 1)
    idx = np.asarray(idx).reshape(m, -1)
    own = (n + np.arange(m))[:, None]
    # drop Y_j itself (normally the first neighbour; with ties, wherever it is)
    keep = idx != own
    first_k = np.cumsum(keep, axis=1) <= k
    sel = keep & first_k
    Ni = ((idx < n) & sel).sum(1)
    Mi = ((idx >= n) & sel).sum(1)
    r = (m / n) * Ni / (Mi + 1.0)
    if key == "kl":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r > 0, r * np.log(np.where(r > 0, r, 1.0)), 0.0)
    return r**alpha


# --------------------------------------------------------------------------- KDE plug-in
def _bandwidth(Z, rule, owner):
    n, d = Z.shape
    sd = Z.std(0, ddof=1) if n > 1 else np.ones(d)
    sd = np.where(sd > 0, sd, 1.0)
    if isinstance(rule, str):
        if rule == "scott":
            return sd * n ** (-1.0 / (d + 4))
        if rule == "silverman":
            return sd * (4.0 / (d + 2)) ** (1.0 / (d + 4)) * n ** (-1.0 / (d + 4))
        raise ValueError(f"{owner}(bandwidth={rule!r}): bandwidth must be 'scott', 'silverman' or a number > 0")
    try:
        h = float(rule)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}(bandwidth={rule!r}): bandwidth must be 'scott', 'silverman' or a number > 0") from None
    if not (h > 0 and math.isfinite(h)):
        raise ValueError(f"{owner}(bandwidth={rule!r}): bandwidth must be 'scott', 'silverman' or a number > 0")
    return np.full(d, h)


def _kde_logpdf(at, data, h, leave_one_out=False, chunk=2048):
    """log of the Gaussian product-kernel density of ``data`` (bandwidths h per coordinate) at ``at``."""
    A = torch.as_tensor(at / h)
    D = torch.as_tensor(data / h)
    nd, d = D.shape
    out = torch.empty(A.shape[0], dtype=torch.float64)
    const = -math.log(nd - (1 if leave_one_out else 0)) - float(np.log(h).sum()) - 0.5 * d * math.log(2 * math.pi)
    for s in range(0, A.shape[0], chunk):
        a = A[s:s + chunk]
        d2 = torch.cdist(a, D).pow(2)
        if leave_one_out:
            rows = torch.arange(a.shape[0])
            d2[rows, s + rows] = math.inf
        out[s:s + chunk] = torch.logsumexp(-0.5 * d2, dim=1) + const
    return out.numpy()


def _kde_terms(X, Y, key, alpha, rule, owner):
    if X.shape[0] < 2:
        raise ValueError(f"{owner}: need at least 2 samples of p for a leave-one-out density (have {X.shape[0]})")
    hx, hy = _bandwidth(X, rule, owner), _bandwidth(Y, rule, owner)
    lr = _kde_logpdf(X, X, hx, leave_one_out=True) - _kde_logpdf(X, Y, hy)
    if key == "kl":
        return lr
    return np.exp((alpha - 1.0) * lr)


# --------------------------------------------------------------------------- variational bounds
def _critic(d, hidden):
    return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ELU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.ELU(), torch.nn.Linear(hidden, 1))


def _lmeanexp(t):
    return torch.logsumexp(t, 0) - math.log(t.shape[0])


@contextlib.contextmanager
def _threads(k: int):
    """torch's intra-op threads set to ``k`` for a block, then restored: a tiny MLP trains ~10x faster
    on one thread than on several contended ones."""
    old = torch.get_num_threads()
    torch.set_num_threads(k)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _bound_terms(T, xp, xq, which):
    tp, tq = T(xp)[:, 0], T(xq)[:, 0]
    return tp.mean() - (_lmeanexp(tq) if which == "dv" else torch.exp(tq - 1).mean())


def _variational(X, Y, which, steps, hidden, lr, seed, owner):
    """Train the critic on 40 % of each cloud (early stopping on another 20 %), evaluate the bound's
    terms on the remaining 40 % (held out: no selection bias)."""
    n, m = X.shape[0], Y.shape[0]
    if n < 10 or m < 10:
        raise ValueError(f"{owner}: need at least 10 samples on each side (have {n} and {m})")
    gen = np.random.default_rng(_seed(seed, 7) if seed is not None else None)
    ix, iy = gen.permutation(n), gen.permutation(m)
    a, b = int(0.4 * n), int(0.6 * n)
    c, e = int(0.4 * m), int(0.6 * m)
    Z = np.concatenate([X[ix[:a]], Y[iy[:c]]])
    mu, sd = Z.mean(0), Z.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    f = lambda A: torch.as_tensor((A - mu) / sd, dtype=torch.float32)  # noqa: E731
    xt, yt = f(X[ix[:a]]), f(Y[iy[:c]])
    xv, yv = f(X[ix[a:b]]), f(Y[iy[c:e]])
    xe, ye = f(X[ix[b:]]), f(Y[iy[e:]])
    best, best_state, best_step = -math.inf, None, 0
    with torch.random.fork_rng(devices=[]), _threads(1):
        torch.manual_seed(0 if seed is None else int(_seed(seed, 8) % (2**31)))
        T = _critic(X.shape[1], hidden)
        opt = torch.optim.Adam(T.parameters(), lr=lr, weight_decay=1e-4)
        with torch.enable_grad():
            for step in range(steps + 1):
                if step % 10 == 0 or step == steps:
                    with torch.no_grad():
                        v = float(_bound_terms(T, xv, yv, which))
                    if v > best:
                        best, best_step = v, step
                        best_state = {k: t.clone() for k, t in T.state_dict().items()}
                if step == steps:
                    break
                opt.zero_grad()
                (-_bound_terms(T, xt, yt, which)).backward()
                opt.step()
        T.load_state_dict(best_state)
        with torch.no_grad():
            tp, tq = T(xe)[:, 0].double().numpy(), T(ye)[:, 0].double().numpy()
    ne, me = len(tp), len(tq)
    if which == "nwj":
        eq = np.exp(tq - 1)
        value = tp.mean() - eq.mean()
        se = math.sqrt(tp.var(ddof=1) / ne + eq.var(ddof=1) / me)
    else:
        cmax = tq.max()
        w = np.exp(tq - cmax)
        value = tp.mean() - (cmax + math.log(w.mean()))
        se = math.sqrt(tp.var(ddof=1) / ne + (w / w.mean()).var(ddof=1) / me)
    return float(value), se, {
        "critic": f"MLP {X.shape[1]}→{hidden}→{hidden}→1 (ELU), Adam lr={lr:g}, weight decay 1e-4, "
                  f"best of {steps} steps on validation (step {best_step})",
        "split": f"train {a}+{c}, validation {b - a}+{e - c}, evaluate {ne}+{me} samples (p+q)"}


# --------------------------------------------------------------------------- front
_DEFAULTS = {
    "knn": {"k": 5, "bias_correction": True},
    "nn_ratio": {"k": None},
    "kde": {"bandwidth": "scott"},
    "dv": {"steps": 300, "hidden": 32, "lr": 0.005},
    "nwj": {"steps": 300, "hidden": 32, "lr": 0.005},
}
_NAMES = {"knn": "k-nearest-neighbour (Wang–Kulkarni–Verdú; Póczos–Schneider for Rényi)",
          "nn_ratio": "nearest-neighbour ratio (Noshad et al. 2017)",
          "kde": "Gaussian kernel density plug-in",
          "dv": "Donsker–Varadhan variational lower bound", "nwj": "NWJ variational lower bound"}


def _reduce(key, alpha, terms):
    """(value, stderr) from per-sample terms: a mean (KL) or the log of a mean (Rényi)."""
    n = len(terms)
    if key == "kl":
        return float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    mbar = float(terms.mean())
    if not mbar > 0:
        return math.inf, math.inf
    se = float((terms / mbar).std(ddof=1) / math.sqrt(n)) / abs(alpha - 1) if n > 1 else math.inf
    return math.log(mbar) / (alpha - 1), se


def sample_estimate(name, key, p, q, *, n=None, seed=None, options=None, alpha=None) -> Estimate:
    """``name`` ∈ :data:`SAMPLE_ESTIMATORS` for divergence ``key`` ("kl" or "renyi", α = ``alpha``)."""
    owner = f"estimate({key!r}, estimator={name!r})"
    o = _check_options(owner, dict(options or {}), _DEFAULTS[name])
    if n is not None:
        n = _check_int(owner, "n", n, 2)
    n = n or DEFAULT_N
    X = _points(p, n, _seed(seed, 0), owner, "p")
    Y = _points(q, n, _seed(seed, 1), owner, "q")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"{owner}: p is {X.shape[1]}D and q is {Y.shape[1]}D; they must have the same dimension")
    d = X.shape[1]
    a = float(alpha) if key == "renyi" else 1.0
    params = {"alpha": a} if key == "renyi" else {}
    if key == "renyi" and a == 1.0:
        key_eff = "kl"
    else:
        key_eff = key
    info = {"method": _NAMES[name], "n_p": int(X.shape[0]), "n_q": int(Y.shape[0]), "dim": d,
            "gradient": "none (a measurement from samples, not differentiable)"}
    if name in ("dv", "nwj"):
        steps = _check_int(owner, "steps", o["steps"], 1)
        hidden = _check_int(owner, "hidden", o["hidden"], 1)
        value, se, extra = _variational(X, Y, name, steps, hidden, float(o["lr"]), seed, owner)
        info.update(extra)
        info.update({"bound": "lower", "warning": BOUND_NOTE})
        return Estimate(value=torch.tensor(value, dtype=torch.float64), estimator=name, divergence=key,
                        params=params, stderr=se, n=int(X.shape[0]), reason=None, info=info)
    if name == "knn":
        k = _check_int(owner, "k", o["k"], 1)
        if key_eff == "renyi" and not (k - a + 1 > 0 and k + a - 1 > 0):
            raise ValueError(f"{owner}(k={k}): the Póczos–Schneider Rényi estimator needs k > |α − 1| (α = {a:g})")
        for nm, dist, Z, need in (("p", p, X, k + 1), ("q", q, Y, k)):
            if Z.shape[0] < need:
                raise ValueError(f"{owner}(k={k}): {nm} = {dist!r} gives {Z.shape[0]} samples; knn needs at least "
                                 f"{need} (k + 1 for p, k for q)")
        bc = bool(o["bias_correction"])
        fn = lambda A, B: _knn_terms(A, B, key_eff, a, k, bc, owner)  # noqa: E731
        info.update({"k": k, "bias_correction": (("adaptive radius + ψ(l_i) − ψ(k_i) (WKV 2009)" if bc else "off")
                                                  if key_eff == "kl" else "B_{k,α} factor (Póczos–Schneider 2011)")})
    elif name == "nn_ratio":
        k = o["k"]
        k = max(1, math.ceil(math.sqrt(Y.shape[0]))) if k is None else _check_int(owner, "k", k, 1)
        fn = lambda A, B: _nnr_terms(A, B, key_eff, a, k, owner)  # noqa: E731
        # the terms are averages over q's samples; the halves must keep k proportionate
        info.update({"k": k, "draws_averaged": "q's samples (E_q[g(p/q)])"})
    else:  # kde
        rule = o["bandwidth"]
        fn = lambda A, B: _kde_terms(A, B, key_eff, a, rule, owner)  # noqa: E731
        hx, hy = _bandwidth(X, rule, owner), _bandwidth(Y, rule, owner)
        info.update({"bandwidth_rule": rule if isinstance(rule, str) else "fixed", "bandwidth_p": hx.tolist(),
                     "bandwidth_q": hy.tolist(), "kernel": "gaussian (product, one bandwidth per coordinate)"})
    value, se = _reduce(key_eff, a, fn(X, Y))
    # Richardson-style bias indicator from the two halves
    gamma = 1.0 / d
    halves = []
    if X.shape[0] >= 8 and Y.shape[0] >= 8:
        for s in (0, 1):
            halves.append(_reduce(key_eff, a, fn(X[s::2], Y[s::2]))[0])
    err = abs(value - float(np.mean(halves))) / (2**gamma - 1) if halves and all(map(math.isfinite, halves)) else math.inf
    quarters = []
    if math.isfinite(err) and X.shape[0] >= 16 and Y.shape[0] >= 16:
        # the same from quarters vs halves (one more halving); the larger of the two indicators is kept
        quarters = [_reduce(key_eff, a, fn(X[s::4], Y[s::4]))[0] for s in range(4)]
        if all(map(math.isfinite, quarters)):
            b2 = abs(float(np.mean(halves)) - float(np.mean(quarters))) / (2**gamma * (2**gamma - 1))
            err = max(err, b2)
    if name == "nn_ratio" and k >= 2 and math.isfinite(err):
        # the ratio N/(M + 1) is a count: g(r̂) has a Jensen bias ~ 1/k that the halves (same k) do not
        # see; D̂(⌈k/2⌉) − D̂(k) is its Richardson estimate
        half_k = _reduce(key_eff, a, _nnr_terms(X, Y, key_eff, a, math.ceil(k / 2), owner))[0]
        info["half_k_value"] = half_k
        err += abs(half_k - value) if math.isfinite(half_k) else math.inf
    info.update({"bias_rate": gamma, "half_sample_values": halves, "quarter_sample_values": quarters,
                 "interval": "value ± (3·stderr + error): stderr from the per-sample terms, error a bias indicator "
                             "from the halves"})
    reason = None
    if not math.isfinite(value):
        info["unreliable"] = True
        info["warning"] = f"{name}: the per-sample terms average to 0 (no q mass seen near p's samples)"
        value = math.inf
        reason = info["warning"]
    return Estimate(value=torch.tensor(value, dtype=torch.float64), estimator=name, divergence=key, params=params,
                    stderr=se, error=err if math.isfinite(value) else 0.0, n=int(X.shape[0]), reason=reason, info=info)


def _bind(name, key):
    def fn(p, q, *, n=None, seed=None, options=None, **params):
        return sample_estimate(name, key, p, q, n=n, seed=seed, options=options, alpha=params.get("alpha"))

    fn.__name__ = f"{name}_{key}"
    fn.__doc__ = f"{_NAMES[name]} estimate of {key} (see divlab.estimators.samples)"
    return fn


def register() -> None:
    """Add the sample estimators to the ``kl`` and ``renyi`` registry entries (idempotent)."""
    from ..divergences.registry import get, keys

    for name, divs in SAMPLE_ESTIMATORS.items():
        for key in divs:
            if key in keys():
                get(key).estimator_fns.setdefault(name, _bind(name, key))
