"""Small numerical helpers shared by the divergence modules (log-space, safe where)."""

from __future__ import annotations

import math

import torch

NEG_INF = float("-inf")
LOG2 = math.log(2.0)


def as_t(x, like: torch.Tensor) -> torch.Tensor:
    """A parameter as a tensor on ``like``'s device and dtype (keeps tensors' graphs)."""
    if isinstance(x, torch.Tensor):
        return x.to(device=like.device, dtype=like.dtype)
    return torch.tensor(float(x), device=like.device, dtype=like.dtype)


def wsum(values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Σ_i w_i values_i over the leading (grid) dimension; values: (N, *batch)."""
    return (values * w.reshape((-1,) + (1,) * (values.dim() - 1))).sum(0)


def wlogsumexp(logvals: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """log Σ_i w_i exp(logvals_i) over the leading dimension, stable for -inf entries."""
    lw = torch.log(w).reshape((-1,) + (1,) * (logvals.dim() - 1))
    return torch.logsumexp(logvals + lw, dim=0)


def finite_or(x: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """``x`` where ``mask`` else ``fill`` — applied *before* an operation to keep gradients
    free of NaN (the double-where trick)."""
    return torch.where(mask, x, torch.full_like(x, fill))
