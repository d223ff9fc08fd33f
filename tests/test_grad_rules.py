"""The fitting engine's analytic rules (value, ∂value/∂log q) against autograd of ``from_logs``.

Every registry entry with a ``grad_rule`` must give the same value as its quadrature formula and
the same derivative as autograd, on log-densities with ratios from e^-40 to e^40 (the neyman and
pearson rules switch formula at a log-ratio of 30), with scalar and per-member parameters.
"""

from __future__ import annotations

import math

import pytest
import torch

import divlab as dl
from divlab.divergences.registry import get

F64 = torch.float64

# (key, params) — per-member parameters are (B, 1) columns in the engine's layout
CASES = [
    ("kl", {}), ("reverse_kl", {}), ("jeffreys", {}), ("js", {}), ("hellinger", {}), ("tv", {}),
    ("pearson", {}), ("neyman", {}), ("alpha", {"alpha": 0.5}), ("alpha", {"alpha": -1.5}),
    ("alpha", {"alpha": 2.5}), ("alpha", {"alpha": 1.0}), ("alpha", {"alpha": 0.0}),
    ("tsallis", {"alpha": 0.3}), ("skew_kl", {"lam": 0.25}), ("renyi", {"alpha": 0.5}),
    ("renyi", {"alpha": 1.0}), ("renyi", {"alpha": 3.0}), ("bhattacharyya", {}),
]


def logs(B=5, N=301, spread=40.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.full((N,), 1.0 / N, dtype=F64)
    lp = torch.randn(N, generator=g, dtype=F64) * 2
    lp = lp - torch.logsumexp(lp + w.log(), 0)
    lq = lp + (torch.rand(B, N, generator=g, dtype=F64) - 0.5) * 2 * spread
    lq = lq - torch.logsumexp(lq + w.log(), 1, keepdim=True)
    return lp.reshape(1, -1), lq, w


def reference(spec, lp, lq, w, params):
    """Value by ``from_logs`` (grid-leading layout) and the derivative by autograd, per member."""
    leaf = lq.clone().requires_grad_(True)
    v = spec.from_logs(lp.T, leaf.T, w, **params)
    (d,) = torch.autograd.grad(v.sum(), leaf)
    return v.detach(), d / w  # the rule's derivative is per unit weight


@pytest.mark.parametrize("key,params", [pytest.param(k, p, id=f"{k}-{p}") for k, p in CASES])
@pytest.mark.parametrize("spread", [pytest.param(1.0, id="near"), pytest.param(40.0, id="far")])
def test_rule_equals_autograd(key, params, spread):
    spec = get(key)
    rule = spec.grad_rule
    assert rule is not None, key
    lp, lq, w = logs(spread=spread)
    if key in ("pearson", "neyman", "jeffreys") and spread > 30:
        lq = lp + (lq - lp).clamp(-35, 35)  # e^{2·40} overflows nothing, but keep χ² finite to compare
    v_ref, d_ref = reference(spec, lp, lq, w, params)
    v, d = rule(lp, lq, lp.exp(), lq.exp(), w, **params)
    assert v.shape == v_ref.shape and d.shape == d_ref.shape
    assert torch.allclose(v, v_ref, rtol=1e-11, atol=1e-13), (v, v_ref)
    scale = d_ref.abs().max()
    assert torch.allclose(d, d_ref, rtol=1e-9, atol=1e-11 * float(scale)), float((d - d_ref).abs().max() / scale)


@pytest.mark.parametrize("key", ["alpha", "tsallis", "renyi", "skew_kl"])
def test_per_member_parameters_equal_scalar_ones(key):
    """A (B, 1) column of parameters gives each member what its scalar parameter gives."""
    spec = get(key)
    name = spec.params[0].name
    values = [0.25, 0.5, 1.0, 2.0, 0.75] if key != "skew_kl" else [0.1, 0.25, 0.5, 0.75, 0.9]
    lp, lq, w = logs(B=5)
    col = torch.tensor(values, dtype=F64).reshape(-1, 1)
    v, d = spec.grad_rule(lp, lq, lp.exp(), lq.exp(), w, **{name: col})
    for i, a in enumerate(values):
        vi, di = spec.grad_rule(lp, lq[i:i + 1], lp.exp(), lq[i:i + 1].exp(), w, **{name: a})
        assert float(v[i]) == pytest.approx(float(vi[0]), rel=1e-13, abs=1e-15)
        assert torch.allclose(d[i], di[0], rtol=1e-12, atol=1e-15)


def test_entries_without_a_rule_fall_back_to_autograd():
    """Cauchy–Schwarz (a log of ratios of integrals) has no rule: the engine uses autograd; its fits
    still reach the closed-form optimum of a Normal target (q = p)."""
    assert get("cauchy_schwarz").grad_rule is None
    res = dl.fit(dl.Normal(1.0, 2.0), divergence="cauchy_schwarz", steps=400, init={"loc": 0.0, "scale": 1.0})
    assert res.params["loc"] == pytest.approx(1.0, abs=1e-6)
    assert res.params["scale"] == pytest.approx(2.0, abs=1e-6)
    assert math.isfinite(res.final_loss)
