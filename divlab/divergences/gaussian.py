"""Gaussian algebra shared by the closed forms: moments of Normal/MVN and Gaussian mixtures, and
the Gaussian power integrals log ∫ Π_k N(x; m_k, Σ_k)^{a_k} behind Chernoff coefficients and χ²."""

from __future__ import annotations

import math

import torch

from ..distributions import Mixture, MultivariateNormal, Normal

__all__ = ["gauss_moments", "gm_components", "log_gauss_overlap", "gm_log_inner", "gauss_power_precision",
           "gauss_power_is_pd", "log_gauss_power_integral"]


def gauss_moments(d):
    """(mean (..., k), cov (..., k, k)) of a Normal (k = 1) or MultivariateNormal (k = 2)."""
    if isinstance(d, Normal):
        return d.loc.unsqueeze(-1), (d.scale**2).unsqueeze(-1).unsqueeze(-1)
    if isinstance(d, MultivariateNormal):
        return d.mean, d.cov
    raise TypeError(type(d).__name__)


def gm_components(d):
    """[(log weight, mean, cov)] if ``d`` is a Gaussian or a mixture of Gaussians with no batch,
    else None."""
    if isinstance(d, (Normal, MultivariateNormal)):
        if d.batch_shape:
            return None
        m, c = gauss_moments(d)
        return [(torch.zeros((), device=m.device, dtype=m.dtype), m, c)]
    if isinstance(d, Mixture) and d.is_gaussian and not d.batch_shape and d.weights.dim() == 1:
        out = []
        for lw, c in zip(torch.log(d.weights), d.components):
            if c.batch_shape:
                return None
            m, cv = gauss_moments(c)
            out.append((lw, m, cv))
        return out
    return None


def log_gauss_overlap(m1, c1, m2, c2):
    """log ∫ N(x; m1, c1) N(x; m2, c2) dx = log N(m1; m2, c1 + c2)."""
    S = c1 + c2
    L = torch.linalg.cholesky(S)
    diff = (m1 - m2).unsqueeze(-1)
    z = torch.linalg.solve_triangular(L, diff, upper=False).squeeze(-1)
    k = m1.shape[-1]
    return -0.5 * (z * z).sum(-1) - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) - 0.5 * k * math.log(2 * math.pi)


def gm_log_inner(A, B):
    """log ∫ p q for Gaussian mixtures given as component lists (see gm_components)."""
    terms = [la + lb + log_gauss_overlap(ma, ca, mb, cb) for la, ma, ca in A for lb, mb, cb in B]
    return torch.logsumexp(torch.stack(terms), dim=0)


def _inv_logdet(S):
    """(S⁻¹, log|S|) through a Cholesky factor, batched over leading dimensions."""
    L = torch.linalg.cholesky(S)
    return torch.cholesky_inverse(L), 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)


def gauss_power_precision(terms):
    """A = Σ_k a_k Σ_k⁻¹ for ``terms = [(a_k, mean_k, cov_k)]`` (symmetrized), the list of
    (Σ_k⁻¹, log|Σ_k|) and the tolerance scale Σ_k |a_k| ‖Σ_k⁻¹‖_F. The integral of
    Π_k N(x; m_k, Σ_k)^{a_k} is finite iff A is positive definite."""
    precs = [_inv_logdet(S) for _, _, S in terms]
    A = sum(a * Lam for (a, _, _), (Lam, _) in zip(terms, precs))
    scale = sum(abs(a) * torch.linalg.matrix_norm(Lam.detach()) for (a, _, _), (Lam, _) in zip(terms, precs))
    return 0.5 * (A + A.transpose(-1, -2)), precs, scale


def gauss_power_is_pd(A, scale):
    """Positive definiteness of a precision sum ``A = Σ a_k Λ_k``, with a relative tolerance:
    an eigenvalue within 64 ulps of ``scale`` (Σ |a_k| ‖Λ_k‖, the size of the terms that
    cancel) cannot be told from 0 by the float parameters, and the exact boundary (e.g.
    σp² = 2σq² for χ²) is an infinite integral; such an eigenvalue counts as not positive.
    Returns (mask, eigenvalues)."""
    ev = torch.linalg.eigvalsh(A)
    return ev.amin(-1) > 64 * torch.finfo(A.dtype).eps * scale, ev


def log_gauss_power_integral(terms):
    """log ∫ Π_k N(x; m_k, Σ_k)^{a_k} dx for real exponents a_k (batched); +inf where it diverges.

    Writing the exponent as f(x) = −½ Σ_k a_k (x − m_k)ᵀ Σ_k⁻¹ (x − m_k), a quadratic with
    Hessian −A, A = Σ_k a_k Σ_k⁻¹: the integral is finite iff A is positive definite, and then
    (maximizer x* = A⁻¹ Σ_k a_k Σ_k⁻¹ m_k)

        log ∫ = f(x*) − ½ Σ_k a_k log|Σ_k| − ½ log|A| + ½ k (1 − Σ_k a_k) log 2π.

    Positions are measured from the first mean (less cancellation for far-away means). Special
    cases: the Chernoff coefficient ∫p^α q^{1−α} (a = (α, 1−α)) and ∫p²/q (a = (2, −1)) for
    χ², or ∫N_i N_j / N_q (a = (1, 1, −1)) for a mixture's χ² terms.
    """
    A, precs, scale = gauss_power_precision(terms)
    pd, _ = gauss_power_is_pd(A.detach(), scale)
    eye = torch.eye(A.shape[-1], device=A.device, dtype=A.dtype)
    A_safe = torch.where(pd[..., None, None], A, eye.expand_as(A))
    Ainv, ldA = _inv_logdet(A_safe)
    x0 = terms[0][1]
    ds = [(m - x0).unsqueeze(-1) for _, m, _ in terms]
    b = sum(a * (Lam @ d) for (a, _, _), (Lam, _), d in zip(terms, precs, ds))
    y = Ainv @ b
    f = 0.0
    for (a, _, _), (Lam, _), d in zip(terms, precs, ds):
        r = y - d
        f = f - 0.5 * a * (r.transpose(-1, -2) @ Lam @ r).squeeze(-1).squeeze(-1)
    k = A.shape[-1]
    s = sum(a for a, _, _ in terms)
    logI = f - 0.5 * sum(a * ld for (a, _, _), (_, ld) in zip(terms, precs)) - 0.5 * ldA \
        + 0.5 * k * (1 - s) * math.log(2 * math.pi)
    logI = logI + torch.zeros(pd.shape, device=A.device, dtype=A.dtype)
    return torch.where(pd, logI, torch.full_like(logI, math.inf))
