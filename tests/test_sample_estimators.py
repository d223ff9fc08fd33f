"""Estimators of KL / Rényi from samples alone (divlab.estimators.samples) against closed forms.

Interval: value ± (3·stderr + error), as the module documents (stderr from the per-sample terms,
error the half-sample bias indicator). Truths are divlab's Gaussian closed forms.
"""

import math

import numpy as np
import pytest
import torch

import divlab as dl


def pair(d):
    """p = N(0, I), q = N(μ, 1.2² I) with |μ| = 0.5 in d dimensions."""
    if d == 1:
        return dl.Normal(0.0, 1.0), dl.Normal(0.5, 1.2)
    mu = 0.5 * torch.ones(d, dtype=torch.float64) / math.sqrt(d)
    return (dl.MultivariateNormal(torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64)),
            dl.MultivariateNormal(mu, 1.44 * torch.eye(d, dtype=torch.float64)))


def within(est, truth):
    v = float(est)
    return abs(v - truth) <= 3 * est.stderr + est.error, f"{est!r} vs truth {truth:.4f} (bar {3 * est.stderr + est.error:.3g})"


CASES = [pytest.param(name, d, key, a, id=f"{name}-d{d}-{key}{a or ''}")
         for name, dims in (("knn", (1, 2, 5)), ("kde", (1, 2)), ("nn_ratio", (1, 2)))
         for d in dims
         for key, a in (("kl", None), ("renyi", 0.5), ("renyi", 2.0))]


@pytest.mark.parametrize("name,d,key,alpha", CASES)
def test_sample_estimators_cover_gaussian_closed_forms(name, d, key, alpha):
    p, q = pair(d)
    kw = {"alpha": alpha} if alpha is not None else {}
    truth = float(dl.divergence(p, q, key, "closed_form", **kw))
    est = dl.estimate(p, q, key, estimator=name, n=2000, seed=3, **kw)
    ok, msg = within(est, truth)
    assert ok, msg
    assert est.estimator == name and est.info["dim"] == d and est.n == 2000


@pytest.mark.parametrize("name", ["knn", "kde", "nn_ratio"])
def test_error_shrinks_with_n(name):
    """Root-mean-square error over 6 seeds in 2D drops from n = 200 to n = 3200 (16x the samples)."""
    p, q = pair(2)
    truth = float(dl.divergence(p, q, "kl", "closed_form"))
    errs = {n: math.sqrt(np.mean([(float(dl.estimate(p, q, "kl", estimator=name, n=n, seed=s)) - truth) ** 2
                                  for s in range(6)]))
            for n in (200, 3200)}
    assert errs[3200] < 0.6 * errs[200], errs


@pytest.mark.parametrize("name", ["dv", "nwj"])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_variational_bounds_stay_below_kl(name, d):
    p, q = pair(d)
    truth = float(dl.divergence(p, q, "kl", "closed_form"))
    est = dl.estimate(p, q, "kl", estimator=name, n=2000, seed=0)
    assert float(est) <= truth + 3 * est.stderr, f"{est!r} above KL = {truth:.4f}"
    assert est.info["bound"] == "lower" and "lower bound" in est.info["warning"]
    # and it is a useful bound here: within 0.15 nats (plus noise) of the truth
    assert float(est) >= truth - 0.15 - 3 * est.stderr, f"{est!r} far below KL = {truth:.4f}"


def test_mutual_information_of_a_bivariate_gaussian():
    """I(X; Y) = −½ log(1 − ρ²) = KL(p_xy ‖ p_x p_y); the product sample permutes one coordinate."""
    rho = 0.8
    mi = -0.5 * math.log(1 - rho**2)
    joint = dl.MultivariateNormal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    xy = joint.sample(2000, seed=11)
    other = joint.sample(2000, seed=12)
    g = torch.Generator().manual_seed(5)
    prod = torch.stack([other[:, 0], other[torch.randperm(2000, generator=g), 1]], dim=1)
    est = dl.estimate(xy, prod, "kl", estimator="knn")
    ok, msg = within(est, mi)
    assert ok, msg
    assert abs(float(est) - mi) < 0.08


def test_point_clouds_in_any_dimension_and_auto_choice():
    p, q = pair(5)
    X, Y = p.sample(1500, seed=1), q.sample(1500, seed=2)
    a = dl.estimate(dl.Empirical(X), dl.Empirical(Y), "kl")  # auto: no densities -> knn
    b = dl.estimate(X, Y, "kl", estimator="knn")
    assert a.estimator == "knn" and float(a) == pytest.approx(float(b), abs=0.0)
    # a distribution against samples: p is sampled (n draws), q's cloud is used as given
    c = dl.estimate(p, dl.Empirical(Y), "kl", estimator="knn", n=1500, seed=4)
    truth = float(dl.divergence(p, q, "kl", "closed_form"))
    for est in (a, c):
        ok, msg = within(est, truth)
        assert ok, msg
    # the existing sample divergences take 5D clouds too (MMD of a cloud with itself is 0)
    assert float(dl.divergence(X, X, "mmd", options={}, statistic="biased")) == pytest.approx(0.0, abs=1e-12)


def test_errors_name_object_parameter_and_value():
    X = torch.randn(50, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"estimator='knn'\)\(k=0\): k must be an integer >= 1"):
        dl.estimate(X, X + 1, "kl", estimator="knn", options={"k": 0})
    with pytest.raises(ValueError, match=r"unknown option 'kk'"):
        dl.estimate(X, X + 1, "kl", estimator="knn", options={"kk": 3})
    with pytest.raises(ValueError, match=r"bandwidth='wide'"):
        dl.estimate(X, X + 1, "kl", estimator="kde", options={"bandwidth": "wide"})
    with pytest.raises(ValueError, match=r"p is 2D and q is 3D"):
        dl.estimate(X, torch.randn(50, 3, dtype=torch.float64), "kl", estimator="knn")
    with pytest.raises(ValueError, match=r"coincides with a sample of q"):
        dl.estimate(X, X, "kl", estimator="knn")
    with pytest.raises(ValueError, match=r"needs k > \|α − 1\|"):
        dl.estimate(X, X + 1, "renyi", estimator="knn", alpha=3.0, options={"k": 1})


def test_sliced_wasserstein_in_5d():
    """Sliced W_2 between N(0, I_5) and its shift by δ: SW_2² = E_θ(θ·δ)² = |δ|²/d for θ uniform on the
    sphere (the projections of two Gaussians differing by a shift are 1D shifts)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3000, 5, generator=g, dtype=torch.float64)
    Y = torch.randn(3000, 5, generator=g, dtype=torch.float64) + torch.tensor([1.0, 0.5, 0, 0, 0], dtype=torch.float64)
    est = dl.estimate(X, Y, "sliced_wasserstein", n_projections=400)
    truth = math.sqrt(1.25 / 5)
    assert abs(float(est) - truth) <= 3 * est.stderr + 0.02, (est, truth)
