"""Particle flows (dl.flow): each flow moves particles to the target's moments; losses match
the divergences computed independently; seeded determinism; failures stop with a reason."""

import math

import numpy as np
import pytest
import torch

import divlab as dl
from divlab.divergences.kernel import mmd2
from divlab.divergences.transport import sinkhorn_divergence

MEAN2 = np.array([1.0, -0.5])
COV2 = np.array([[1.0, 0.5], [0.5, 0.8]])


def mvn():
    return dl.MultivariateNormal(MEAN2.tolist(), COV2.tolist())


def _uniform(n):
    return torch.full((n,), 1.0 / n, dtype=torch.float64)


@pytest.mark.parametrize("kind, steps", [("mmd", 80), ("sinkhorn", 40)])
def test_gradient_flows_reach_gaussian_moments_2d(kind, steps):
    res = dl.flow(mvn(), kind, n=100, steps=steps, n_target=150, seed=1, record_every=10)
    assert res.status == "completed"
    assert res.frames.shape == (steps // 10 + 1, 100, 2) and res.steps == list(range(0, steps + 1, 10))
    assert np.isfinite(res.frames).all() and np.isfinite(res.losses).all()
    # the loss falls by orders of magnitude from the offset start
    assert res.losses[-1] < 0.02 * res.losses[0]
    # frame-to-frame the flow descends its own loss (after the first frames, up to solver noise)
    assert np.all(np.diff(res.losses) <= 1e-6 + 1e-3 * res.losses[:-1])
    x = res.frames[-1]
    y = res.target_points
    # particles match the target samples' moments closely, and the target's within sampling error
    assert np.abs(x.mean(0) - y.mean(0)).max() < 0.03
    assert np.abs(np.cov(x.T) - np.cov(y.T)).max() < 0.12
    assert np.abs(x.mean(0) - MEAN2).max() < 0.25
    assert np.abs(np.cov(x.T) - COV2).max() < 0.3
    start = res.frames[0]
    assert np.abs(start.mean(0) - MEAN2).max() > 1.0  # it did move


def test_flow_losses_equal_independent_divergences():
    p = mvn()
    res = dl.flow(p, "mmd", n=50, steps=2, n_target=80, seed=3, record_every=1)
    x = torch.tensor(res.frames[0])
    y = torch.tensor(res.target_points)
    ref, _ = mmd2(x, _uniform(50), y, _uniform(80), "gaussian", res.options["bandwidth"], "biased")
    assert res.losses[0] == pytest.approx(float(ref), rel=1e-10)
    res = dl.flow(p, "sinkhorn", n=50, steps=2, n_target=80, seed=3, record_every=1, tol=1e-9, epsilon=0.5)
    x = torch.tensor(res.frames[1])
    ref, info = sinkhorn_divergence(x, _uniform(50), y, _uniform(80), res.options["epsilon"], tol=1e-9)
    assert info["status"] == "converged"
    assert res.losses[1] == pytest.approx(float(ref), rel=1e-7, abs=1e-9)
    assert res.info["loss"].startswith("S_ε")


def test_sinkhorn_warm_start_saves_iterations_same_path():
    p = mvn()
    kw = dict(n=80, steps=60, n_target=80, seed=0, record_every=20, tol=1e-4, epsilon=0.3)
    warm = dl.flow(p, "sinkhorn", warm=True, **kw)
    cold = dl.flow(p, "sinkhorn", warm=False, **kw)
    assert warm.info["sinkhorn_unconverged_steps"] == 0 and cold.info["sinkhorn_unconverged_steps"] == 0
    # same tolerance, same flow (up to the solver tolerance), >= 3x fewer iterations (measured 3.9x)
    assert np.abs(warm.frames - cold.frames).max() < 0.01
    assert warm.info["sinkhorn_iterations"] * 3 < cold.info["sinkhorn_iterations"]
    assert len(warm.info["sinkhorn_iterations_per_step"]) == 60


def test_relaxed_potentials_solve_the_same_problem_as_transport():
    from divlab.divergences._samples import sqdist
    from divlab.divergences.transport import sinkhorn_potentials
    from divlab.fit.flow import relaxed_potentials

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = torch.randn(50, 2, generator=g, dtype=torch.float64) + 0.5
    C = sqdist(x, y)
    la, lb = torch.log(_uniform(40)), torch.log(_uniform(50))
    f0, g0, it0, _, st0 = sinkhorn_potentials(C, la, lb, 0.2, tol=1e-11, max_iter=20000)
    f1, g1, it1, err, st1 = relaxed_potentials(C, la, lb, 0.2, tol=1e-11, max_iter=20000)
    assert st0 == st1 == "converged" and err < 1e-11
    # potentials are unique up to f + c, g − c
    c = float((f1 - f0).mean())
    assert float((f1 - f0 - c).abs().max()) < 1e-10 and float((g1 - g0 + c).abs().max()) < 1e-10
    assert it1 < it0  # over-relaxation pays (measured about half)


def test_svgd_matches_gaussian_1d_and_2d():
    p = dl.Normal(2.0, 0.5)
    res = dl.flow(p, "svgd", n=100, steps=150, seed=0, record_every=50)
    x = res.frames[-1][:, 0]
    assert res.frames.shape == (4, 100, 1)
    assert x.mean() == pytest.approx(2.0, abs=0.03)
    assert x.var() == pytest.approx(0.25, rel=0.1)
    assert res.losses[-1] < 0.05 * res.losses[0]
    assert "energy distance" in res.loss_name
    res2 = dl.flow(mvn(), "svgd", n=100, steps=200, lr=0.25, seed=0, record_every=200)
    x2 = res2.frames[-1]
    assert np.abs(x2.mean(0) - MEAN2).max() < 0.1
    assert np.abs(np.cov(x2.T) - COV2).max() < 0.2


def test_langevin_stationary_moments_match_ula_closed_form():
    sigma, mu, h = 2.0, 1.0, 0.8  # lr = 0.2 σ²
    res = dl.flow(dl.Normal(mu, sigma), "langevin", n=2000, steps=150, lr=h, seed=5, record_every=150,
                  n_target=100)
    x = res.frames[-1][:, 0]
    # ULA on N(μ, σ²): x' = x + h(μ − x)/σ² + √(2h) ξ has stationary variance σ²/(1 − h/(2σ²))
    v_ula = sigma**2 / (1 - h / (2 * sigma**2))
    se_var = v_ula * math.sqrt(2 / x.size)
    assert x.mean() == pytest.approx(mu, abs=4 * sigma / math.sqrt(x.size))
    assert abs(x.var() - v_ula) < 4 * se_var
    # and it is measurably not the exact σ² (the O(lr) bias is real): v_ula = 4.44
    assert v_ula - sigma**2 > 2 * se_var


def test_langevin_2d_moments():
    res = dl.flow(mvn(), "langevin", n=1500, steps=300, seed=2, record_every=300, n_target=300)
    x = res.frames[-1]
    assert np.abs(x.mean(0) - MEAN2).max() < 0.1
    assert np.abs(np.cov(x.T) - COV2).max() < 0.12


@pytest.mark.parametrize("kind", ["mmd", "sinkhorn", "svgd", "langevin"])
def test_flows_deterministic_with_seed(kind):
    kw = dict(n=40, steps=8, n_target=60, record_every=4)
    a = dl.flow(dl.Normal(0.0, 1.0), kind, seed=7, **kw)
    b = dl.flow(dl.Normal(0.0, 1.0), kind, seed=7, **kw)
    c = dl.flow(dl.Normal(0.0, 1.0), kind, seed=8, **kw)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.losses, b.losses)
    assert not np.array_equal(a.frames, c.frames)
    assert np.isfinite(a.frames).all() and not np.isnan(a.losses).any()


def test_empirical_target_and_given_particles():
    pts = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64).repeat(10, 1)
    target = dl.Empirical(pts)
    start = np.random.default_rng(0).normal(size=(30, 2)) * 0.1 + 3.0
    res = dl.flow(target, "sinkhorn", particles=start, steps=40, seed=0, record_every=40)
    assert res.n == 30 and res.info["n_target"] == 40
    assert np.allclose(res.frames[0], start)
    # the particles end up centred on the target's points
    assert np.abs(res.frames[-1].mean(0)).max() < 0.05
    assert res.losses[-1] < 0.01 * res.losses[0]
    with pytest.raises(ValueError, match="svgd needs the target's score"):
        dl.flow(target, "svgd")


def test_diverging_flow_stops_with_reason_and_no_nan():
    res = dl.flow(dl.Normal(0.0, 1.0), "langevin", n=20, steps=200, lr=1e6, seed=0, n_target=50)
    assert res.status.startswith("diverged: ") and "lr" in res.status
    assert np.isfinite(res.frames).all() and not np.isnan(res.losses).any()
    assert res.steps[-1] < 200
    # a target with bounded support: the score is not finite outside it
    res = dl.flow(dl.Uniform(0.0, 1.0), "svgd", particles=np.linspace(2.0, 3.0, 10), steps=5, n_target=50)
    assert res.status.startswith("diverged: the target's score is not finite")
    assert res.frames.shape[0] >= 1 and not np.isnan(res.losses).any()


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"divergence": "kl"}, "divergence must be one of", id="divergence"),
    pytest.param({"n": 1}, r"flow\(n=1\)", id="n"),
    pytest.param({"steps": -1}, r"flow\(steps=-1\)", id="steps"),
    pytest.param({"lr": -0.1}, r"flow\(lr=-0.1\)", id="lr"),
    pytest.param({"lr": float("nan")}, r"flow\(lr=nan\)", id="lr-nan"),
    pytest.param({"record_every": 0}, r"flow\(record_every=0\)", id="record_every"),
    pytest.param({"seed": -2}, r"flow\(seed=-2\)", id="seed"),
    pytest.param({"bandwidth": 0.0}, r"flow\(bandwidth=0.0\)", id="bandwidth"),
    pytest.param({"epsilon": 1.0}, "unknown option 'epsilon'", id="option-of-other-flow"),
    pytest.param({"loss": "kl"}, r"flow\(loss='kl'\)", id="loss"),
    pytest.param({"particles": np.zeros((5, 3))}, "particles must have shape", id="particles-shape"),
    pytest.param({"particles": [[0.0, float("nan")]] * 3}, "particles must be finite", id="particles-nan"),
    pytest.param({"divergence": "sinkhorn", "epsilon": -1}, r"flow\(epsilon=-1\)", id="epsilon"),
    pytest.param({"divergence": "sinkhorn", "warm": "yes"}, r"flow\(warm='yes'\)", id="warm"),
    pytest.param({"divergence": "sinkhorn", "relax": 2.0}, r"flow\(relax=2.0\)", id="relax"),
])
def test_bad_input_names_parameter(kwargs, match):
    kw = {"divergence": "mmd", **kwargs}
    with pytest.raises(ValueError, match=match):
        dl.flow(mvn(), kw.pop("divergence"), steps=kw.pop("steps", 2), **kw)
    with pytest.raises(ValueError, match="target must be a divlab distribution"):
        dl.flow([1.0, 2.0], "mmd")


def test_particles_as_frames_helpers():
    res = dl.flow(dl.Normal(0.0, 1.0), "mmd", n=30, steps=4, record_every=2, n_target=40)
    e = res.particles(0)
    assert isinstance(e, dl.Empirical) and e.dim == 1 and e.n == 30
    assert np.allclose(e.points.numpy(), res.frames[0][:, 0])
    d = res.as_dict()
    assert d["steps"] == [0, 2, 4] and len(d["frames"]) == 3
