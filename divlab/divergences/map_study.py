"""Which map? The Monge gap's lessons, as numbers (issue 17).

The Monge gap of a map T on a source sample ρ = Σ a_i δ_{x_i} (:func:`divlab.monge_gap`, cost
|x − y|²) is M_ε(T) = Σ_i a_i |x_i − T(x_i)|² − OT_ε(ρ, T#ρ). Without entropy M_0(T) ≥ 0, with
equality exactly when T is an optimal (Monge) map from ρ to T#ρ. With entropy

    M_0(T) − ε H(a) ≤ M_ε(T) ≤ M_0(T),    H(a) = −Σ a_i log a_i  (= log n for uniform weights),

because OT_ε ≥ OT_0 (the entropy term is ≥ 0) and the identity coupling i ↦ i costs
Σ a_i |x_i − T(x_i)|² + ε H(a). So the "ε-bias" is at most ε H(a), and M_ε increases to M_0 as
ε decreases (dOT_ε/dε = KL(π_ε‖a⊗a) ≥ 0).

- :func:`monge_gap_sweep_1d`: an increasing 1D map is optimal (M_0 = 0, so −ε log n ≤ M_ε ≤ 0),
  and x ↦ −x on a symmetric sample has T#ρ = ρ, so M_0 = Σ a_i |2x_i|² = 4 E x² (4 Var for a
  centred sample: 4 for N(0, 1));
- :func:`gaussian_map_comparison`: between two Gaussians, a linear map that pushes the source onto
  the target but is not the OT map (the triangular, Knothe–Rosenblatt map built from Cholesky
  factors), the entropic OT map T_ε estimated from samples (:func:`divlab.entropic_map`) and the
  closed-form OT map x ↦ m₁ + A(x − m₀), A = Σ₀^{-½}(Σ₀^{½}Σ₁Σ₀^{½})^{½}Σ₀^{-½}: their gaps,
  displacement costs and, for the linear maps, the population gap in closed form
  M_0(x ↦ m₁ + L(x − m₀)) = tr((I − L)Σ₀(I − L)ᵀ) − B²(Σ₀, Σ₁) (B²: the squared Bures distance).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .maps import entropic_map, monge_gap

__all__ = ["symmetric_normal_sample", "MAPS_1D", "monge_gap_sweep_1d", "gaussian_ot_matrix", "knothe_matrix",
           "bures2", "linear_map_gap", "gaussian_map_comparison", "DEFAULT_EPSILONS_1D"]

DT = torch.float64
#: the 1D lesson's ε sweep (squared units of x)
DEFAULT_EPSILONS_1D = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005)

#: the 1D lesson's maps: label -> (callable, M_0 on a symmetric sample as a function of it)
MAPS_1D = {
    "x ↦ eˣ (increasing, not linear)": (torch.exp, lambda x: 0.0),
    "x ↦ −x (reflection)": (torch.neg, lambda x: float(4 * (x * x).mean())),
}


def symmetric_normal_sample(n: int, seed: int = 0) -> torch.Tensor:
    """n points (n even) of N(0, 1) made exactly symmetric: n/2 draws z and their negatives −z, so
    that x ↦ −x maps the sample onto itself (T#ρ = ρ)."""
    n = int(n)
    if n < 2 or n % 2:
        raise ValueError(f"symmetric_normal_sample(n={n!r}): n must be an even integer ≥ 2")
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n // 2, generator=g, dtype=DT)
    return torch.cat([z, -z])


def monge_gap_sweep_1d(x, epsilons=DEFAULT_EPSILONS_1D, maps=None, *, tol: float = 1e-5,
                       max_iter: int = 3000) -> dict:
    """M_ε of each map of ``maps`` (label -> (callable, M_0 function); default :data:`MAPS_1D`) on
    the 1D sample ``x`` (uniform weights) for each ε of ``epsilons``. Returns ``rows`` (one per
    (map, ε): map, epsilon, gap, limit M_0, bias_bound ε log n, M_0 − gap, displacement, ot_eps,
    status, iterations, marginal_error), ``limits`` (label -> M_0), ``n`` and ``second_moment``
    (mean x²).

    Sinkhorn converges slowly here (the marginal error decays roughly like 1/iterations) because
    the optimal plan between ρ and T#ρ is close to a permutation; the gap itself settles long
    before the marginals do (to ~1e-5 after 2 000 iterations in the lessons' cases), so a row that
    stopped at ``max_iter`` reports its marginal error rather than pretending to have converged."""
    x = torch.as_tensor(x, dtype=DT).reshape(-1)
    maps = MAPS_1D if maps is None else maps
    n = x.numel()
    rows, limits = [], {}
    for label, (T, limit) in maps.items():
        m0 = float(limit(x))
        limits[label] = m0
        for eps in epsilons:
            gap, info = monge_gap(T, x, epsilon=float(eps), tol=tol, max_iter=max_iter, return_info=True)
            rows.append({"map": label, "epsilon": float(eps), "gap": float(gap), "limit": m0,
                         "bias_bound": info["entropy_bound"], "shortfall": m0 - float(gap),
                         "displacement": info["displacement"], "ot_eps": info["ot_eps"], "status": info["status"],
                         "iterations": info["iterations"], "marginal_error": info["marginal_error"]})
    return {"rows": rows, "limits": limits, "n": n, "second_moment": float((x * x).mean()),
            "log_n": math.log(n)}


def _sqrtm(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def gaussian_ot_matrix(S0, S1) -> np.ndarray:
    """A = Σ₀^{-½}(Σ₀^{½}Σ₁Σ₀^{½})^{½}Σ₀^{-½}: the OT (Brenier) map N(m₀, Σ₀) → N(m₁, Σ₁) is
    x ↦ m₁ + A(x − m₀) (symmetric positive definite)."""
    S0, S1 = np.asarray(S0, float), np.asarray(S1, float)
    r = _sqrtm(S0)
    ri = np.linalg.inv(r)
    return ri @ _sqrtm(r @ S1 @ r) @ ri


def knothe_matrix(S0, S1) -> np.ndarray:
    """L = chol(Σ₁) chol(Σ₀)⁻¹ (lower triangular): x ↦ m₁ + L(x − m₀) also pushes N(m₀, Σ₀) onto
    N(m₁, Σ₁) (L Σ₀ Lᵀ = Σ₁), but it is the Knothe–Rosenblatt (triangular) map, not the OT map,
    unless it happens to be symmetric positive definite."""
    S0, S1 = np.asarray(S0, float), np.asarray(S1, float)
    return np.linalg.cholesky(S1) @ np.linalg.inv(np.linalg.cholesky(S0))


def bures2(S0, S1) -> float:
    """B²(Σ₀, Σ₁) = tr Σ₀ + tr Σ₁ − 2 tr (Σ₀^{½}Σ₁Σ₀^{½})^{½}: W₂² between centred Gaussians."""
    r = _sqrtm(np.asarray(S0, float))
    return float(np.trace(S0) + np.trace(S1) - 2 * np.trace(_sqrtm(r @ np.asarray(S1, float) @ r)))


def linear_map_gap(L, S0, S1) -> float:
    """Population Monge gap M_0 of x ↦ m₁ + L(x − m₀) from N(m₀, Σ₀) when L Σ₀ Lᵀ = Σ₁:
    tr((I − L)Σ₀(I − L)ᵀ) − B²(Σ₀, Σ₁) (the means cancel)."""
    L, S0 = np.asarray(L, float), np.asarray(S0, float)
    I = np.eye(L.shape[0])
    return float(np.trace((I - L) @ S0 @ (I - L).T) - bures2(S0, S1))


def gaussian_map_comparison(m0, S0, m1, S1, *, n: int = 150, epsilon: float = 0.02, seed: int = 0,
                            tol: float = 1e-5, max_iter: int = 3000) -> dict:
    """Three maps from a sample of N(m₀, Σ₀) (``n`` points) towards N(m₁, Σ₁): the triangular
    linear map (not OT), the entropic OT map T_ε fitted between the source sample and an
    independent sample of the target, and the closed-form OT map. Returns the points (source x,
    target sample y), each map's images, and ``rows`` (map, gap M_ε, bias bound ε log n,
    population gap M_0 where known, mean squared displacement, RMS distance to the closed-form
    OT images, solver status, iterations, marginal error), the matrices A and L, and the entropic
    map's solver status (slow convergence as in :func:`monge_gap_sweep_1d`)."""
    m0, m1 = np.asarray(m0, float), np.asarray(m1, float)
    S0, S1 = np.asarray(S0, float), np.asarray(S1, float)
    rng = np.random.default_rng(int(seed))
    x = torch.as_tensor(rng.multivariate_normal(m0, S0, size=int(n)), dtype=DT)
    y = torch.as_tensor(rng.multivariate_normal(m1, S1, size=int(n)), dtype=DT)
    A, L = gaussian_ot_matrix(S0, S1), knothe_matrix(S0, S1)
    At, Lt = torch.as_tensor(A, dtype=DT), torch.as_tensor(L, dtype=DT)
    m0t, m1t = torch.as_tensor(m0, dtype=DT), torch.as_tensor(m1, dtype=DT)
    ot_images = m1t + (x - m0t) @ At.T
    lin_images = m1t + (x - m0t) @ Lt.T
    emap = entropic_map(x, y, float(epsilon), tol=tol, max_iter=max_iter)
    images = {"linear (triangular, not OT)": lin_images, "entropic OT map T_ε": emap.images.detach(),
              "closed-form OT map": ot_images}
    population = {"linear (triangular, not OT)": linear_map_gap(L, S0, S1), "entropic OT map T_ε": None,
                  "closed-form OT map": 0.0}
    rows = []
    for label, Tx in images.items():
        gap, info = monge_gap(Tx, x, epsilon=float(epsilon), tol=tol, max_iter=max_iter, return_info=True)
        rows.append({"map": label, "gap": float(gap), "bias_bound": info["entropy_bound"],
                     "population_gap": population[label], "displacement": info["displacement"],
                     "rms_to_ot": float(((Tx - ot_images) ** 2).sum(1).mean().sqrt()), "status": info["status"],
                     "iterations": info["iterations"], "marginal_error": info["marginal_error"]})
    return {"x": x, "y": y, "images": images, "rows": rows, "A": A, "L": L, "epsilon": float(epsilon), "n": int(n),
            "map_status": emap.info["status"], "bures2": bures2(S0, S1)}
