"""Gaussian algebra shared by the closed forms: moments of Normal/MVN and Gaussian mixtures."""

from __future__ import annotations

import math

import torch

from ..distributions import Mixture, MultivariateNormal, Normal

__all__ = ["gauss_moments", "gm_components", "log_gauss_overlap", "gm_log_inner"]


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
