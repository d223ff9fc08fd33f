"""The Ornstein–Uhlenbeck noise path (divlab.noise_path): exact laws, monotone divergences, de Bruijn."""

import math

import numpy as np
import pytest
import torch

import divlab as dl

BIMODAL = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


def test_ou_push_matches_simulated_ou():
    """Simulate X_t = e^{-t}X_0 + sqrt(1 - e^{-2t}) Z and compare moments with the pushed law."""
    t = 0.7
    x0 = BIMODAL.sample(200_000, seed=0)
    z = torch.randn(200_000, generator=torch.Generator().manual_seed(1), dtype=x0.dtype)
    xt = math.exp(-t) * x0 + math.sqrt(1 - math.exp(-2 * t)) * z
    pt = dl.ou_push(BIMODAL, t)
    grid = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    dens = pt.log_prob(grid).exp()
    mean = float(torch.trapezoid(grid * dens, grid))
    var = float(torch.trapezoid(grid**2 * dens, grid)) - mean**2
    # closed form: variance e^{-2t}(9 + 1) + 1 - e^{-2t}
    assert var == pytest.approx(math.exp(-2 * t) * 10 + 1 - math.exp(-2 * t), rel=1e-9)
    assert float(xt.var()) == pytest.approx(var, rel=0.01)
    assert float(xt.mean()) == pytest.approx(mean, abs=0.02)


def test_every_divergence_shrinks_along_the_path():
    q = dl.Normal(1.0, 0.7)
    path = dl.noise_path(BIMODAL, q, [0.0, 0.1, 0.3, 0.6, 1.0, 2.0, 4.0])
    for key in ("kl", "reverse_kl", "js", "hellinger", "fisher"):
        assert path.shrinks(key), (key, path.values[key])
    assert path.values["kl"][-1] < 1e-2 * path.values["kl"][0]


def test_de_bruijn_gaussian_pair():
    """Gaussians: both sides in closed form for KL; the Fisher integral by Simpson (no ½ in fisher)."""
    r = dl.de_bruijn(dl.Normal(0.0, 1.0), dl.Normal(0.5, 2.0), 2.0, nodes=33)
    assert abs(r["kl_drop"] - r["fisher_integral"]) <= r["quadrature_error"] + r["kl_error"]
    assert r["quadrature_error"] < 1e-5
    assert r["kl_drop"] == pytest.approx(r["fisher_integral"], rel=1e-6)


def test_de_bruijn_bimodal_target():
    r = dl.de_bruijn(BIMODAL, dl.Normal(1.0, 0.7), 3.0, nodes=65)
    assert abs(r["kl_drop"] - r["fisher_integral"]) <= r["quadrature_error"] + r["kl_error"]
    assert r["quadrature_error"] < 0.01 * r["kl_drop"]  # a tight check: 0.1 % of a 9.7-nat drop


def test_de_bruijn_2d_mvn_pair():
    p = dl.MultivariateNormal([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]])
    q = dl.MultivariateNormal([0.5, -0.5], [[2.0, 0.0], [0.0, 0.5]])
    r = dl.de_bruijn(p, q, 2.0, nodes=17, grid_n=161)
    assert abs(r["kl_drop"] - r["fisher_integral"]) <= r["quadrature_error"] + r["kl_error"] + 1e-3 * r["kl_drop"]


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"ou_push\(t=-1.0\): t must be a finite number >= 0"):
        dl.ou_push(BIMODAL, -1.0)
    with pytest.raises(ValueError, match=r"nodes must be 4k \+ 1"):
        dl.de_bruijn(BIMODAL, BIMODAL, 1.0, nodes=7)
    with pytest.raises(ValueError, match=r"ou_push\(d=StudentT"):
        dl.ou_push(dl.StudentT(3.0), 0.5)
