"""Over-relaxed Sinkhorn (ot_solver.Relaxation) and the shifted online c-transform: the same
fixed point as plain Sinkhorn, fewer iterations at small ε, and the fallbacks that keep them safe."""

from __future__ import annotations

import math

import pytest
import torch

from divlab.divergences import ot_solver as S


def _clouds(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.7 + torch.tensor([1.0, 0.5], dtype=torch.float64)
    x, y = S.center(x, y)
    la = torch.full((n,), -math.log(n), dtype=torch.float64)
    return x, y, la


def _plan(x, y, la, f, g, eps):
    return S._plan(S.pair_sqdist(x, y), la, la, f, g, eps)


@pytest.mark.parametrize("backend", ["tensorized", "online"])
@pytest.mark.parametrize("eps, n, tol", [(0.1, 120, 1e-9), (0.01, 300, 1e-5)])
def test_relaxed_and_plain_sinkhorn_reach_the_same_plan(backend, eps, n, tol):
    x, y, la = _clouds(n)
    f1, g1, it1, err1, st1, _ = S.solve_ab(x, la, y, la, eps, tol=tol, max_iter=50_000, backend=backend, omega=1.0)
    f2, g2, it2, err2, st2, _ = S.solve_ab(x, la, y, la, eps, tol=tol, max_iter=50_000, backend=backend)
    assert st1 == st2 == "converged" and err1 < tol and err2 < tol
    P1, P2 = _plan(x, y, la, f1, g1, eps), _plan(x, y, la, f2, g2, eps)
    # both plans have marginals within tol of (a, a): the two differ by O(tol)
    assert float((P1 - P2).abs().sum()) < 50 * tol
    a = la.exp()
    for P in (P1, P2):
        assert float((P.sum(1) - a).abs().sum() + (P.sum(0) - a).abs().sum()) < 3 * tol


def test_relaxation_cuts_the_iterations_at_small_eps():
    """ε = 0.01 on 300 points, tol 1e-4: plain Sinkhorn needs about twice the iterations (measured:
    1 139 plain vs 476 relaxed tensorized, 1 063 vs 504 online). At tol 1e-6 the gain is small
    (21 727 vs 19 870): the late iterations contract more slowly than the rate ω was chosen for."""
    x, y, la = _clouds(300)
    its = {}
    for backend in ("tensorized", "online"):
        for omega in (1.0, "auto"):
            *_, it, err, st, _ = S.solve_ab(x, la, y, la, 0.01, tol=1e-4, max_iter=50_000, backend=backend,
                                            omega=omega)
            assert st == "converged", (backend, omega, err)
            its[backend, omega] = it
    for backend in ("tensorized", "online"):
        assert its[backend, "auto"] < 0.6 * its[backend, 1.0], its


def test_relaxation_rule():
    r = S.Relaxation()
    assert r.omega == 1.0
    for k in range(S.Relaxation.WARMUP):
        r.update(0.9 ** k)  # contraction rate 0.9 per iteration
    assert r.omega == pytest.approx(min(S.Relaxation.MAX, 2 / (1 + math.sqrt(0.1))))
    r.update(r.best * 11)  # the error blew up: back to plain for good
    assert r.omega == 1.0 and r.failed
    for k in range(40):
        r.update(0.5 ** k)
    assert r.omega == 1.0
    fixed = S.Relaxation(1.5)
    for k in range(40):
        fixed.update(0.9 ** k)
    assert fixed.omega == 1.5
    for bad in (0, 2, -1, "fast", True, float("nan")):
        with pytest.raises(ValueError, match="omega"):
            S.Relaxation(bad)


@pytest.mark.parametrize("offset", [0.0, 0.3, 1e4, -1e4])
def test_shifted_ctransform_equals_the_max_shifted_one(offset):
    """The online c-transform with a guess (one product, one exponential per block) gives the
    max-shifted result, also when the guess is so far off that its rows overflow or underflow
    (those blocks are redone with the row maximum)."""
    x, y, la = _clouds(90, seed=4)
    h = la + torch.randn(90, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ref, oref = S.ctransform(0.05, x, y, h, need=("bary", "cost"))
    got, ogot = S.ctransform(0.05, x, y, h, need=("bary", "cost"), guess=ref + offset, block=7)
    assert torch.allclose(got, ref, rtol=0, atol=1e-12)
    for k in ("bary", "cost"):
        assert torch.allclose(ogot[k], oref[k], rtol=1e-10, atol=1e-12)
    dense, _ = S.ctransform(0.05, x, y, h, C=S.pair_sqdist(x, y))
    assert torch.allclose(got, dense, rtol=0, atol=1e-12)


def test_meter_can_leave_the_process_peak_to_its_caller(monkeypatch):
    """DIVLAB_METER_RESET=0: the meter does not reset the process's peak RSS (a benchmark that
    measures the whole call would otherwise see only what came after the last reset) and reports
    no memory instead of a wrong one."""
    with S.Meter("cpu") as m:
        torch.ones(10)
    assert m.time_s >= 0
    monkeypatch.setenv("DIVLAB_METER_RESET", "0")
    with S.Meter("cpu") as m:
        torch.ones(10)
    assert m.peak_mib is None and m.time_s >= 0
