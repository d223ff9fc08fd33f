"""Divergences built on log-integrals: Rényi, Bhattacharyya, Cauchy–Schwarz.

All are computed as logsumexp over the grid, which keeps them exact in the tails and turns
disjoint supports into +inf (log 0 = −inf) rather than NaN.
"""

from __future__ import annotations

import math

import torch

from ._util import as_t, finite_or, wlogsumexp
from .fdiv import FDIVS, f_from_logs, f_grad_from_logs

__all__ = ["renyi_from_logs", "log_chernoff_from_logs", "bhattacharyya_from_logs", "cs_from_logs",
           "renyi_grad_from_logs", "bhattacharyya_grad_from_logs"]


def log_chernoff_from_logs(lp, lq, w, alpha):
    """log ∫ p^α q^{1−α} by quadrature (α > 0). p = 0 points contribute 0; q = 0 < p points
    contribute 0 for α < 1 and +inf for α > 1."""
    a = as_t(alpha, lp)
    lp, lq = torch.broadcast_tensors(lp, lq)
    p_pos = lp > -math.inf
    q_pos = lq > -math.inf
    both = p_pos & q_pos
    t = a * finite_or(lp, both) + (1 - a) * finite_or(lq, both)
    t = torch.where(both, t, torch.full_like(t, -math.inf))
    only_p = p_pos & ~q_pos
    blow = only_p & (a > 1)
    t = torch.where(blow, torch.full_like(t, math.inf), t)
    return wlogsumexp(t, w)


def renyi_from_logs(lp, lq, w, alpha):
    """Rényi divergence D_α = log(∫ p^α q^{1−α}) / (α − 1); α = 1 is KL(p‖q)."""
    a = as_t(alpha, lp)
    kl = f_from_logs(FDIVS["kl"], lp, lq, w)
    is1 = a == 1
    a_s = torch.where(is1, torch.full_like(a, 0.5), a)
    val = log_chernoff_from_logs(lp, lq, w, a_s) / (a_s - 1)
    return torch.where(is1, kl, val)


def renyi_grad_from_logs(lp, lq, p, q, w, alpha):
    """(D_α, ∂D_α/∂lq_i / w_i) in the engine's grid-last layout (finite lp, lq; see
    :func:`divlab.divergences.fdiv.f_grad_from_logs`). With t = p^α q^{1−α} and S = Σ w t:
    D_α = log S / (α − 1) and ∂D_α/∂lq_i = w_i t_i (1 − α) / ((α − 1) S) = −w_i t_i / S."""
    a = as_t(alpha, lp)
    is1 = a == 1
    a_s = torch.where(is1, torch.full_like(a, 0.5), a)
    t = torch.exp(a_s * lp + (1 - a_s) * lq)
    s = t @ w
    val = torch.log(s) / (a_s - 1).reshape(-1) if a_s.dim() else torch.log(s) / (a_s - 1)
    d = -t / s.unsqueeze(-1)
    if not bool(is1.any()):
        return val, d
    kv, kd = f_grad_from_logs(FDIVS["kl"], lp, lq, p, q, w)
    one = is1.reshape(-1) if is1.dim() else is1
    return torch.where(one, kv, val), torch.where(is1, kd, d)


def bhattacharyya_grad_from_logs(lp, lq, p, q, w):
    """(−log Σ w √(pq), its derivative by lq_i over w_i = −½ √(p_i q_i) / S)."""
    t = torch.exp(0.5 * (lp + lq))
    s = t @ w
    return -torch.log(s), -0.5 * t / s.unsqueeze(-1)


def bhattacharyya_from_logs(lp, lq, w):
    """Bhattacharyya distance −log ∫ √(p q)."""
    return -log_chernoff_from_logs(lp, lq, w, 0.5)


def cs_from_logs(lp, lq, w):
    """Cauchy–Schwarz divergence −log ∫pq + ½ log ∫p² + ½ log ∫q² (scale invariant)."""
    lp, lq = torch.broadcast_tensors(lp, lq)
    both = (lp > -math.inf) & (lq > -math.inf)
    cross = torch.where(both, finite_or(lp, both) + finite_or(lq, both), torch.full_like(lp, -math.inf))
    return -wlogsumexp(cross, w) + 0.5 * wlogsumexp(2 * lp, w) + 0.5 * wlogsumexp(2 * lq, w)
