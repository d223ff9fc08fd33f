"""Closed forms registered per (divergence, type of p, type of q) — torch's ``register_kl`` idea.

The most specific registered pair wins (smallest total distance in the two MROs). A closed
form may decline a particular pair (return ``None``, e.g. a Mixture with a non-Gaussian
component); ``estimator="auto"`` then falls back to quadrature, and says so in the result.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..distributions import Mixture, MultivariateNormal, Normal
from .gaussian import gauss_moments, gm_components, gm_log_inner

__all__ = ["register_closed_form", "find_closed_form", "supported_pairs", "closed_form_table"]

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


# --------------------------------------------------------------------------- Gaussians
def _same_dim(p, q):
    return p.dim == q.dim


def _inv_logdet(S):
    L = torch.linalg.cholesky(S)
    return torch.cholesky_inverse(L), 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)


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
    """log ∫ p^α q^{1−α} for Gaussians; +inf where αS1⁻¹ + (1−α)S2⁻¹ is not positive definite.

    With A = αΛ1 + (1−α)Λ2 (Λ = S⁻¹) and Δ = m1 − m2:
    log J = −½ α Δᵀ Λ1 Δ + ½ α² Δᵀ Λ1 A⁻¹ Λ1 Δ − ½ log|A| − ½ α log|S1| − ½ (1−α) log|S2|.
    """
    m1, S1 = gauss_moments(p)
    m2, S2 = gauss_moments(q)
    L1, ld1 = _inv_logdet(S1)
    L2, ld2 = _inv_logdet(S2)
    A = alpha * L1 + (1 - alpha) * L2
    A = 0.5 * (A + A.transpose(-1, -2))
    ev = torch.linalg.eigvalsh(A)
    pd = (ev > 0).all(-1)
    eye = torch.eye(A.shape[-1], device=A.device, dtype=A.dtype)
    A_safe = torch.where(pd[..., None, None], A, eye.expand_as(A))
    Ainv, ldA = _inv_logdet(A_safe)
    d = (m1 - m2).unsqueeze(-1)
    v = L1 @ d
    quad = (d.transpose(-1, -2) @ v).squeeze(-1).squeeze(-1)
    quad2 = (v.transpose(-1, -2) @ Ainv @ v).squeeze(-1).squeeze(-1)
    logJ = -0.5 * alpha * quad + 0.5 * alpha * alpha * quad2 - 0.5 * ldA - 0.5 * alpha * ld1 - 0.5 * (1 - alpha) * ld2
    return torch.where(pd, logJ, torch.full_like(logJ, math.inf))


def _gauss_pairs():
    return [(Normal, Normal), (MultivariateNormal, MultivariateNormal)]


for P, Q in _gauss_pairs():

    @register_closed_form("kl", P, Q)
    def _kl(p, q):
        return gauss_kl(p, q) if _same_dim(p, q) else None

    @register_closed_form("reverse_kl", P, Q)
    def _rkl(p, q):
        return gauss_kl(q, p) if _same_dim(p, q) else None

    @register_closed_form("jeffreys", P, Q)
    def _jef(p, q):
        return gauss_kl(p, q) + gauss_kl(q, p) if _same_dim(p, q) else None

    @register_closed_form("renyi", P, Q)
    def _renyi(p, q, alpha):
        if alpha == 1:
            return gauss_kl(p, q)
        return gauss_log_chernoff(p, q, alpha) / (alpha - 1)

    @register_closed_form("alpha", P, Q)
    def _alpha(p, q, alpha):
        if alpha == 1:
            return gauss_kl(p, q)
        if alpha == 0:
            return gauss_kl(q, p)
        logJ = gauss_log_chernoff(p, q, alpha)
        # (1 − J) / (α(1 − α)), J = exp(logJ); +inf J gives +inf for α outside [0, 1]
        return -torch.expm1(logJ) / (alpha * (1 - alpha))

    @register_closed_form("tsallis", P, Q)
    def _tsallis(p, q, alpha):
        if alpha == 1:
            return gauss_kl(p, q)
        return torch.expm1(gauss_log_chernoff(p, q, alpha)) / (alpha - 1)

    @register_closed_form("hellinger", P, Q)
    def _hel(p, q):
        return -torch.expm1(gauss_log_chernoff(p, q, 0.5))

    @register_closed_form("bhattacharyya", P, Q)
    def _bha(p, q):
        return -gauss_log_chernoff(p, q, 0.5)


def _cs_gm(p, q):
    A, B = gm_components(p), gm_components(q)
    if A is None or B is None or p.dim != q.dim:
        return None
    return -gm_log_inner(A, B) + 0.5 * gm_log_inner(A, A) + 0.5 * gm_log_inner(B, B)


for P in (Normal, MultivariateNormal, Mixture):
    for Q in (Normal, MultivariateNormal, Mixture):
        register_closed_form("cauchy_schwarz", P, Q)(_cs_gm)
