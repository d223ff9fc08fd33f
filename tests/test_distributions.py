"""Distributions: normalization, sampling against moments, specs, and bad input."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import divlab as dl
from divlab.estimators import make_grid

ALL = [
    dl.Normal(0.5, 1.3), dl.MultivariateNormal([0.5, -1.0], [[1.0, 0.6], [0.6, 2.0]]), dl.StudentT(4.0, 1.0, 0.7),
    dl.Laplace(-1.0, 0.5), dl.Uniform(-1.0, 2.0), dl.Uniform([0.0, -1.0], [1.0, 2.0]),
    dl.Mixture([dl.Normal(-2.0, 0.5), dl.Laplace(2.0, 1.0)], [0.3, 0.7]),
    dl.GridDensity(np.linspace(-2, 2, 41), np.exp(-np.linspace(-2, 2, 41) ** 2)),
    dl.GridDensity((np.linspace(-1, 1, 21), np.linspace(0, 2, 11)), np.ones((11, 21))),
    dl.Banana(), dl.Ring(), dl.TwoMoons(),
]
IDS = [type(d).__name__ + f"{d.dim}d" for d in ALL]


@pytest.mark.parametrize("d", ALL, ids=IDS)
def test_normalized_on_its_box(d):
    g = make_grid(d, n=4001 if d.dim == 1 else 401)
    mass = float((g.weights * d.log_prob(g.points).exp()).sum())
    # trapezoid error: spectral for smooth densities; O(h²) at the Laplace kink; O(h) at Uniform's jumps
    kink = isinstance(d, dl.Laplace) or (isinstance(d, dl.Mixture) and any(isinstance(c, dl.Laplace) for c in d.components))
    tol = 5e-3 if isinstance(d, dl.Uniform) else (2e-4 if isinstance(d, dl.StudentT) else (1e-4 if kink else 1e-6))
    assert mass == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("d", ALL, ids=IDS)
def test_spec_round_trip(d):
    spec = d.to_spec()
    import json

    back = dl.from_spec(json.loads(json.dumps(spec)))
    assert type(back) is type(d)
    assert back.to_spec() == spec
    x = d.sample(50, seed=1)
    assert torch.allclose(back.log_prob(x), d.log_prob(x), rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("d", ALL, ids=IDS)
def test_sampling_is_seeded_and_matches_mean(d):
    a, b = d.sample(20000, seed=3), d.sample(20000, seed=3)
    assert torch.equal(a, b)
    assert a.shape == (20000,) + tuple(d.event_shape)
    assert not torch.equal(a, d.sample(20000, seed=4))
    g = make_grid(d, n=4001 if d.dim == 1 else 401)
    dens = (g.weights * d.log_prob(g.points).exp())
    dens = dens / dens.sum()
    mean = (dens[:, None] * g.points.reshape(g.n, -1)).sum(0)
    sd = torch.sqrt((dens[:, None] * (g.points.reshape(g.n, -1) - mean) ** 2).sum(0))
    emp = a.reshape(20000, -1).mean(0)
    assert torch.all((emp - mean).abs() < 5 * sd / math.sqrt(20000) + 1e-3), (emp, mean)


def test_sampling_distribution_ks():
    cases = [(dl.Normal(0.5, 1.3), stats.norm(0.5, 1.3).cdf), (dl.StudentT(4.0, 1.0, 0.7), stats.t(4.0, 1.0, 0.7).cdf),
             (dl.Laplace(-1.0, 0.5), stats.laplace(-1.0, 0.5).cdf)]
    for d, cdf in cases:
        x = d.sample(4000, seed=0).numpy()
        assert stats.kstest(x, cdf).pvalue > 1e-3


def test_grid_density_sampling_follows_interpolant():
    x = np.linspace(0, 4, 9)
    v = np.array([0, 1, 3, 1, 0, 2, 2, 0.5, 0])
    g = dl.GridDensity(x, v)
    s = g.sample(40000, seed=2)
    xs = torch.linspace(0, 4, 2001, dtype=torch.float64)
    cdf = torch.cumsum(g.prob(xs), 0) * (xs[1] - xs[0])
    cdf = (cdf / cdf[-1]).numpy()
    ks = stats.kstest(s.numpy(), lambda t: np.interp(t, xs.numpy(), cdf))
    assert ks.pvalue > 1e-3


def test_grid_density_2d_sampling_marginal():
    xs, ys = np.linspace(0, 1, 5), np.linspace(0, 2, 3)
    vals = np.outer([1.0, 1.0, 1.0], [0, 1, 2, 3, 4])  # density ∝ x, independent of y
    g = dl.GridDensity((xs, ys), vals)
    s = g.sample(40000, seed=5).numpy()
    assert stats.kstest(s[:, 0], lambda t: np.clip(t, 0, 1) ** 2).pvalue > 1e-3
    assert stats.kstest(s[:, 1], stats.uniform(0, 2).cdf).pvalue > 1e-3


def test_mvn_sample_covariance():
    cov = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=torch.float64)
    s = dl.MultivariateNormal([0.5, -1.0], cov).sample(100000, seed=0)
    assert torch.allclose(torch.cov(s.T), cov, atol=0.03)


def test_rsample_is_differentiable_and_mixture_is_not():
    loc = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    x = dl.Normal(loc, 2.0).rsample(10, seed=0)
    x.sum().backward()
    assert float(loc.grad) == 10.0
    with pytest.raises(TypeError, match="no reparameterized sampler"):
        dl.Mixture([dl.Normal()]).rsample(3)


def test_log_prob_against_scipy():
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)
    assert np.allclose(dl.Normal(0.5, 1.3).log_prob(x).numpy(), stats.norm(0.5, 1.3).logpdf(x.numpy()))
    assert np.allclose(dl.StudentT(3.0, 0.2, 0.9).log_prob(x).numpy(), stats.t(3.0, 0.2, 0.9).logpdf(x.numpy()))
    assert np.allclose(dl.Laplace(0.2, 0.9).log_prob(x).numpy(), stats.laplace(0.2, 0.9).logpdf(x.numpy()))
    pts = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)
    cov = [[1.0, 0.6], [0.6, 2.0]]
    assert np.allclose(dl.MultivariateNormal([0.5, -1.0], cov).log_prob(pts).numpy(),
                       stats.multivariate_normal([0.5, -1.0], cov).logpdf(pts.numpy()))


def test_batched_parameters_broadcast():
    d = dl.Normal(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), 1.0)
    assert d.batch_shape == (3,)
    x = torch.zeros(5, 1, dtype=torch.float64)
    assert d.log_prob(x).shape == (5, 3)
    assert d.sample(4, seed=0).shape == (4, 3)


def test_default_dtype_is_float64_on_cpu():
    assert dl.Normal(0.0, 1.0).dtype == torch.float64
    assert dl.Normal(0.0, 1.0, dtype=torch.float32).log_prob(torch.zeros(2)).dtype == torch.float32


# ------------------------------------------------------------------ bad input
BAD = [
    (lambda: dl.Normal(0.0, -1.0), r"Normal\(scale=-1.0\): scale must be > 0"),
    (lambda: dl.Normal(0.0, 0.0), r"Normal\(scale=0.0\): scale must be > 0"),
    (lambda: dl.Normal(float("nan"), 1.0), r"Normal\(loc=nan\): loc must be finite"),
    (lambda: dl.Normal(0.0, float("inf")), r"Normal\(scale=inf\): scale must be finite"),
    (lambda: dl.MultivariateNormal([0, 0], [[1.0, 2.0], [2.0, 1.0]]), r"MultivariateNormal\(cov=.*positive definite"),
    (lambda: dl.MultivariateNormal([0, 0], [[1.0, 0.5], [0.0, 1.0]]), r"cov must be symmetric"),
    (lambda: dl.MultivariateNormal([0, 0, 0], [[1, 0], [0, 1]]), r"cov must be a 3x3 matrix"),
    (lambda: dl.StudentT(-1.0), r"StudentT\(df=-1.0\): df must be > 0"),
    (lambda: dl.Laplace(0.0, -2.0), r"Laplace\(scale=-2.0\): scale must be > 0"),
    (lambda: dl.Uniform(1.0, 0.0), r"Uniform\(low=1.0, high=0.0\): high must be > low"),
    (lambda: dl.Mixture([dl.Normal(), dl.Normal(1.0)], [0.5, -0.5]), r"Mixture\(weights=\[0.5, -0.5\]\): weights must be >= 0"),
    (lambda: dl.Mixture([dl.Normal(), dl.Normal(1.0)], [0.0, 0.0]), r"weights must not sum to 0"),
    (lambda: dl.Mixture([dl.Normal(), dl.Normal(1.0)], [float("nan"), 1.0]), r"weights must be finite"),
    (lambda: dl.Mixture([dl.Normal()], [1.0, 2.0]), r"need one weight per component"),
    (lambda: dl.Mixture([]), r"at least one component"),
    (lambda: dl.Mixture([dl.Normal(), dl.MultivariateNormal()]), r"same dimension"),
    (lambda: dl.GridDensity([0.0, 1.0, 2.0], [0.0, 0.0, 0.0]), r"GridDensity\(values=.*zero mass"),
    (lambda: dl.GridDensity([0.0, 1.0, 2.0], [0.0, float("nan"), 1.0]), r"values must be finite"),
    (lambda: dl.GridDensity([0.0, 1.0, 2.0], [0.0, -1.0, 1.0]), r"values must be >= 0"),
    (lambda: dl.GridDensity([], []), r"at least 2 points"),
    (lambda: dl.GridDensity([0.0, 2.0, 1.0], [1.0, 1.0, 1.0]), r"strictly increasing"),
    (lambda: dl.GridDensity([0.0, 1.0], [1.0, 1.0, 1.0]), r"values must have shape"),
    (lambda: dl.Ring(radius=-1.0), r"Ring\(radius=-1.0\): radius must be > 0"),
    (lambda: dl.from_spec({"type": "normal", "loc": 0, "scal": 1}), r"normal spec: unknown key 'scal'"),
    (lambda: dl.from_spec({"type": "gauss"}), r"type='gauss' is unknown"),
    (lambda: dl.from_spec({"type": "normal", "loc": 0}), r"missing key 'scale'"),
    (lambda: dl.from_spec([1, 2]), r"expected an object"),
    (lambda: dl.Normal(0.0, "wide"), r"Normal\(scale='wide'\)"),
]


@pytest.mark.parametrize("make,msg", BAD, ids=[m for _, m in BAD])
def test_bad_input_raises_value_error_naming_it(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_deeply_nested_spec_rejected():
    spec = {"type": "normal", "loc": 0.0, "scale": 1.0}
    for _ in range(20):
        spec = {"type": "mixture", "components": [spec], "weights": [1.0]}
    with pytest.raises(ValueError, match="nested deeper"):
        dl.from_spec(spec)


def test_ring_and_banana_known_moments():
    # banana: x2 has mean 0 by construction (b (E x1² − s1²) = 0)
    s = dl.Banana(0.3, 1.5, 0.5).sample(200000, seed=0)
    assert abs(float(s[:, 1].mean())) < 0.02
    r = torch.linalg.vector_norm(dl.Ring(2.0, 0.3).sample(50000, seed=0), dim=-1)
    assert float(r.mean()) == pytest.approx(2.0 + 0.3**2 / 2.0, abs=0.01)  # E r ≈ r0 + w²/r0
