"""Monte Carlo estimators ("mc"): unbiased (mean over seeds vs closed form / quadrature),
calibrated standard errors, reparameterized gradients, infinities with reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import divlab as dl

DT = torch.float64

PAIRS = {
    "normal-normal": lambda: (dl.Normal(0.0, 1.0), dl.Normal(0.7, 1.4)),
    "mixture-normal": lambda: (dl.Mixture([dl.Normal(-2.0, 1.0), dl.Normal(2.0, 0.5)], [0.3, 0.7]),
                               dl.Normal(0.0, 2.0)),
    "mvn-mvn": lambda: (dl.MultivariateNormal([0.0, 0.0], [[1.0, 0.3], [0.3, 1.0]]),
                        dl.MultivariateNormal([0.5, -0.5], [[1.5, 0.0], [0.0, 0.8]])),
}
CASES = [("kl", {}), ("reverse_kl", {}), ("alpha", {"alpha": 0.5}), ("alpha", {"alpha": 0.3}),
         ("alpha", {"alpha": 1.0}), ("alpha", {"alpha": 0.0})]


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("key,params", CASES, ids=[f"{k}-{p}" for k, p in CASES])
def test_mc_is_unbiased_over_200_seeds(pair, key, params):
    p, q = PAIRS[pair]()
    ref = float(dl.estimate(p, q, key, estimator="quadrature", **params))
    ests = [dl.estimate(p, q, key, estimator="mc", n=64, seed=s, **params) for s in range(200)]
    vals = np.array([float(e) for e in ests])
    se_mean = vals.std(ddof=1) / math.sqrt(len(vals))
    assert abs(vals.mean() - ref) < 3 * se_mean, (vals.mean(), ref, se_mean)
    # the reported per-estimate standard error matches the spread over seeds
    assert 0.7 < np.mean([e.stderr for e in ests]) / vals.std(ddof=1) < 1.3
    assert all(e.estimator == "mc" and e.n == 64 for e in ests)


def test_mc_is_seeded():
    p, q = PAIRS["normal-normal"]()
    assert float(dl.estimate(p, q, "kl", estimator="mc", seed=3)) == float(dl.estimate(p, q, "kl", estimator="mc", seed=3))


def test_reverse_kl_mc_gradient_is_reparameterized():
    loc = torch.tensor(0.5, dtype=DT, requires_grad=True)
    scale = torch.tensor(1.2, dtype=DT, requires_grad=True)
    p = dl.Normal(0.0, 1.0)
    est = dl.estimate(p, dl.Normal(loc, scale), "reverse_kl", estimator="mc", n=20000, seed=0)
    est.value.backward()
    # exact: d/dloc KL(q‖p) = loc; d/dscale = scale − 1/scale
    assert float(loc.grad) == pytest.approx(0.5, abs=0.05)
    assert float(scale.grad) == pytest.approx(1.2 - 1 / 1.2, abs=0.05)


def test_infinite_kl_has_a_reason():
    est = dl.estimate(dl.Normal(0.0, 1.0), dl.Uniform(-1.0, 1.0), "kl", estimator="mc", n=500, seed=0)
    assert math.isinf(float(est)) and "q = 0" in est.reason


def test_mc_errors():
    with pytest.raises(ValueError, match="mc estimator needs densities.*Empirical"):
        dl.estimate(dl.Empirical([0.0, 1.0]), dl.Normal(0.0, 1.0), "kl", estimator="mc")
    with pytest.raises(ValueError, match=r"unknown option 'foo'"):
        dl.estimate(dl.Normal(0.0, 1.0), dl.Normal(0.0, 1.0), "kl", estimator="mc", options={"foo": 1})
    with pytest.raises(ValueError, match=r"n=1\): n must be an integer >= 2"):
        dl.estimate(dl.Normal(0.0, 1.0), dl.Normal(0.0, 1.0), "reverse_kl", estimator="mc", n=1)


def test_mc_listed_in_catalogue():
    for key in ("kl", "reverse_kl", "alpha"):
        assert "mc" in dl.divergences.get(key).estimators
