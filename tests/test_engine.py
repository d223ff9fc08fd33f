"""The batched fitting engine: a batch equals its members run one by one; failures stay local."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import divlab as dl
from divlab.divergences.registry import get
from divlab.fit.core import _default_init
from divlab.fit.engine import Member, run_batch


@pytest.fixture(scope="module")
def bimodal():
    return dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


def _finite_result(r):
    assert np.isfinite(r.trajectory["loc"]).all() and np.isfinite(r.trajectory["scale"]).all()
    assert len(r.trajectory["loc"]) == len(r.losses) == r.steps + 1


def test_batch_equals_one_by_one(bimodal):
    divs = ["kl", "reverse_kl", "js", "hellinger"]
    # an asymmetric first start: at loc = 0 the target's symmetry makes the loc-gradient pure
    # rounding noise, which Adam's normalization amplifies (any two programs would differ there)
    batch = dl.fit(bimodal, divergence=divs, restarts=8, steps=150, seed=3, init={"loc": -1.0, "scale": 2.0})
    assert isinstance(batch, dl.FitBatch) and len(batch) == 32
    assert [r.divergence for r in batch] == [d for d in divs for _ in range(8)]
    assert len({(r.init["loc"], r.init["scale"]) for r in batch}) == 8  # same 8 starts per divergence
    box = batch[0].info["grid_box"]
    for r in batch:
        one = dl.fit(bimodal, divergence=r.divergence, init=r.init, steps=150, box=box)
        assert one.status == r.status
        assert one.steps == r.steps
        np.testing.assert_allclose(one.losses, r.losses, rtol=0, atol=1e-10)
        for k in ("loc", "scale"):
            np.testing.assert_allclose(one.trajectory[k], r.trajectory[k], rtol=0, atol=1e-10)
        _finite_result(r)


def test_diverging_member_is_frozen_others_finish(bimodal):
    ms = [Member(get("reverse_kl"), {}, -2.0, 1.0, lr=10.0), Member(get("reverse_kl"), {}, -2.0, 1.0),
          Member(get("kl"), {}, 1.0, 1.0), Member(get("js"), {}, 2.0, 0.5)]
    out, info = run_batch(bimodal, ms, steps=400, lr=0.05)
    assert out[0]["status"].startswith("diverged: the model q left the computation grid")
    assert "lr = 10" in out[0]["status"]
    for o in out:
        assert np.isfinite(o["theta"]).all() and np.isfinite(o["losses"]).all()
    assert out[1]["status"] == "converged" and abs(out[1]["losses"][-1] - 0.688769) < 1e-5
    assert out[2]["status"] == "converged" and abs(out[2]["losses"][-1] - 0.461995) < 1e-5
    assert not out[3]["status"].startswith("diverged")
    # alone, the healthy member follows the same path
    alone, _ = run_batch(bimodal, ms[1:2], steps=400, lr=0.05, box=info["grid_box"])
    np.testing.assert_allclose(alone[0]["losses"], out[1]["losses"], rtol=0, atol=1e-10)


def test_infinite_member_reports_why():
    p = dl.Mixture([dl.Uniform(-4.0, -1.0), dl.Uniform(1.0, 4.0)], weights=[0.5, 0.5])
    rs = dl.fit(p, divergence=["kl", "reverse_kl"], steps=60, init={"loc": 0.5, "scale": 1.0})
    kl, rkl = rs
    assert not kl.diverged and math.isfinite(kl.final_loss)
    assert rkl.status.startswith("diverged: at step 0, KL(q‖p), reverse is infinite: the model q puts mass where")
    assert rkl.losses.tolist() == [math.inf] and np.isfinite(rkl.trajectory["loc"]).all()


def test_single_fit_api_unchanged(bimodal):
    r = dl.fit(bimodal, divergence="reverse_kl", steps=300, init={"loc": -2.0, "scale": 1.0})
    assert isinstance(r, dl.FitResult)
    assert r.status in ("converged", "max_steps")
    assert r.trajectory["loc"][0] == -2.0 and r.trajectory["scale"][0] == 1.0
    assert isinstance(r.model(), dl.Normal) and r.label
    d = r.as_dict()
    assert d["params"] == r.params and len(d["losses"]) == len(r.losses)
    seen = []
    dl.fit(bimodal, divergence="kl", steps=5, callback=lambda s, prm, v: seen.append((s, prm["loc"], v)), polish=False)
    assert [s for s, _, _ in seen] == list(range(6)) and all(isinstance(v, float) for _, _, v in seen)


def test_fit_batch_helpers(bimodal):
    b = dl.fit(bimodal, divergence="reverse_kl", restarts=6, steps=200, seed=0)
    assert len(b) == 6 and b[0].init == _default_init(bimodal)
    best = b.best()
    assert abs(best.final_loss - 0.6887690) < 1e-6
    assert len(b.by_divergence("reverse_kl")) == 6 and len(b.statuses) == 6


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"restarts": 0}, r"fit\(restarts=0\): restarts must be >= 1", id="restarts"),
    pytest.param({"box": [3.0, 1.0]}, r"fit\(box=\[3.0, 1.0\]\): box must be finite with hi > lo", id="box"),
    pytest.param({"divergence": []}, r"fit\(divergence=\[\]\)", id="empty"),
])
def test_errors_name_parameter_and_value(bimodal, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dl.fit(bimodal, **kwargs)


def test_engine_uses_target_dtype():
    p = dl.Normal(1.0, 2.0, dtype=torch.float32)
    r = dl.fit(p, divergence="kl", steps=200, init={"loc": 0.0, "scale": 1.0}, lr=0.1)
    assert abs(r.params["loc"] - 1.0) < 1e-2 and abs(r.params["scale"] - 2.0) < 1e-2


# ----------------------------------------------------------------------------- the hot loop's gradient
def _step_vs_autograd(target, members):
    """The hot loop's (values, log masses, gradients) against autograd through log_q + values."""
    from divlab.fit.engine import _Batch, prepare_grid

    grid = prepare_grid(target, [m.loc for m in members], [m.scale for m in members])
    bt = _Batch(target, members, grid)
    theta = torch.tensor([[m.loc, math.log(m.scale)] for m in members], dtype=torch.float64)
    v, lm, g = bt.step(theta)
    th = theta.clone().requires_grad_(True)
    lqn, lm_ref = bt.log_q(th)
    v_ref = bt.values(lqn)
    (g_ref,) = torch.autograd.grad(v_ref.sum(), th)
    return bt, (v, lm, g), (v_ref.detach(), lm_ref.detach(), g_ref)


def _mixed_members():
    out = []
    for key, dps in [("kl", {}), ("reverse_kl", {}), ("js", {}), ("hellinger", {}), ("tv", {}),
                     ("alpha", {"alpha": 0.3}), ("alpha", {"alpha": 2.0}), ("alpha", {"alpha": 1.0}),
                     ("renyi", {"alpha": 0.7}), ("renyi", {"alpha": 1.0}), ("skew_kl", {"lam": 0.2}),
                     ("tsallis", {"alpha": 0.5}), ("bhattacharyya", {}), ("jeffreys", {}), ("pearson", {}),
                     ("neyman", {}), ("cauchy_schwarz", {})]:
        spec = get(key)
        for loc, scale in [(-2.0, 1.0), (0.5, 2.5), (3.1, 0.7)]:
            out.append(Member(spec, spec.resolve_params(dps), loc, scale))
    return out


def test_hot_loop_gradient_equals_autograd(bimodal):
    """Every divergence's analytic rule, the per-member parameter columns (three α values of one
    entry in one group) and the autograd fallback (Cauchy–Schwarz) give autograd's gradient."""
    members = _mixed_members()
    bt, (v, lm, g), (v_ref, lm_ref, g_ref) = _step_vs_autograd(bimodal, members)
    assert any(rule is None for _, rule, *_ in bt.hot) and any(rule is not None for _, rule, *_ in bt.hot)
    alpha_groups = [params for spec, rule, params, *_ in bt.hot if spec.key == "alpha"]
    assert len(alpha_groups) == 1 and isinstance(alpha_groups[0]["alpha"], torch.Tensor)
    assert torch.allclose(v, v_ref, rtol=1e-11, atol=1e-13)
    assert torch.allclose(lm, lm_ref, rtol=0, atol=1e-13)
    assert torch.allclose(g, g_ref, rtol=1e-8, atol=1e-11), (g - g_ref).abs().max()


def test_hot_loop_with_target_zeros_uses_autograd():
    """A target that vanishes on part of the grid (Uniform) has log p = −inf there: the analytic
    rules do not apply, every group goes through autograd, and the gradient is still exact."""
    target = dl.Uniform(-1.0, 2.0)
    members = [Member(get(k), {}, 0.3, 0.9) for k in ("kl", "reverse_kl", "js", "hellinger")]
    bt, (v, lm, g), (v_ref, lm_ref, g_ref) = _step_vs_autograd(target, members)
    assert all(rule is None for _, rule, *_ in bt.hot)
    assert torch.isinf(v[1]) and torch.isinf(v_ref[1])  # reverse KL: q has mass where p = 0
    fin = torch.isfinite(v_ref)
    assert torch.allclose(v[fin], v_ref[fin], rtol=1e-12, atol=1e-14)
    assert torch.allclose(g[fin], g_ref[fin], rtol=1e-9, atol=1e-12)
