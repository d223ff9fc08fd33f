"""Sinkhorn gradient modes (issue 17): envelope, unrolled and implicit agree with each other and
with central finite differences, for the points, the weights and ε; implicit gradients of the
plan and of the potentials against finite differences; backends agree; time and memory reported."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch

import divlab as dl
from divlab.divergences import ot_solver as S
from divlab.divergences.transport import ot_eps, sinkhorn_divergence

DT = torch.float64
TIGHT = {"tol": 1e-13, "max_iter": 50_000}
MODES = ["envelope", "unrolled", "implicit"]


def cloud(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=DT) * scale + shift
    w = torch.rand(n, generator=g, dtype=DT) + 0.2
    return x, w / w.sum()


X, A = cloud(12, 2, 1)
Y, B = cloud(10, 2, 2, shift=0.6, scale=1.3)
EPS = 0.3


def value(x=X, a=A, y=Y, b=B, eps=EPS, debias=True, gradient="envelope"):
    v, info = sinkhorn_divergence(x, a, y, b, eps, debias=debias, gradient=gradient, **TIGHT)
    assert info["status"] == "converged"
    return v, info


def grads(mode, debias):
    x, a, y, b = (t.clone().requires_grad_(True) for t in (X, A, Y, B))
    eps = torch.tensor(EPS, dtype=DT, requires_grad=True)
    v, info = value(x, a, y, b, eps, debias, mode)
    gx, ga, gy, gb, ge = torch.autograd.grad(v, (x, a, y, b, eps))
    return float(v.detach()), gx, ga, gy, gb, float(ge), info


def fd(fun, t, direction, h=1e-6):
    return (float(fun(t + h * direction)) - float(fun(t - h * direction))) / (2 * h)


@pytest.mark.parametrize("debias", [True, False], ids=["debiased", "raw"])
def test_three_modes_agree_with_each_other_and_finite_differences(debias):
    res = {m: grads(m, debias) for m in MODES}
    v0, gx0, ga0, gy0, gb0, ge0, _ = res["envelope"]
    # the weights live on the simplex: compare derivatives along mass-preserving directions
    g = torch.Generator().manual_seed(5)
    da = torch.randn(12, generator=g, dtype=DT)
    da -= da.mean()
    db = torch.randn(10, generator=g, dtype=DT)
    db -= db.mean()
    for m in MODES[1:]:
        v, gx, ga, gy, gb, ge, _ = res[m]
        assert v == pytest.approx(v0, rel=1e-11)
        assert torch.allclose(gx, gx0, rtol=1e-8, atol=1e-11), m
        assert torch.allclose(gy, gy0, rtol=1e-8, atol=1e-11), m
        assert float(ga @ da) == pytest.approx(float(ga0 @ da), rel=1e-8, abs=1e-11), m
        assert float(gb @ db) == pytest.approx(float(gb0 @ db), rel=1e-8, abs=1e-11), m
        assert ge == pytest.approx(ge0, rel=1e-8), m
    # finite differences (central, h = 1e-6: error ~1e-9 relative at these values)
    E = torch.zeros_like(X)
    for i, k in [(0, 0), (5, 1), (11, 0)]:
        E.zero_()
        E[i, k] = 1.0
        ref = fd(lambda t: value(x=t, debias=debias)[0], X, E)
        assert float(gx0[i, k]) == pytest.approx(ref, rel=1e-6, abs=1e-9)
    Ey = torch.zeros_like(Y)
    Ey[3, 1] = 1.0
    assert float(gy0[3, 1]) == pytest.approx(fd(lambda t: value(y=t, debias=debias)[0], Y, Ey), rel=1e-6, abs=1e-9)
    assert float(ga0 @ da) == pytest.approx(fd(lambda t: value(a=t, debias=debias)[0], A, da, 1e-7), rel=1e-6)
    assert float(gb0 @ db) == pytest.approx(fd(lambda t: value(b=t, debias=debias)[0], B, db, 1e-7), rel=1e-6)
    ref_e = fd(lambda t: value(eps=float(t), debias=debias)[0], torch.tensor(EPS, dtype=DT), torch.tensor(1.0, dtype=DT))
    assert ge0 == pytest.approx(ref_e, rel=1e-6)


def test_eps_derivative_of_ot_eps_is_the_plan_entropy_term():
    """∂OT_ε/∂ε = KL(π‖a⊗b), with π from POT's log-domain solver."""
    _, _, _, _, _, ge, info = grads("envelope", False)
    M = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1).numpy()
    pi = ot.sinkhorn(A.numpy(), B.numpy(), M, reg=EPS, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000)
    kl = float((pi * np.log(pi / np.outer(A.numpy(), B.numpy()))).sum())
    assert ge == pytest.approx(kl, rel=1e-7)


def _plan_of(x, a, y, b, eps):
    with torch.no_grad():
        f, g, *_ = S.solve_ab(x, a.log(), y, b.log(), float(eps), tol=1e-14, max_iter=100_000)
    return S.plan_dense(x, a, y, b, torch.as_tensor(eps, dtype=DT), f, g)


def test_implicit_gradient_of_the_plan_and_of_eps_vs_finite_differences():
    g = torch.Generator().manual_seed(7)
    W = torch.randn(12, 10, generator=g, dtype=DT)
    x = X.clone().requires_grad_(True)
    y = Y.clone().requires_grad_(True)
    eps = torch.tensor(EPS, dtype=DT, requires_grad=True)
    _, info = ot_eps(x, A, y, B, eps, gradient="implicit", tol=1e-14, max_iter=100_000)
    plan = info["plan"]
    assert torch.allclose(plan.detach(), _plan_of(X, A, Y, B, EPS), atol=1e-13)
    L = (plan * W).sum()
    gx, gy, ge = torch.autograd.grad(L, (x, y, eps))
    loss = lambda xx=X, yy=Y, e=EPS: float((_plan_of(xx, A, yy, B, e) * W).sum())  # noqa: E731
    h = 1e-6
    for i, k in [(0, 0), (4, 1), (9, 1)]:
        E = torch.zeros_like(X)
        E[i, k] = h
        assert float(gx[i, k]) == pytest.approx((loss(xx=X + E) - loss(xx=X - E)) / (2 * h), rel=1e-6, abs=1e-9)
    E = torch.zeros_like(Y)
    E[2, 0] = h
    assert float(gy[2, 0]) == pytest.approx((loss(yy=Y + E) - loss(yy=Y - E)) / (2 * h), rel=1e-6, abs=1e-9)
    assert float(ge) == pytest.approx((loss(e=EPS + h) - loss(e=EPS - h)) / (2 * h), rel=1e-6, abs=1e-9)
    # the envelope rule does not give the plan's gradient: the plan with the potentials held fixed
    # (what an envelope-style detach would differentiate) has a different derivative in ε
    f, gg = (p.detach() for p in info["potentials"])
    frozen = torch.autograd.grad((S.plan_dense(X, A, Y, B, eps, f, gg) * W).sum(), eps)[0]
    assert abs(float(frozen) - float(ge)) > 1e-3 * abs(float(ge))


def test_implicit_gradient_of_the_potentials_vs_finite_differences():
    """The potentials are defined up to f + t, g − t; the gauge-invariant f_i + g_j (here
    through f − c, c = (⟨a, f⟩ − ⟨b, g⟩)/2) has exact implicit derivatives."""
    def centred(f, g, a, b):
        c = ((a * f).sum() - (b * g).sum()) / 2
        return f - c, g + c

    def pots(x, eps):
        with torch.no_grad():
            f, g, *_ = S.solve_ab(x, A.log(), Y, B.log(), float(eps), tol=1e-14, max_iter=100_000)
        return centred(f, g, A, B)

    x = X.clone().requires_grad_(True)
    eps = torch.tensor(EPS, dtype=DT, requires_grad=True)
    _, info = ot_eps(x, A, Y, B, eps, gradient="implicit", tol=1e-14, max_iter=100_000)
    fi, gi = centred(*info["potentials_implicit"], A, B)
    # centring the clouds does not change the potentials (the cost is translation invariant)
    assert torch.allclose(fi.detach(), pots(X, EPS)[0], atol=1e-11)
    L = fi[3] + 2 * gi[7] - fi[0]
    gx, ge = torch.autograd.grad(L, (x, eps))
    Lf = lambda xx=X, e=EPS: float((lambda p: p[0][3] + 2 * p[1][7] - p[0][0])(pots(xx, e)))  # noqa: E731
    h = 1e-6
    for i, k in [(3, 0), (0, 1), (8, 0)]:
        E = torch.zeros_like(X)
        E[i, k] = h
        assert float(gx[i, k]) == pytest.approx((Lf(xx=X + E) - Lf(xx=X - E)) / (2 * h), rel=1e-6, abs=1e-9)
    assert float(ge) == pytest.approx((Lf(e=EPS + h) - Lf(e=EPS - h)) / (2 * h), rel=1e-6, abs=1e-9)


def test_implicit_cg_equals_dense_solve():
    x = X.clone().requires_grad_(True)
    out = {}
    for solver in ("dense", "cg"):
        f, g, *_ = S.solve_ab(X, A.log(), Y, B.log(), EPS, tol=1e-14, max_iter=100_000)
        fi, gi = S.implicit_potentials(x, A, Y, B, EPS, f, g, solver=solver)
        plan = S.plan_dense(x, A, Y, B, torch.tensor(EPS, dtype=DT), fi, gi)
        out[solver] = torch.autograd.grad((plan * torch.arange(120, dtype=DT).reshape(12, 10)).sum(), x)[0]
    assert torch.allclose(out["cg"], out["dense"], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("eps", [0.5, 0.05])
def test_backends_agree(eps):
    x, a = cloud(60, 2, 11)
    y, b = cloud(50, 2, 12, shift=1.0)
    res = {}
    for backend in ("tensorized", "online"):
        xx = x.clone().requires_grad_(True)
        v, info = sinkhorn_divergence(xx, a, y, b, eps, tol=1e-12, max_iter=20_000, backend=backend)
        assert info["backend"] == backend and info["status"] == "converged"
        res[backend] = (float(v.detach()), torch.autograd.grad(v, xx)[0])
    assert res["online"][0] == pytest.approx(res["tensorized"][0], rel=1e-10)
    assert torch.allclose(res["online"][1], res["tensorized"][1], rtol=1e-7, atol=1e-10)


def test_float32_is_close_to_float64():
    x, a = cloud(200, 2, 13)
    y, b = cloud(150, 2, 14, shift=0.5)
    v64, _ = sinkhorn_divergence(x, a, y, b, 0.1, tol=1e-6)
    v32, info = sinkhorn_divergence(x, a, y, b, 0.1, tol=1e-4, dtype=torch.float32)
    assert info["dtype"] == "float32" and v32.dtype == DT
    assert float(v32) == pytest.approx(float(v64), rel=1e-4)


def test_modes_report_time_and_memory():
    for mode in MODES:
        x = X.clone().requires_grad_(True)
        est = dl.estimate(dl.Empirical(x, A), dl.Empirical(Y, B), "sinkhorn", epsilon=EPS, options={"gradient": mode})
        assert est.info["gradient"] == mode
        assert est.info["solve"]["time_s"] > 0
        assert est.info["solve"]["peak_mib"] is None or est.info["solve"]["peak_mib"] >= 0
        est.value.backward()
        assert est.info["backward"]["time_s"] >= 0 and "memory_kind" in est.info["backward"]
        assert torch.isfinite(x.grad).all()


def test_bad_backend_and_dtype_name_the_value():
    with pytest.raises(ValueError, match=r"sinkhorn\(backend='gpu'\): backend must be one of"):
        dl.estimate(X, Y, "sinkhorn", options={"backend": "gpu"})
    with pytest.raises(ValueError, match=r"sinkhorn\(dtype='half'\): dtype must be"):
        dl.estimate(X, Y, "sinkhorn", options={"dtype": "half"})


def test_eps_1e3_online_finite_value_and_gradient():
    x, _ = cloud(30, 2, 7)
    y, _ = cloud(25, 2, 8, shift=1.0)
    xx = x.clone().requires_grad_(True)
    v, info = sinkhorn_divergence(xx, torch.full((30,), 1 / 30, dtype=DT), y, torch.full((25,), 1 / 25, dtype=DT),
                                  1e-3, max_iter=300, backend="online")
    assert math.isfinite(float(v.detach())) and float(v.detach()) > 0
    assert torch.isfinite(torch.autograd.grad(v, xx)[0]).all()
