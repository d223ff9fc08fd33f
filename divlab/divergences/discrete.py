"""Divergences between two :class:`~divlab.distributions.Categorical` distributions, exactly.

Over K outcomes every density divergence of the registry is a finite sum, and its registry
entry already knows the sum: ``from_logs(lp, lq, w)`` with the outcomes as "grid points" and
weights ``w = 1`` *is* Σ_i q_i f(p_i/q_i) (or Rényi's log Σ p^α q^{1−α}, ...), including the
limits where p_i or q_i is 0. So this module registers, for every density divergence, a closed
form for the pair (Categorical, Categorical) that calls it on the log-probabilities: no grid,
no error bar, and +inf exactly where the divergence is infinite. :func:`discrete_reason` says
why in words, naming the first outcome responsible.

The sample divergences get exact sums over the outcomes' positions on a line (the numeric
labels, else the indices; :meth:`Categorical.positions`):

- ``wasserstein`` W_p: quantile coupling in 1D, W_p^p = ∫₀¹ |F_p⁻¹(u) − F_q⁻¹(u)|^p du, summed
  exactly over the merged jumps of the two CDFs (W_1 = Σ |F_p − F_q| Δx);
- ``mmd`` MMD² = (p − q)ᵀ K (p − q) with the kernel on positions (K ≤ 20 000 outcomes; the
  "unbiased" statistic of samples has no meaning for exact distributions, so both statistics
  give this one value);
- ``energy`` = MMD² with the kernel −|x − y| (= 2 Σ (F_p − F_q)² Δx in 1D, no K limit);
- ``sliced_wasserstein`` = W_p (a measure on a line is its own projection);
- ``sinkhorn`` S_ε between the two discrete measures, solved (no sampling; K ≤ 5 000).

The score-based divergences (KSD, Fisher) do not apply: outcomes have no d/dx log p.
"""

from __future__ import annotations

import math

import torch

from ..distributions.categorical import Categorical
from .closed_form import register_closed_form
from .registry import catalogue, get

__all__ = ["discrete_reason", "categorical_sum", "wasserstein_categorical", "mmd2_categorical",
           "energy_categorical", "sinkhorn_categorical", "sliced_categorical", "MMD_MAX_OUTCOMES", "DENSITY_KEYS"]

#: largest K for the exact MMD² (a K × K kernel sum)
MMD_MAX_OUTCOMES = 20_000


def _aligned(p: Categorical, q: Categorical, key: str):
    if p.K != q.K:
        raise ValueError(f"divergence({key!r}): p has {p.K} outcomes and q has {q.K}; two Categoricals must "
                         "share their outcomes")
    if p.labels is not None and q.labels is not None and p.labels != q.labels:
        i = next(j for j, (a, b) in enumerate(zip(p.labels, q.labels)) if a != b)
        raise ValueError(f"divergence({key!r}): outcome {i} is {p.labels[i]!r} in p but {q.labels[i]!r} in q; "
                         "two Categoricals must list the same outcomes in the same order")


def _logs(p: Categorical, q: Categorical):
    lq = q.log_probs.to(device=p.device, dtype=p.dtype)
    return p.log_probs.movedim(-1, 0), lq.movedim(-1, 0)


def categorical_sum(key: str, p: Categorical, q: Categorical, **params) -> torch.Tensor:
    """D(p‖q) as the exact sum over outcomes: the registry entry's ``from_logs`` with unit weights."""
    spec = get(key)
    _aligned(p, q, key)
    lp, lq = _logs(p, q)
    w = torch.ones(p.K, device=p.device, dtype=p.dtype)
    return spec.from_logs(lp, lq, w, **params)


DENSITY_KEYS = tuple(s.key for s in catalogue() if s.from_logs is not None)


def _register_density(key: str):
    def fn(p, q, **params):
        return categorical_sum(key, p, q, **params)

    fn.__name__ = f"categorical_{key}"
    fn.__doc__ = f"Exact {key} between two Categoricals: the sum over outcomes."
    register_closed_form(key, Categorical, Categorical)(fn)


for _k in DENSITY_KEYS:
    _register_density(_k)


# --------------------------------------------------------------------------- infinite values in words
def _first(mask: torch.Tensor) -> int:
    m = mask.reshape(mask.shape[0], -1).any(-1)
    return int(torch.nonzero(m)[0])


def discrete_reason(key: str, p: Categorical, q: Categorical, params: dict | None, value) -> str | None:
    """Why ``value`` (the divergence ``key`` between Categoricals p and q) is +inf, in words that
    name the first outcome responsible; ``None`` when the value is finite.

    e.g. "KL(p‖q), forward is infinite: the model q gives outcome 'cat' (index 2) probability 0
    where the target p gives it 0.25"."""
    v = torch.as_tensor(value).detach()
    if not bool(torch.isinf(v).any()):
        return None
    spec = get(key)
    params = {k: val for k, val in (params or {}).items()}
    label = spec.label(**{k: val for k, val in params.items() if not callable(val)})
    lp, lq = _logs(p, q)
    lp, lq = torch.broadcast_tensors(lp, lq)
    p_pos, q_pos = lp > -math.inf, lq > -math.inf
    only_p, only_q = p_pos & ~q_pos, q_pos & ~p_pos

    def pv(lt, i):
        return float(lt.reshape(lt.shape[0], -1)[i].exp().max())

    def say_p(i):
        return (f"{label} is infinite: the model q gives outcome {p.label(i)} probability 0 where the target p "
                f"gives it {pv(lp, i):.4g}")

    def say_q(i):
        return (f"{label} is infinite: the model q gives outcome {p.label(i)} probability {pv(lq, i):.4g} "
                "where the target p gives it 0")

    if spec.fdiv is not None or key == "f_divergence":
        if key == "f_divergence":
            from .fdiv import generic_fdivergence

            fd = generic_fdivergence(params["f"], check=False)
            fparams = {}
        else:
            fd, fparams = spec.fdiv, params
        if bool(only_p.any()) and math.isinf(float(fd.fprime_inf(**fparams))):
            return say_p(_first(only_p))
        if bool(only_q.any()) and math.isinf(float(fd.f0(**fparams))):
            return say_q(_first(only_q))
    if not bool((p_pos & q_pos).any()):
        return f"{label} is infinite: p and q share no outcome (disjoint supports)"
    if key == "renyi" and bool(only_p.any()):
        return (f"{label} is infinite: for α > 1 an outcome with q = 0 < p makes Σ p^α q^(1−α) diverge: "
                f"outcome {p.label(_first(only_p))} has p = {pv(lp, _first(only_p)):.4g}, q = 0")
    return f"{label} overflowed: the ratio p/q is too large on some outcome (beyond floating point)"


# --------------------------------------------------------------------------- sample divergences, exact
def _check_pair(p, q, key):
    _aligned(p, q, key)
    if p.batch_shape or q.batch_shape:
        raise ValueError(f"divergence({key!r}) between Categoricals: batched Categoricals are not supported here "
                         "(give one distribution each)")


def wasserstein_categorical(p: Categorical, q: Categorical, order: int = 2) -> torch.Tensor:
    """Exact W_p on the outcomes' positions (1D): the quantile coupling, summed over the merged
    jumps of the two CDFs. W_1 = Σ_i |F_p(x_i) − F_q(x_i)| (x_{i+1} − x_i)."""
    _check_pair(p, q, "wasserstein")
    x = p.positions()
    a = p.probs
    b = q.probs.to(device=a.device, dtype=a.dtype)
    if order == 1:
        diff = (torch.cumsum(a, 0) - torch.cumsum(b, 0))[:-1].abs()
        return (diff * (x[1:] - x[:-1])).sum()
    # quantile functions: u in (0, 1] split at every CDF value of p and q
    Fa, Fb = torch.cumsum(a, 0).clamp(max=1.0), torch.cumsum(b, 0).clamp(max=1.0)
    Fa[-1] = 1.0
    Fb[-1] = 1.0
    u = torch.unique(torch.cat([Fa, Fb]))  # sorted levels
    du = torch.diff(torch.cat([u.new_zeros(1), u]))
    mid = u - 0.5 * du
    ia = torch.searchsorted(Fa.contiguous(), mid).clamp(max=p.K - 1)
    ib = torch.searchsorted(Fb.contiguous(), mid).clamp(max=p.K - 1)
    wpp = (du * (x[ia] - x[ib]).abs() ** order).sum()
    return wpp ** (1.0 / order)


def mmd2_categorical(p: Categorical, q: Categorical, kernel: str = "gaussian", bandwidth: float = 1.0,
                     statistic: str = "unbiased") -> torch.Tensor:
    """Exact MMD² = (p − q)ᵀ K (p − q), K_ij = k(x_i, x_j) on positions (blocks of 2048 rows)."""
    from .kernel import kernel_matrix

    _check_pair(p, q, "mmd")
    if kernel == "energy":
        return energy_categorical(p, q)
    if p.K > MMD_MAX_OUTCOMES:
        raise ValueError(f"divergence('mmd') between Categoricals: the exact sum is K × K; K = {p.K} is more than "
                         f"{MMD_MAX_OUTCOMES} outcomes (use 'energy' or 'wasserstein', exact for any K)")
    x = p.positions().reshape(-1, 1)
    d = p.probs - q.probs.to(device=p.device, dtype=p.dtype)
    total = d.new_zeros(())
    for s in range(0, p.K, 2048):
        Kb = kernel_matrix(x[s:s + 2048], x, kernel, float(bandwidth))
        total = total + d[s:s + 2048] @ (Kb @ d)
    return total


def energy_categorical(p: Categorical, q: Categorical, statistic: str = "unbiased") -> torch.Tensor:
    """Exact energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| = 2 Σ (F_p − F_q)² Δx on positions (1D)."""
    _check_pair(p, q, "energy")
    x = p.positions()
    d = torch.cumsum(p.probs - q.probs.to(device=p.device, dtype=p.dtype), 0)[:-1]
    return 2.0 * (d * d * (x[1:] - x[:-1])).sum()


#: largest K for the Sinkhorn divergence between Categoricals (a K × K cost matrix)
SINKHORN_MAX_OUTCOMES = 5_000


def sinkhorn_categorical(p: Categorical, q: Categorical, epsilon: float = 0.1, debias: bool = True) -> torch.Tensor:
    """The Sinkhorn divergence S_ε between the two discrete measures themselves (positions and
    probabilities; cost |x − y|²), solved to tolerance 1e-9: no sampling. Outcomes without mass
    are left out of each measure (K ≤ 5 000)."""
    from .transport import sinkhorn_divergence

    _check_pair(p, q, "sinkhorn")
    if p.K > SINKHORN_MAX_OUTCOMES:
        raise ValueError(f"divergence('sinkhorn') between Categoricals: K = {p.K} is more than {SINKHORN_MAX_OUTCOMES} "
                         "outcomes (a K × K cost); use 'wasserstein' or 'energy', exact for any K")
    x = p.positions().reshape(-1, 1)
    a, b = p.probs, q.probs.to(device=p.device, dtype=p.dtype)
    ma, mb = a > 0, b > 0
    value, _ = sinkhorn_divergence(x[ma], a[ma], x[mb], b[mb], float(epsilon), debias=bool(debias))
    return value


def sliced_categorical(p: Categorical, q: Categorical, order: int = 2, n_projections: int = 100) -> torch.Tensor:
    """Sliced W_p of two measures on a line: every projection of a 1D measure is the measure itself
    (up to sign), so it is W_p exactly (``n_projections`` does not matter)."""
    return wasserstein_categorical(p, q, order)


register_closed_form("wasserstein", Categorical, Categorical)(wasserstein_categorical)
register_closed_form("sinkhorn", Categorical, Categorical)(sinkhorn_categorical)
register_closed_form("sliced_wasserstein", Categorical, Categorical)(sliced_categorical)
register_closed_form("mmd", Categorical, Categorical)(mmd2_categorical)
register_closed_form("energy", Categorical, Categorical)(energy_categorical)
