"""Monte Carlo estimators of density divergences (estimator ``"mc"``), reparameterized.

- ``kl``: KL(p‖q) = E_p[log p − log q], draws from the target p.
- ``reverse_kl``: KL(q‖p) = E_q[log q − log p], draws from the model q (``rsample``: the
  estimate is differentiable in q's parameters — the variational-inference gradient).
- ``alpha`` (Minka): D_α = (1 − E_q[(p/q)^α]) / (α(1 − α)), draws from q; α = 1 and α = 0 are
  the two KLs above. Unbiased; its variance is finite only where E_q[(p/q)^{2α}] is, so for
  α outside [0, 1] (or heavy-tailed p/q) the standard error can be unreliable.

Each is an unbiased average of i.i.d. terms; ``stderr`` = sample sd / √n (the largest over a
batch). A draw where the denominator density is 0 makes the value +inf, with the reason in
words. Options: none (``n`` and ``seed`` are the arguments of ``estimate``).
"""

from __future__ import annotations

import math

import torch

from ..distributions import Distribution
from .result import Estimate

__all__ = ["mc_kl", "mc_reverse_kl", "mc_alpha", "DEFAULT_N"]

DEFAULT_N = 4096


def _check(owner, p, q, n, options):
    if options:
        raise ValueError(f"{owner}: unknown option {sorted(options)[0]!r} (the mc estimator takes none)")
    for name, d in (("p", p), ("q", q)):
        if not isinstance(d, Distribution) or not getattr(d, "has_density", True):
            raise ValueError(f"{owner}: the mc estimator needs densities, and {name} = {type(d).__name__} has none")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise ValueError(f"{owner}(n={n!r}): n must be an integer >= 2")
    return n or DEFAULT_N


def _draw(d, n, seed):
    return d.rsample(n, seed=seed) if d.has_rsample else d.sample(n, seed=seed)


def _mean_se(terms: torch.Tensor):
    n = terms.shape[0]
    finite = torch.isfinite(terms.detach())
    value = terms.mean(0)
    t = torch.where(finite, terms.detach(), torch.zeros_like(terms.detach()))
    se = float((t.std(0) / math.sqrt(n)).max()) if n > 1 else 0.0
    return value, se


def _log_ratio_terms(a, b, x):
    """log a(x) − log b(x), with +inf where b = 0 < a and 0·(−inf) avoided."""
    la, lb = a.log_prob(x), b.log_prob(x.to(b.dtype)).to(a.dtype)
    return la - lb, lb


def _result(key, value, se, n, params, reason_if_inf, info=None):
    reason = reason_if_inf if bool(torch.isinf(value.detach()).any()) else None
    return Estimate(value=value, estimator="mc", divergence=key, params=params, stderr=se if reason is None else 0.0,
                    n=n, reason=reason, info=info or {})


def mc_kl(p, q, *, n=None, seed=None, options=None):
    """KL(p‖q) ≈ (1/n) Σ log p(x_i) − log q(x_i), x_i ~ p."""
    n = _check("divergence('kl') mc", p, q, n, options)
    x = _draw(p, n, seed)
    terms, _ = _log_ratio_terms(p, q, x)
    value, se = _mean_se(terms)
    return _result("kl", value, se, n, {}, "KL(p‖q) is infinite: a draw from the target p landed where the model q = 0")


def mc_reverse_kl(p, q, *, n=None, seed=None, options=None):
    """KL(q‖p) ≈ (1/n) Σ log q(x_i) − log p(x_i), x_i ~ q (reparameterized)."""
    n = _check("divergence('reverse_kl') mc", p, q, n, options)
    x = _draw(q, n, seed)
    terms, _ = _log_ratio_terms(q, p, x)
    value, se = _mean_se(terms)
    return _result("reverse_kl", value, se, n, {},
                   "KL(q‖p) is infinite: a draw from the model q landed where the target p = 0")


def mc_alpha(p, q, *, n=None, seed=None, options=None, alpha=0.5):
    """D_α ≈ (1 − (1/n) Σ (p/q)^α(x_i)) / (α(1 − α)), x_i ~ q."""
    owner = "divergence('alpha') mc"
    a = float(alpha)
    if a == 1.0:
        est = mc_kl(p, q, n=n, seed=seed, options=options)
    elif a == 0.0:
        est = mc_reverse_kl(p, q, n=n, seed=seed, options=options)
    else:
        n = _check(owner, p, q, n, options)
        x = _draw(q, n, seed)
        lr, _ = _log_ratio_terms(p, q, x)  # log p/q at draws from q (q > 0 there)
        terms = -torch.expm1(a * lr) / (a * (1 - a))
        value, se = _mean_se(terms)
        return _result("alpha", value, se, n, {"alpha": a},
                       f"D_α (α={a:g}) is infinite: (p/q)^α overflowed at a draw from q")
    est.divergence, est.params = "alpha", {"alpha": a}
    return est


def register() -> None:
    """Add ``"mc"`` to the registry entries of kl, reverse_kl and alpha (idempotent)."""
    from ..divergences.registry import get

    for key, fn in (("kl", mc_kl), ("reverse_kl", mc_reverse_kl), ("alpha", mc_alpha)):
        get(key).estimator_fns.setdefault("mc", fn)
