"""Entropic maps and the Monge gap (issue 17): references are the closed-form Gaussian OT map,
exact identities of the Monge gap (monotone 1D maps, x ↦ −x on a symmetric sample) and the
entropy bound −ε H(a) ≤ M_ε."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

import divlab as dl

DT = torch.float64


def symmetric_sample(n=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=g, dtype=DT)
    return torch.cat([z, -z])  # ρ_n = (−1)#ρ_n exactly


def test_monge_gap_of_x_to_minus_x_tends_to_4_var():
    """T(x) = −x on a symmetric sample: T#ρ = ρ, so M_0 = mean |2x|² = 4 E x² (≈ 4 for N(0, 1)),
    and M_ε ∈ [M_0 − ε log n, M_0]: the gap closes as ε → 0."""
    x = symmetric_sample(100, 2)
    x = x / (x * x).mean().sqrt()  # a sample of N(0, 1) standardized: mean 0, variance exactly 1
    m0 = float(4 * (x * x).mean())
    assert m0 == pytest.approx(4.0, rel=1e-14)  # 4 Var
    gaps = []
    for eps in (1.0, 0.1, 0.01):
        gap, info = dl.monge_gap(lambda t: -t, x, epsilon=eps, tol=1e-6, max_iter=50_000, return_info=True)
        bound = eps * math.log(x.numel())
        assert info["entropy_bound"] == pytest.approx(bound, rel=1e-12)
        assert m0 - bound - 1e-4 <= float(gap) <= m0 + 1e-4, (eps, float(gap), m0)
        gaps.append(m0 - float(gap))
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-4
    assert gaps[2] < 0.01 * m0


@pytest.mark.parametrize("T", [lambda t: 2 * t + 1, lambda t: t ** 3 + t, torch.exp], ids=["affine", "cubic", "exp"])
def test_monge_gap_of_a_monotone_1d_map_is_zero_up_to_the_entropy_bias(T):
    """Increasing 1D maps are optimal for |x − y|²: M_0 = 0, so −ε log n ≤ M_ε ≤ 0 (+ tolerance)."""
    x = symmetric_sample(30, 3) * 0.5
    for eps in (0.1, 0.01):
        gap = float(dl.monge_gap(T, x, epsilon=eps, tol=1e-6, max_iter=50_000))
        assert -eps * math.log(x.numel()) - 1e-4 <= gap <= 1e-4, (eps, gap)


def test_monge_gap_accepts_images_and_is_differentiable():
    x = symmetric_sample(40, 1)
    w = torch.tensor(1.5, dtype=DT, requires_grad=True)
    gap = dl.monge_gap(lambda t: -w * t, x, epsilon=0.05)
    (gw,) = torch.autograd.grad(gap, w)
    h = 1e-6
    fd = (float(dl.monge_gap(-(1.5 + h) * x, x, epsilon=0.05)) - float(dl.monge_gap(-(1.5 - h) * x, x, epsilon=0.05))) / (2 * h)
    assert float(gw) == pytest.approx(fd, rel=1e-5)


def _gaussian_pair():
    S1 = np.array([[1.0, 0.3], [0.3, 0.5]])
    S2 = np.array([[2.0, -0.5], [-0.5, 1.0]])
    m1, m2 = np.array([0.0, 1.0]), np.array([1.0, -1.0])
    r = scipy.linalg.sqrtm(S1).real
    ri = np.linalg.inv(r)
    A = ri @ scipy.linalg.sqrtm(r @ S2 @ r).real @ ri  # the Brenier map x ↦ m2 + A(x − m1)
    return S1, S2, m1, m2, A


def test_entropic_map_tends_to_the_gaussian_ot_map():
    """Target points = the closed-form OT map of the source points, y_i = m₂ + A(x_i − m₁): the
    optimal matching is i ↦ i, so T_ε(x_i) → y_i as ε → 0; out of sample, T_ε(z) → m₂ + A(z − m₁)
    up to the sample's resolution."""
    S1, S2, m1, m2, A = _gaussian_pair()
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal(m1, S1, size=80)
    Y = (X - m1) @ A.T + m2
    Z = rng.multivariate_normal(m1, 0.25 * S1, size=50)
    errs, out = [], []
    for eps in (1.0, 0.1, 0.01):
        T = dl.entropic_map(X, Y, eps, tol=1e-6, max_iter=100_000)
        errs.append(float(np.sqrt(((T.images.numpy() - Y) ** 2).sum(1).mean())))
        out.append(float(np.sqrt(((T(Z).numpy() - ((Z - m1) @ A.T + m2)) ** 2).sum(1).mean())))
        # in-sample images = evaluating the map at the source points (f cancels)
        assert torch.allclose(T(X), T.images, atol=1e-10)
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.05 * float(np.sqrt(np.trace(S2)))
    assert out[0] > out[1] and out[1] < 0.15


def test_entropic_map_matches_the_plan_barycentres_from_pot():
    import ot

    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(30, 2)), rng.normal(1.0, 1.5, size=(25, 2))
    T = dl.entropic_map(X, Y, 0.5, tol=1e-13, max_iter=100_000)
    M = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    pi = ot.sinkhorn(np.full(30, 1 / 30), np.full(25, 1 / 25), M, reg=0.5, method="sinkhorn_log", stopThr=1e-14,
                     numItermax=100_000)
    ref = (pi @ Y) / pi.sum(1, keepdims=True)
    assert np.allclose(T.images.numpy(), ref, atol=1e-9)


@pytest.mark.parametrize("call,match", [
    (lambda: dl.entropic_map(np.zeros((3, 2)), np.zeros((4, 2)), 0.0), r"entropic_map\(epsilon=0\.0\): epsilon must be"),
    (lambda: dl.entropic_map(np.zeros((3, 2)), np.zeros((4, 1)), 0.1), r"entropic_map: source_samples are 2D"),
    (lambda: dl.monge_gap(lambda t: t[:2], np.zeros(3), epsilon=0.1), r"monge_gap\(T=...\): T's images have shape"),
    (lambda: dl.monge_gap(lambda t: t, dl.Normal(0.0, 1.0)), r"monge_gap\(source=Normal\): source must be samples"),
], ids=["eps-zero", "dims", "images-shape", "distribution"])
def test_errors_name_parameter_and_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()
