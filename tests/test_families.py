"""Model families beyond the 1D normal (mvn, diag, student_t, mixture), the generic batched engine,
its estimators (quadrature 1D/2D, mc, samples), LBFGS, and stops (budget, caller)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import divlab as dl
from divlab.divergences import kernel, stein, transport
from divlab.divergences.registry import get
from divlab.fit import sample_losses as sl
from divlab.fit.families import make_family
from divlab.fit.generic import GMember, run_generic


@pytest.fixture(scope="module")
def blobs():
    return dl.Mixture([dl.MultivariateNormal([-2.0, 0.0], [[0.5, 0.1], [0.1, 0.4]]),
                       dl.MultivariateNormal([2.0, 1.0], [[0.3, 0.0], [0.0, 0.6]]),
                       dl.MultivariateNormal([0.0, -2.5], [[0.4, -0.1], [-0.1, 0.3]])], weights=[0.3, 0.5, 0.2])


def _moments(mix):
    w = mix.weights
    means = torch.stack([c.mean for c in mix.components])
    covs = torch.stack([c.cov for c in mix.components])
    mu = (w[:, None] * means).sum(0)
    second = (w[:, None, None] * (covs + means[:, :, None] * means[:, None, :])).sum(0)
    return mu.numpy(), (second - mu[:, None] * mu[None, :]).numpy()


def _finite(r):
    for k, v in r.trajectory.items():
        assert np.isfinite(v).all(), k
        assert len(v) == len(r.losses) == r.steps + 1
    assert not np.isnan(r.losses).any()


def test_mvn_forward_kl_is_moment_matching(blobs):
    # forward KL onto the Gaussians matches the first two moments of the 3-component mixture
    r = dl.fit(blobs, family="mvn", divergence="kl", optimizer="lbfgs", steps=80, n=129, tol=1e-14)
    mu, cov = _moments(blobs)
    q = r.model()
    assert isinstance(q, dl.MultivariateNormal)
    np.testing.assert_allclose(q.mean.numpy(), mu, atol=1e-4)
    np.testing.assert_allclose(q.cov.numpy(), cov, atol=1e-4)
    assert r.status == "converged"
    assert set(r.trajectory) == {"loc_x", "loc_y", "scale_x", "scale_y", "corr"}
    assert r.params["corr"] == pytest.approx(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]), abs=1e-4)
    _finite(r)


def test_reverse_kl_mvn_recovers_a_single_mvn():
    p = dl.MultivariateNormal([1.0, -0.5], [[1.0, 0.6], [0.6, 0.8]])
    r = dl.fit(p, family="mvn", divergence="reverse_kl", optimizer="lbfgs", steps=60, n=129, tol=1e-14)
    q = r.model()
    np.testing.assert_allclose(q.mean.numpy(), [1.0, -0.5], atol=1e-5)
    np.testing.assert_allclose(q.cov.numpy(), [[1.0, 0.6], [0.6, 0.8]], atol=1e-5)
    assert r.final_loss == pytest.approx(0.0, abs=1e-9)


def test_diag_vs_mvn_on_a_correlated_gaussian():
    # diag can only match the marginals; the gap in forward KL is the closed form −½ log(1 − ρ²)
    rho = 0.6
    p = dl.MultivariateNormal([0.5, 1.0], [[1.0, rho * 1.0 * 0.8], [rho * 0.8, 0.64]])
    rs = dl.fit(p, family="diag", divergence="kl", optimizer="lbfgs", steps=60, n=129, tol=1e-14)
    rm = dl.fit(p, family="mvn", divergence="kl", optimizer="lbfgs", steps=60, n=129, tol=1e-14)
    assert rs.params["scale_x"] == pytest.approx(1.0, abs=1e-5) and rs.params["scale_y"] == pytest.approx(0.8, abs=1e-5)
    assert rs.params["loc_x"] == pytest.approx(0.5, abs=1e-5) and rs.params["loc_y"] == pytest.approx(1.0, abs=1e-5)
    assert rm.params["corr"] == pytest.approx(rho, abs=1e-7)  # after the Newton polish
    assert rs.final_loss - rm.final_loss == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-6)
    assert set(rs.trajectory) == {"loc_x", "loc_y", "scale_x", "scale_y"}


def test_student_t_fit_recovers_a_student_t():
    p = dl.StudentT(4.0, 1.0, 2.0)
    r = dl.fit(p, family="student_t", divergence="kl", optimizer="lbfgs", steps=60, box=[-400.0, 400.0], n=8193)
    assert r.params["loc"] == pytest.approx(1.0, abs=1e-4)
    assert r.params["scale"] == pytest.approx(2.0, abs=1e-4)
    assert r.params["df"] == pytest.approx(4.0, abs=1e-3)
    assert isinstance(r.model(), dl.StudentT) and set(r.trajectory) == {"loc", "scale", "df"}


def test_mixture_fit_recovers_two_components_up_to_labels():
    p = dl.Mixture([dl.Normal(-2.0, 0.7), dl.Normal(1.5, 1.2)], weights=[0.35, 0.65])
    r = dl.fit(p, family="mixture", components=2, divergence="kl", optimizer="lbfgs", steps=80, tol=1e-14)
    comps = sorted((r.params[f"loc{k}"], r.params[f"scale{k}"], r.params[f"w{k}"]) for k in (1, 2))
    np.testing.assert_allclose(comps, [(-2.0, 0.7, 0.35), (1.5, 1.2, 0.65)], atol=1e-4)
    assert set(r.trajectory) == {"w1", "w2", "loc1", "loc2", "scale1", "scale2"}
    q = r.model()
    assert isinstance(q, dl.Mixture) and len(q.components) == 2
    assert float(dl.divergence(p, q, "kl", estimator="quadrature")) == pytest.approx(r.final_loss, abs=1e-8)


def test_mixture_2d_names_and_model(blobs):
    r = dl.fit(blobs, family="mixture", components=3, divergence="kl", steps=5, n=129)
    names = [f"{n}{k}" for n in ("w", "loc_x", "loc_y", "scale_x", "scale_y", "corr") for k in (1, 2, 3)]
    assert sorted(r.trajectory) == sorted(names)
    q0 = r.model(0)
    assert isinstance(q0, dl.Mixture) and q0.dim == 2 and len(q0.components) == 3
    np.testing.assert_allclose(float(q0.weights.sum()), 1.0)
    # the recorded loss is the divergence of the recorded model (on the fit's grid)
    grid = dl.make_grid(box=r.info["grid_box"], n=r.info["grid_shape"][0])
    val = float(dl.divergence(blobs, r.model(), "kl", estimator="quadrature", grid=grid))
    assert val == pytest.approx(r.final_loss, abs=1e-9)


def test_adam_then_newton_polish_reaches_the_moments(blobs):
    # a box wide enough for the optimum's tails (±8 sd): the default box (±5 sd of the start, +25 %)
    # truncates ~1e-7 of the optimum's mass, which moves it by ~1e-6
    r = dl.fit(blobs, family="mvn", divergence="kl", steps=150, box=[[-16.0, 16.0], [-16.0, 16.0]], n=161)
    mu, cov = _moments(blobs)
    assert r.status == "converged" and r.info["polish_steps"] >= 1
    np.testing.assert_allclose(r.model().mean.numpy(), mu, atol=1e-7)
    np.testing.assert_allclose(r.model().cov.numpy(), cov, atol=1e-7)
    assert np.all(np.diff(r.losses[-r.info["polish_steps"] - 1:]) <= 0)  # polish steps only go down


def test_generic_batch_equals_one_by_one(blobs):
    batch = dl.fit(blobs, family="mvn", divergence=["kl", "reverse_kl"], restarts=3, steps=40, n=129, seed=1)
    assert len(batch) == 6
    box = batch[0].info["grid_box"]
    for r in batch:
        one = dl.fit(blobs, family="mvn", divergence=r.divergence, init=r.init, steps=40, box=box, n=129)
        assert one.status == r.status
        np.testing.assert_allclose(one.losses, r.losses, rtol=0, atol=1e-10)
        for k in r.trajectory:
            np.testing.assert_allclose(one.trajectory[k], r.trajectory[k], rtol=0, atol=1e-10)


def test_diverging_member_stops_with_reason_others_finish():
    p = dl.MultivariateNormal([1.0, -0.5], [[1.0, 0.3], [0.3, 0.5]])
    fam = make_family("fit", "mvn", 2)
    start = {"loc_x": 0.0, "loc_y": 0.0, "scale_x": 1.0, "scale_y": 1.0, "corr": 0.0}
    ms = [GMember(get("reverse_kl"), {}, "quadrature", start, lr=50.0),
          GMember(get("reverse_kl"), {}, "quadrature", start),
          GMember(get("kl"), {}, "quadrature", start)]
    out, _ = run_generic(p, fam, ms, steps=150, lr=0.1, n=129)
    assert out[0]["status"].startswith("diverged:") and "lr = 50" in out[0]["status"]
    for o in out:
        assert np.isfinite(o["theta"]).all() and np.isfinite(o["losses"]).all() and len(o["losses"]) >= 1
    for o in out[1:]:
        assert o["status"] in ("converged", "max_steps") and o["losses"][-1] < 1e-5


def test_mc_fit_approximately_reaches_the_quadrature_optimum():
    target = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])
    r = dl.fit(target, divergence="reverse_kl", estimator="mc", steps=300, init={"loc": -2.0, "scale": 1.0}, n=2048)
    assert r.estimator == "mc" and r.info["mc_draws"] == 2048
    # quadrature optimum (-2.984, 1.023, 0.6888); the mc objective with fixed draws is within O(1/√n)
    assert r.params["loc"] == pytest.approx(-2.984, abs=0.03)
    assert r.params["scale"] == pytest.approx(1.023, abs=0.03)
    assert r.final_loss == pytest.approx(0.6888, abs=0.01)
    _finite(r)


def test_samples_mmd_fit_of_mvn_recovers_the_mean():
    p = dl.MultivariateNormal([1.0, -0.5], [[1.0, 0.3], [0.3, 0.5]])
    r = dl.fit(p, family="mvn", divergence="mmd", steps=150, lr=0.05, n=256, seed=0)
    assert r.estimator == "samples" and r.info["samples_target"] == 256
    assert r.params["loc_x"] == pytest.approx(1.0, abs=0.1) and r.params["loc_y"] == pytest.approx(-0.5, abs=0.1)
    assert r.params["scale_x"] == pytest.approx(1.0, abs=0.15)
    _finite(r)


def test_samples_sinkhorn_fit_reports_iterations():
    p = dl.Normal(1.0, 0.5)
    r = dl.fit(p, family="normal", divergence="sinkhorn", steps=60, lr=0.05, n=128, init={"loc": 0.0, "scale": 1.0})
    assert r.estimator == "samples" and r.info["sinkhorn_iterations"] > 0
    assert r.params["loc"] == pytest.approx(1.0, abs=0.15) and r.final_loss < 0.05
    _finite(r)


def test_time_budget_stops_every_member_with_its_partial_trajectory(blobs):
    # patience beyond the steps: no member can converge before the budget, on any machine (the
    # Normal KL fit converged within 0.05 s on a quiet 2-core machine, and the test failed)
    normal = dl.fit(dl.Normal(0.0, 1.0), divergence=["kl", "reverse_kl"], steps=100_000, time_budget_s=0.05,
                    init={"loc": 1.0, "scale": 2.0}, patience=1_000_000)
    mvn = dl.fit(blobs, family="mvn", divergence="kl", steps=100_000, time_budget_s=0.05, n=129,
                 patience=1_000_000)
    for r in list(normal) + [mvn]:
        assert r.status.startswith("stopped: wall-clock budget of 0.05 s reached after step"), r.status
        assert r.status.endswith(f"after step {r.steps}")
        assert 1 <= r.steps < 100_000
        _finite(r)


def test_callback_returning_false_stops_the_run(blobs):
    seen = []

    def cb(step, params, loss):
        seen.append(params["corr"])
        return step < 4

    r = dl.fit(blobs, family="mvn", divergence="kl", steps=100, callback=cb, n=129)
    assert r.status == "stopped: by the caller after step 4" and r.steps == 4 and len(seen) == 5
    np.testing.assert_allclose(seen, r.trajectory["corr"])
    n = dl.fit(dl.Normal(0.0, 1.0), divergence="kl", steps=100, callback=lambda s, p, v: s < 2)
    assert n.status == "stopped: by the caller after step 2" and n.steps == 2


# ------------------------------------------------------------------ batched sample losses vs the registry
def _clouds(seed=0, B=3, m=40, n=50):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    a = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    y = torch.randn(B, m, 2, generator=g, dtype=torch.float64) * 1.3 + 0.4
    b = torch.rand(B, m, generator=g, dtype=torch.float64) + 0.5
    return x, a / a.sum(), y, b / b.sum(-1, keepdim=True)


@pytest.mark.parametrize("kern", ["gaussian", "imq", "energy"])
@pytest.mark.parametrize("stat", ["unbiased", "biased"])
def test_batched_mmd_equals_single_pair(kern, stat):
    x, a, y, b = _clouds()
    got = sl.batched_mmd2(x, a, y, b, kernel=kern, bandwidth=0.8, statistic=stat)
    for i in range(y.shape[0]):
        ref, _ = kernel.mmd2(x, a, y[i], b[i], kern, 0.8, stat)
        assert float(got[i]) == pytest.approx(float(ref), abs=1e-12)


def test_batched_sinkhorn_equals_single_pair():
    x, a, y, b = _clouds(B=2, m=30, n=35)
    st = sl.SinkhornState()
    got = sl.batched_sinkhorn(x, a, y, b, epsilon=0.5, state=st, tol=1e-12, max_iter=5000)
    for i in range(2):
        ref, _ = transport.sinkhorn_divergence(x, a, y[i], b[i], 0.5, tol=1e-12, max_iter=5000)
        assert float(got[i]) == pytest.approx(float(ref), abs=1e-9)


def test_batched_w1d_and_ksd_equal_single_pair():
    x, a, y, b = _clouds(B=2, m=30, n=35)
    got = sl.batched_w1d(x[:, 0], a, y[..., 0], b, 2)
    for i in range(2):
        ref = transport.wasserstein_1d(x[:, :1], a, y[i, :, :1], b[i], 2)
        assert float(got[i]) == pytest.approx(float(ref), abs=1e-12)
    s = -y  # the score of a standard normal
    got = sl.batched_ksd2(y, b, s, bandwidth=1.0, statistic="unbiased")
    for i in range(2):
        ref, _ = stein.ksd2(y[i], b[i], s[i], 1.0, "unbiased")
        assert float(got[i]) == pytest.approx(float(ref), abs=1e-12)


def test_model_at_every_step_for_every_family(blobs):
    t1 = dl.Mixture([dl.Normal(-1.0, 1.0), dl.Normal(2.0, 0.5)])
    cases = [(t1, "normal", {}, dl.Normal), (t1, "student_t", {}, dl.StudentT), (t1, "mixture", {"components": 2}, dl.Mixture),
             (blobs, "mvn", {}, dl.MultivariateNormal), (blobs, "diag", {}, dl.MultivariateNormal),
             (blobs, "mixture", {"components": 2}, dl.Mixture)]
    for target, fam, kw, cls in cases:
        grid = {"n": 129} if target.dim == 2 else {"box": [-15.0, 15.0], "n": 1025}
        r = dl.fit(target, family=fam, divergence="kl", steps=3, optimizer="sgd", **grid, **kw)
        for step in (0, -1):
            q = r.model(step)
            assert isinstance(q, cls) and q.dim == target.dim
        if fam == "mvn":
            q = r.model(1)
            sx, sy, c = (r.trajectory[k][1] for k in ("scale_x", "scale_y", "corr"))
            np.testing.assert_allclose(q.cov.numpy(), [[sx * sx, c * sx * sy], [c * sx * sy, sy * sy]], atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"family": "mvn"}, r"fit\(family='mvn'\): the mvn family is 2D but the target is 1D", id="dim"),
    pytest.param({"components": 2}, r"fit\(components=2\): components applies to family='mixture' only", id="comp"),
    pytest.param({"family": "mixture", "components": 6}, r"fit\(components=6\): components must be an integer in \[1, 5\]",
                 id="k"),
    pytest.param({"family": "mixture", "estimator": "mc", "divergence": "reverse_kl"}, r"no reparameterized sampler",
                 id="mix-mc"),
    pytest.param({"divergence": "kl", "estimator": "samples"}, r"no sample estimator for fitting kl", id="kl-samples"),
    pytest.param({"divergence": "mmd", "estimator": "quadrature"}, r"mmd has no density formula", id="mmd-quad"),
    pytest.param({"estimator": "grid"}, r"fit\(estimator='grid'\)", id="estimator"),
    pytest.param({"family": "student_t", "init": {"df": -1.0}}, r"df=-1.0\): df must be > 0", id="df"),
    pytest.param({"family": "student_t", "init": {"nu": 3.0}}, r"unknown parameter 'nu'", id="name"),
    pytest.param({"time_budget_s": 0.0}, r"fit\(time_budget_s=0.0\): time_budget_s must be > 0", id="budget"),
    pytest.param({"divergence": "mmd", "options": {"mmd": {"tol": 1}}}, r"unknown option 'tol'", id="option"),
])
def test_fit_errors_name_argument_and_value(kwargs, match):
    args = {"divergence": "kl", **kwargs}
    with pytest.raises(ValueError, match=match):
        dl.fit(dl.Normal(0.0, 1.0), **args)


def test_2d_errors():
    p = dl.MultivariateNormal([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"exact Wasserstein fits are 1D only"):
        dl.fit(p, family="mvn", divergence="wasserstein", estimator="samples")
    with pytest.raises(ValueError, match=r"init\)\(corr=1.5\): corr must be < 1"):
        dl.fit(p, family="mvn", init={"corr": 1.5})


def test_point_cloud_target_fits_by_samples():
    # an Empirical target (e.g. an uploaded point cloud) has no density: sample divergences fit it
    pts = dl.MultivariateNormal([1.0, -1.0], [[0.5, 0.0], [0.0, 0.5]]).sample(300, seed=3)
    e = dl.Empirical(pts)
    r = dl.fit(e, family="diag", divergence="mmd", steps=120, lr=0.05, n=128, params={"bandwidth": 1.0})
    assert r.info["samples_target"] == 300  # the cloud itself, not a resample
    mean = pts.mean(0).numpy()
    assert r.params["loc_x"] == pytest.approx(mean[0], abs=0.15) and r.params["loc_y"] == pytest.approx(mean[1], abs=0.15)
    with pytest.raises(ValueError, match=r"has no density"):
        dl.fit(e, family="diag", divergence="kl")
    _finite(r)
