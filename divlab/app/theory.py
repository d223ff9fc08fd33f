"""The Theory page: f(u), the gradient weight h(r) and h along x."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..distributions import Distribution
from ..divergences.registry import catalogue, get
from .state import (  # noqa: F401
    EXCLUDED,
)


# -- Theory ---------------------------------------------------------------------------------------


def f_divergence_keys() -> list[str]:
    """Registry f-divergences with a named f (the generic one needs a user function)."""
    return [s.key for s in catalogue() if s.fdiv is not None and s.key not in EXCLUDED]


def f_h_curves(keys: Sequence[str], u_max: float = 4.0, r_range: tuple[float, float] = (1e-2, 1e2),
               n: int = 300) -> dict:
    """f(u) on (0, u_max] and h(r) = r² f''(r) on a log grid of r, per divergence (default
    parameters), from the registry's ``fdiv`` objects; h is None where f'' is not a function (TV)."""
    import torch

    u = torch.linspace(u_max / n, u_max, n, dtype=torch.float64)
    r = torch.logspace(math.log10(r_range[0]), math.log10(r_range[1]), n, dtype=torch.float64)
    out = {}
    for key in keys:
        spec = get(key)
        if spec.fdiv is None:
            raise ValueError(f"f_h_curves(keys=[..., {key!r}]): {spec.name} is not an f-divergence")
        params = spec.resolve_params({})
        fu = spec.fdiv.f(u, **params).detach().cpu().numpy()
        h = None if spec.fdiv.h is None else spec.fdiv.h(r, **params).detach().cpu().numpy()
        out[spec.label(**params)] = {"key": key, "u": u.numpy(), "f": fu, "r": r.numpy(), "h": h,
                                     "note": spec.fdiv.h_note if spec.fdiv.h is None else ""}
    return out


def h_along_x(target: Distribution, model: Distribution, keys: Sequence[str], x: np.ndarray) -> dict:
    """h(r(x)) with r = p(x)/q(x) along ``x`` for each f-divergence with a smooth h."""
    import torch

    with torch.no_grad():
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=target.dtype, device=target.device)
        lr = (target.log_prob(xt) - model.log_prob(xt.to(model.dtype))).cpu().double()
    r = torch.exp(lr.clamp(-700, 700))
    out = {}
    for key in keys:
        spec = get(key)
        if spec.fdiv is None or spec.fdiv.h is None:
            continue
        params = spec.resolve_params({})
        out[spec.label(**params)] = (key, spec.fdiv.h(r, **params).numpy())
    return out
