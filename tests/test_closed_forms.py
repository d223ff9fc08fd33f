"""Every registered closed form against quadrature (an independent computation of the same integral)."""

import math

import numpy as np
import pytest
import torch

import divlab as dl
from divlab.divergences.closed_form import closed_form_table

GAUSS_KEYS = [
    ("kl", {}), ("reverse_kl", {}), ("jeffreys", {}), ("hellinger", {}), ("bhattacharyya", {}),
    ("renyi", {"alpha": 0.3}), ("renyi", {"alpha": 0.7}), ("alpha", {"alpha": 0.3}), ("alpha", {"alpha": 0.5}),
    ("alpha", {"alpha": 0.8}), ("tsallis", {"alpha": 0.6}), ("cauchy_schwarz", {}),
    ("pearson", {}), ("neyman", {}), ("alpha", {"alpha": 2.0}), ("renyi", {"alpha": 3.0}),
]


def _rel(a, b):
    """Relative difference; two +∞ agree (0), one ∞ against a finite value is ∞ (never NaN)."""
    a, b = float(a), float(b)
    if math.isinf(a) or math.isinf(b):
        return 0.0 if a == b else math.inf
    return abs(a - b) / max(abs(b), 1e-300)


def _normal_pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield (dl.Normal(rng.uniform(-3, 3), rng.uniform(0.3, 3.0)), dl.Normal(rng.uniform(-3, 3), rng.uniform(0.3, 3.0)))


def _random_cov(rng):
    a = rng.uniform(0.4, 2.0, size=2)
    th = rng.uniform(0, math.pi)
    R = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    return R @ np.diag(a**2) @ R.T


def _mvn_pairs(n, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield (dl.MultivariateNormal(rng.uniform(-2, 2, 2), _random_cov(rng)),
               dl.MultivariateNormal(rng.uniform(-2, 2, 2), _random_cov(rng)))


def test_every_gaussian_closed_form_is_covered_here():
    table = closed_form_table()
    tested = {k for k, _ in GAUSS_KEYS}
    for key, pairs in table.items():
        # density divergences are checked against quadrature here; the sample-based ones
        # (wasserstein, mmd, energy) against their own references in test_transport/test_kernel
        if ("Normal", "Normal") in pairs and dl.divergences.get(key).from_logs is not None:
            assert key in tested, f"closed form for {key} is not tested against quadrature"


@pytest.mark.parametrize("key,params", GAUSS_KEYS, ids=[f"{k}-{p}" for k, p in GAUSS_KEYS])
def test_normal_pairs_closed_form_vs_quadrature(key, params):
    worst = 0.0
    for p, q in _normal_pairs(50):
        cf = dl.estimate(p, q, key, "closed_form", **params)
        qu = dl.estimate(p, q, key, "quadrature", **params)
        assert cf.estimator == "closed_form" and qu.estimator == "quadrature"
        worst = max(worst, _rel(qu.value, cf.value))
        if math.isfinite(float(cf.value)):
            assert qu.error < 1e-8 * max(1.0, abs(float(cf.value)))
        else:  # both +∞, both with a reason
            assert cf.reason and qu.reason
    assert worst <= 1e-8, worst


@pytest.mark.parametrize("key,params", GAUSS_KEYS, ids=[f"{k}-{p}" for k, p in GAUSS_KEYS])
def test_mvn_pairs_closed_form_vs_quadrature(key, params):
    worst = 0.0
    pairs = list(_mvn_pairs(20))
    for p, q in pairs:
        cf = dl.estimate(p, q, key, "closed_form", **params)
        qu = dl.estimate(p, q, key, "quadrature", **params)
        worst = max(worst, _rel(qu.value, cf.value))
    assert worst <= 1e-5, worst


def test_auto_uses_closed_form_then_falls_back():
    p, q = dl.Normal(0.0, 1.0), dl.Normal(1.0, 2.0)
    assert dl.estimate(p, q, "kl").estimator == "closed_form"
    mix = dl.Mixture([dl.Normal(-1.0, 1.0), dl.Laplace(1.0, 1.0)])
    assert dl.estimate(mix, q, "kl").estimator == "quadrature"
    # Cauchy–Schwarz declines a mixture with a non-Gaussian component: quadrature, said so
    assert dl.estimate(mix, q, "cauchy_schwarz").estimator == "quadrature"
    with pytest.raises(ValueError, match="no closed form"):
        dl.estimate(mix, q, "kl", "closed_form")


def _random_gm(rng, dim, k):
    comps = []
    for _ in range(k):
        if dim == 1:
            comps.append(dl.Normal(rng.uniform(-3, 3), rng.uniform(0.4, 1.5)))
        else:
            comps.append(dl.MultivariateNormal(rng.uniform(-2, 2, 2), _random_cov(rng) * 0.5))
    return dl.Mixture(comps, rng.uniform(0.1, 1.0, k))


@pytest.mark.parametrize("dim,tol", [(1, 1e-8), (2, 1e-5)])
def test_cauchy_schwarz_gaussian_mixtures(dim, tol):
    rng = np.random.default_rng(7)
    for _ in range(10 if dim == 1 else 6):
        p, q = _random_gm(rng, dim, rng.integers(1, 4)), _random_gm(rng, dim, rng.integers(1, 4))
        cf = dl.estimate(p, q, "cauchy_schwarz", "closed_form")
        qu = dl.estimate(p, q, "cauchy_schwarz", "quadrature")
        assert _rel(qu.value, cf.value) <= tol


def test_renyi_alpha_above_one_infinite_when_tails_too_light():
    # α/σp² + (1 − α)/σq² < 0: ∫ p^α q^(1−α) diverges
    p, q = dl.Normal(0.0, 2.0), dl.Normal(0.0, 1.0)
    est = dl.estimate(p, q, "renyi", alpha=2.0)
    assert est.estimator == "closed_form"
    assert math.isinf(float(est)) and float(est) > 0
    assert "diverges" in est.reason
    # and finite when q is wide enough: check against quadrature
    p, q = dl.Normal(0.0, 1.0), dl.Normal(0.5, 1.5)
    a = dl.estimate(p, q, "renyi", "closed_form", alpha=2.0)
    b = dl.estimate(p, q, "renyi", "quadrature", alpha=2.0)
    assert _rel(b.value, a.value) < 1e-8


def test_gaussian_kl_known_value():
    # KL(N(0,1) ‖ N(1,2²)) = log 2 + (1 + 1)/(2·4) − ½
    v = float(dl.divergence(dl.Normal(0.0, 1.0), dl.Normal(1.0, 2.0), "kl"))
    assert v == pytest.approx(math.log(2) + 2 / 8 - 0.5, rel=1e-14)


def test_closed_forms_are_batched():
    p = dl.Normal(torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64))
    q = dl.Normal(0.5, 1.5)
    v = dl.divergence(p, q, "kl")
    assert v.shape == (2,)
    for i in range(2):
        single = dl.divergence(dl.Normal(float(p.loc[i]), float(p.scale[i])), q, "kl")
        assert float(v[i]) == pytest.approx(float(single), rel=1e-14)


@pytest.mark.parametrize("dim", [1, 2])
def test_cauchy_schwarz_closed_form_vs_monte_carlo(dim):
    """Gaussian-mixture closed form vs the mc estimator (draws from p and from q, delta-method
    stderr): one n = 30 000 estimate per random pair within 3 SE, and the mean of 100 independent
    n = 2000 estimates within 3 SE of that mean (the O(1/n) log-of-mean bias is far smaller)."""
    rng = np.random.default_rng(11 + dim)
    for i in range(3):
        p, q = _random_gm(rng, dim, 2 + i % 2), _random_gm(rng, dim, 1 + i % 3)
        cf = float(dl.estimate(p, q, "cauchy_schwarz", "closed_form"))
        mc = dl.estimate(p, q, "cauchy_schwarz", "mc", n=30_000, seed=i)
        assert abs(float(mc) - cf) < 3 * mc.stderr, (float(mc), cf, mc.stderr)
        assert mc.stderr < 0.05 * max(cf, 0.1)  # the error bar is informative, not a blanket
        if i == 0:
            torch.manual_seed(dim)
            ests = [dl.estimate(p, q, "cauchy_schwarz", "mc", n=2000) for _ in range(100)]
            vals = np.array([float(e) for e in ests])
            assert abs(vals.mean() - cf) < 3 * vals.std(ddof=1) / 10, (vals.mean(), cf)
            assert 0.75 < np.mean([e.stderr for e in ests]) / vals.std(ddof=1) < 1.3
