"""Transport maps from entropic OT: the entropic map T_ε and the Monge gap.

Cost c(x, y) = |x − y|² and OT_ε(a, b) = min_π ⟨C, π⟩ + ε KL(π‖a⊗b), as everywhere in divlab
(:mod:`divlab.divergences.transport`).

- **Entropic map** (Pooladian & Niles-Weed 2021): with the optimal potentials (f, g) of
  OT_ε(source, target), the barycentric projection of the plan,

      T_ε(x_i) = Σ_j π_ij y_j / Σ_j π_ij,

  extends to any point x through the target potential g alone,

      T_ε(x) = Σ_j b_j e^{(g_j − |x − y_j|²)/ε} y_j / Σ_j b_j e^{(g_j − |x − y_j|²)/ε},

  (the two agree on the source points: f_i cancels). As ε → 0 it tends to the Brenier map
  (for Gaussians, the linear map x ↦ m₂ + A(x − m₁), A = Σ₁^{-½}(Σ₁^{½}Σ₂Σ₁^{½})^{½}Σ₁^{-½});
  large ε shrinks it towards the target's mean.
- **Monge gap** (Uscidda & Cuturi, *The Monge gap*, ICML 2023): for a map T and a source
  measure ρ,

      M_ε(T) = Σ_i a_i c(x_i, T(x_i)) − OT_ε(ρ, T#ρ),

  the cost of moving each point by T minus the (entropic) optimal cost between ρ and its
  image. M_0(T) ≥ 0 with equality iff T is an optimal (Monge) map for c between ρ and T#ρ.
  With entropy the identity coupling pays ε KL(diag(a)‖a⊗a) = ε H(a) (ε log n for n uniform
  points), so −ε H(a) ≤ M_ε(T) and M_ε(T) → M_0(T) as ε → 0. Example: on a symmetric ρ,
  x ↦ −x has T#ρ = ρ, so M_0 = E|2X|² = 4E X² (4 Var for centred ρ), while any increasing
  1D map has M_0 = 0.

Both are differentiable in the points (envelope gradients of OT_ε, :mod:`ot_solver`): a
Monge-gap regularizer can be added to a loss that trains T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..distributions import Distribution, Empirical
from . import ot_solver as S

__all__ = ["entropic_map", "monge_gap", "EntropicMap"]


def _points(owner, name, v, dtype=None):
    """(points (n, d), weights (n,) or None) from an array, a tensor or an Empirical."""
    if isinstance(v, Empirical):
        x, w = v.cloud()
        return x, w
    if isinstance(v, Distribution):
        raise ValueError(f"{owner}({name}={type(v).__name__}): {name} must be samples (an array, a tensor or an "
                         "Empirical); draw them first, e.g. d.sample(1000, seed=0)")
    if not isinstance(v, torch.Tensor):
        try:
            v = torch.as_tensor(np.asarray(v, dtype=float), dtype=dtype or torch.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{owner}({name}=...): {name} must be an array of numbers ({exc})") from None
    if v.dim() == 1:
        v = v[:, None]
    if v.dim() != 2 or v.shape[0] < 1:
        raise ValueError(f"{owner}({name} with shape {tuple(v.shape)}): {name} must have shape (n,) or (n, d), n ≥ 1")
    if not bool(torch.isfinite(v.detach()).all()):
        raise ValueError(f"{owner}({name}=...): {name} must be finite (no NaN or inf)")
    return v, None


def _weights(owner, name, w, n, like):
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(w, dtype=like.dtype, device=like.device).reshape(-1)
    if w.shape[0] != n or bool((w < 0).any()) or not float(w.sum()) > 0:
        raise ValueError(f"{owner}({name}=...): {name} must be {n} non-negative numbers with a positive sum")
    return w / w.sum()


def _check_eps(owner, eps):
    e = float(eps.detach()) if isinstance(eps, torch.Tensor) else eps
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e <= 0:
        raise ValueError(f"{owner}(epsilon={eps!r}): epsilon must be a finite number > 0")
    return eps


@dataclass
class EntropicMap:
    """The entropic map T_ε from ``source`` to ``target`` (see the module docstring).

    ``images``: T_ε at the source points (n, d); calling the object on points (m, d) or (m,)
    evaluates T_ε there (out of sample, through the target potential g). ``potentials``: (f, g);
    ``info``: solver iterations, marginal error, status, backend.
    """

    source: torch.Tensor
    target: torch.Tensor
    target_weights: torch.Tensor
    epsilon: float
    g: torch.Tensor
    images: torch.Tensor
    potentials: tuple
    info: dict = field(default_factory=dict)

    def __call__(self, points) -> torch.Tensor:
        x, _ = _points("EntropicMap", "points", points, self.target.dtype)
        if x.shape[1] != self.target.shape[1]:
            raise ValueError(f"EntropicMap(points with dimension {x.shape[1]}): the map is "
                             f"{self.target.shape[1]}D")
        x = x.to(self.target.dtype)
        c = self.info["center"]
        _, out = S.ctransform(self.epsilon, x - c, self.target - c, self.target_weights.log() + self.g / self.epsilon,
                              need=("bary",))
        return out["bary"] + c


def entropic_map(source_samples, target_samples, epsilon: float, *, source_weights=None, target_weights=None,
                 tol: float = 1e-9, max_iter: int = 10_000, backend: str = "auto") -> EntropicMap:
    """The entropic OT map T_ε(x) = Σ_j π_ij y_j / Σ_j π_ij between two samples (cost |x − y|²).

    ``source_samples`` (n,) / (n, d) and ``target_samples`` (m,) / (m, d): arrays, tensors or
    :class:`~divlab.Empirical` clouds (their weights are used); ``epsilon`` > 0 in squared units
    of x. Returns an :class:`EntropicMap` (callable: out-of-sample evaluation; ``.images``: the
    map at the source points, differentiable in the target points through the barycentres).
    """
    owner = "entropic_map"
    _check_eps(owner, epsilon)
    x, wx = _points(owner, "source_samples", source_samples)
    y, wy = _points(owner, "target_samples", target_samples, x.dtype)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{owner}: source_samples are {x.shape[1]}D and target_samples {y.shape[1]}D; "
                         "they must have the same dimension")
    y = y.to(x.dtype)
    a = wx if wx is not None else _weights(owner, "source_weights", source_weights, x.shape[0], x)
    b = wy if wy is not None else _weights(owner, "target_weights", target_weights, y.shape[0], y)
    c = torch.cat([x.detach(), y.detach()]).mean(0)
    xc, yc = x - c, y - c
    e = float(epsilon)
    with torch.no_grad():
        f, g, iters, err, status, backend = S.solve_ab(xc.detach(), a.log(), yc.detach(), b.log(), e, tol=tol,
                                                       max_iter=max_iter, backend=backend)
    _, out = S.ctransform(e, xc, yc, b.log() + g / e, need=("bary",), guess=f)
    info = {"iterations": iters, "marginal_error": err, "status": status, "backend": backend, "center": c}
    return EntropicMap(source=x, target=y, target_weights=b, epsilon=e, g=g, images=out["bary"] + c,
                       potentials=(f, g), info=info)


def monge_gap(T, source, epsilon: float = 0.01, *, weights=None, tol: float = 1e-9, max_iter: int = 10_000,
              backend: str = "auto", return_info: bool = False):
    """Monge gap M_ε(T) = Σ_i a_i |x_i − T(x_i)|² − OT_ε(ρ, T#ρ) of a map on a source sample.

    ``T``: a callable on points (n, d) → (n, d) (a 1D source is passed as (n,); (n,) or (n, 1)
    back), or a tensor /
    array of the images T(x_i) (same shape as the source). ``source``: the sample of ρ
    ((n,) / (n, d) array or tensor, or an Empirical with weights). ``epsilon`` > 0 (squared units
    of x): the entropic blur of OT_ε; −ε H(a) ≤ M_ε ≤ M_0 + o(1), M_ε → M_0 as ε → 0 (see the
    module docstring). Differentiable in the source points and in T's images (envelope
    gradient). Returns a 0-dim tensor (and the OT_ε info with ``return_info=True``).
    """
    from .transport import ot_eps

    owner = "monge_gap"
    _check_eps(owner, epsilon)
    x, w = _points(owner, "source", source)
    a = w if w is not None else _weights(owner, "weights", weights, x.shape[0], x)
    if callable(T) and not isinstance(T, (torch.Tensor, np.ndarray)):
        Tx = T(x[:, 0] if x.shape[1] == 1 else x)
        Tx = torch.as_tensor(Tx, dtype=x.dtype) if not isinstance(Tx, torch.Tensor) else Tx
    else:
        Tx = T if isinstance(T, torch.Tensor) else torch.as_tensor(np.asarray(T, dtype=float), dtype=x.dtype)
    Tx = Tx.to(x.dtype)
    if Tx.dim() == 1:
        Tx = Tx[:, None]
    if Tx.shape != x.shape:
        raise ValueError(f"{owner}(T=...): T's images have shape {tuple(Tx.shape)}, the source {tuple(x.shape)}; "
                         "they must match")
    if not bool(torch.isfinite(Tx.detach()).all()):
        raise ValueError(f"{owner}(T=...): T's images must be finite")
    displacement = (a * ((x - Tx) ** 2).sum(1)).sum()
    ot, info = ot_eps(x, a, Tx, a, epsilon, tol=tol, max_iter=max_iter, backend=backend)
    gap = displacement - ot
    info = dict(info, displacement=float(displacement.detach()), ot_eps=float(ot.detach()),
                entropy_bound=float(epsilon) * float(-(a * a.log()).sum()))
    return (gap, info) if return_info else gap
