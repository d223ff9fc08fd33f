"""Identities, bounds, limits and gradient weights of the density divergences."""

import math

import numpy as np
import pytest
import torch

import divlab as dl
from divlab.divergences import FDIVS, catalogue, get
from divlab.estimators import make_grid

DENSITY_KEYS = [s.key for s in catalogue() if s.from_logs is not None and s.key != "f_divergence"]
SYMMETRIC = [s.key for s in catalogue() if s.symmetric and s.from_logs is not None]
PARAMS = {"alpha": {"alpha": 0.4}, "renyi": {"alpha": 0.6}, "tsallis": {"alpha": 0.7}, "skew_kl": {"lam": 0.3}}
# χ² divergences between Gaussian mixtures can be infinite (tail ratios); keep their cases tame
HEAVY = {"pearson", "neyman"}


def _random_mixture(rng, dim=1, k=None):
    k = k or int(rng.integers(1, 4))
    comps = []
    for _ in range(k):
        if dim == 1:
            comps.append(dl.Normal(rng.uniform(-3, 3), rng.uniform(0.7, 1.5)))
        else:
            comps.append(dl.MultivariateNormal(rng.uniform(-2, 2, 2), np.diag(rng.uniform(0.5, 1.2, 2))))
    return dl.Mixture(comps, rng.uniform(0.2, 1.0, k))


def _cases(n, dim=1, seed=3):
    rng = np.random.default_rng(seed)
    return [(_random_mixture(rng, dim), _random_mixture(rng, dim)) for _ in range(n)]


@pytest.mark.parametrize("key", DENSITY_KEYS)
def test_nonnegative_and_zero_at_identity(key):
    params = PARAMS.get(key, {})
    for p, q in _cases(6):
        if key in HEAVY:
            q = dl.Mixture(q.components + [dl.Normal(0.0, 4.0)], torch.cat([q.weights, q.weights.new_tensor([0.3])]))
        v = float(dl.divergence(p, q, key, **params))
        assert v >= -1e-12, (key, v)
        assert float(dl.divergence(p, p, key, "quadrature", **params)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("key", DENSITY_KEYS)
def test_identity_in_2d(key):
    p = _random_mixture(np.random.default_rng(5), dim=2, k=2)
    assert float(dl.divergence(p, p, key, "quadrature", **PARAMS.get(key, {}))) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("key", SYMMETRIC)
def test_symmetric_ones_are_symmetric(key):
    for p, q in _cases(5):
        a = float(dl.divergence(p, q, key, "quadrature"))
        b = float(dl.divergence(q, p, key, "quadrature"))
        assert a == pytest.approx(b, rel=1e-10, abs=1e-14)


def test_asymmetric_kl_is_not_symmetric():
    p, q = _cases(1)[0]
    assert abs(float(dl.divergence(p, q, "kl")) - float(dl.divergence(q, p, "kl"))) > 1e-3


def test_bounds():
    for p, q in _cases(8, seed=11):
        assert float(dl.divergence(p, q, "hellinger", "quadrature")) <= 1.0
        assert float(dl.divergence(p, q, "js")) <= math.log(2) + 1e-15
        assert float(dl.divergence(p, q, "tv")) <= 1.0


def test_alpha_limits():
    for p, q in _cases(4, seed=21):
        kl = float(dl.divergence(p, q, "kl"))
        rkl = float(dl.divergence(p, q, "reverse_kl"))
        limits = [("alpha", 1, kl), ("alpha", 0, rkl), ("renyi", 1, kl), ("tsallis", 1, kl)]
        for key, a0, ref in limits:
            errs = []
            for eps in (1e-3, 1e-5):
                a = 1 - eps if a0 == 1 else eps
                errs.append(abs(float(dl.divergence(p, q, key, alpha=a)) - ref))
            # the limit is approached linearly in ε: 100× smaller ε, ~100× smaller error
            assert errs[1] <= 1e-3 * abs(ref), (key, a0, errs)
            assert errs[1] <= errs[0] / 20 + 1e-12, (key, a0, errs)
        assert float(dl.divergence(p, q, "alpha", alpha=1.0)) == pytest.approx(kl, rel=1e-12)
        assert float(dl.divergence(p, q, "alpha", alpha=0.0)) == pytest.approx(rkl, rel=1e-12)
        # α = ½ is 4·H², Rényi ½ is 2·Bhattacharyya, skew λ = 0 is KL
        h2 = float(dl.divergence(p, q, "hellinger"))
        assert float(dl.divergence(p, q, "alpha", alpha=0.5)) == pytest.approx(4 * h2, rel=1e-12)
        bh = float(dl.divergence(p, q, "bhattacharyya"))
        assert float(dl.divergence(p, q, "renyi", alpha=0.5)) == pytest.approx(2 * bh, rel=1e-12)
        assert float(dl.divergence(p, q, "skew_kl", lam=0.0)) == pytest.approx(kl, rel=1e-12)


def test_renyi_nondecreasing_in_alpha():
    p, q = _cases(1, seed=4)[0]
    vals = [float(dl.divergence(p, q, "renyi", alpha=a)) for a in (0.1, 0.3, 0.5, 0.9, 1.0, 1.5)]
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:]))


def test_jeffreys_is_sum_of_kls():
    p, q = _cases(1, seed=8)[0]
    j = float(dl.divergence(p, q, "jeffreys"))
    assert j == pytest.approx(float(dl.divergence(p, q, "kl")) + float(dl.divergence(p, q, "reverse_kl")), rel=1e-12)


# ------------------------------------------------------------------ disjoint supports
def test_disjoint_supports():
    p, q = dl.Uniform(0.0, 1.0), dl.Uniform(2.0, 3.0)
    kl = dl.estimate(p, q, "kl")
    assert math.isinf(float(kl)) and float(kl) > 0 and not math.isnan(float(kl))
    assert "no mass where the target p does" in kl.reason
    rkl = dl.estimate(p, q, "reverse_kl")
    assert math.isinf(float(rkl)) and "puts mass where the target p has none" in rkl.reason
    assert float(dl.divergence(p, q, "js")) == pytest.approx(math.log(2), rel=1e-14)
    assert float(dl.divergence(p, q, "tv")) == pytest.approx(1.0, rel=1e-14)
    assert float(dl.divergence(p, q, "hellinger")) == pytest.approx(1.0, rel=1e-14)
    cs = dl.estimate(p, q, "cauchy_schwarz")
    assert math.isinf(float(cs)) and "disjoint" in cs.reason
    # skew KL stays finite: KL(p ‖ λp + (1−λ)q) = −log λ when supports are disjoint
    assert float(dl.divergence(p, q, "skew_kl", lam=0.25)) == pytest.approx(-math.log(0.25), rel=1e-12)


def test_nested_uniform_supports():
    # KL(U(0,1) ‖ U(0,2)) = log 2; the reverse is infinite
    p, q = dl.Uniform(0.0, 1.0), dl.Uniform(0.0, 2.0)
    assert float(dl.divergence(p, q, "kl")) == pytest.approx(math.log(2), rel=5e-3)
    assert math.isinf(float(dl.divergence(p, q, "reverse_kl")))


def test_disjoint_gradients_are_not_nan():
    loc = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    q = dl.Uniform(loc - 0.5, loc + 0.5)
    v = dl.divergence(dl.Uniform(0.0, 1.0), q, "js")
    v.backward()
    assert not torch.isnan(loc.grad)


# ------------------------------------------------------------------ gradient weights
F_KEYS = [k for k in FDIVS if FDIVS[k].h is not None]


def _pathwise(p, key, params, mu, sigma, grid):
    """E_q[h(r) (∇x log q − ∇x log p) ∂x/∂θ] for q = N(mu, sigma²), θ = (μ, log σ), by quadrature."""
    x = grid.points
    q = dl.Normal(mu, sigma)
    lq, lp = q.log_prob(x), p.log_prob(x)
    r = torch.exp(lp - lq)
    h = dl.gradient_weight(key, r, **params)
    sq = -(x - mu) / sigma**2
    sp = p.score(x)
    g = q.prob(x) * h * (sq - sp)
    w = grid.weights
    return float((w * g).sum()), float((w * g * (x - mu)).sum())


@pytest.mark.parametrize("key", F_KEYS)
def test_gradient_weight_pathwise_identity(key):
    params = PARAMS.get(key, {})
    p = dl.Mixture([dl.Normal(-1.5, 0.8), dl.Normal(1.0, 1.2)], [0.4, 0.6])
    mu0, s0 = 0.3, 1.1
    grid = make_grid(p, dl.Normal(mu0, s0), n=8193)
    mu = torch.tensor(mu0, dtype=torch.float64, requires_grad=True)
    ls = torch.tensor(math.log(s0), dtype=torch.float64, requires_grad=True)
    v = dl.divergence(p, dl.Normal(mu, ls.exp()), key, "quadrature", grid=grid, **params)
    v.backward()
    gm, gs = _pathwise(p, key, params, mu0, s0, grid)
    assert float(mu.grad) == pytest.approx(gm, abs=1e-6)
    assert float(ls.grad) == pytest.approx(gs, abs=1e-6)


def test_tv_gradient_score_function_form():
    # h is a point mass for TV; its gradient is −½ ∫ sign(p − q) ∇θ q
    p = dl.Mixture([dl.Normal(-1.5, 0.8), dl.Normal(1.0, 1.2)], [0.4, 0.6])
    grid = make_grid(p, dl.Normal(0.3, 1.1), n=8193)
    mu = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    v = dl.divergence(p, dl.Normal(mu, 1.1), "tv", "quadrature", grid=grid)
    v.backward()
    x = grid.points
    q = dl.Normal(0.3, 1.1)
    dq_dmu = q.prob(x) * (x - 0.3) / 1.1**2
    ref = float(-0.5 * (grid.weights * torch.sign(p.prob(x) - q.prob(x)) * dq_dmu).sum())
    assert float(mu.grad) == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError, match="δ"):
        dl.gradient_weight("tv", torch.ones(3))


def test_named_weights():
    r = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(dl.gradient_weight("kl", r), r)
    assert torch.allclose(dl.gradient_weight("reverse_kl", r), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(dl.gradient_weight("alpha", r, alpha=0.3), r**0.3)


def test_every_named_h_matches_autograd_of_f():
    from divlab.divergences.fdiv import _h_autograd

    r = torch.logspace(-2, 2, 25, dtype=torch.float64)
    for key in F_KEYS:
        fd, params = FDIVS[key], PARAMS.get(key, {})
        ref = _h_autograd(lambda u: fd.f(u, **params), r)
        assert torch.allclose(fd.h(r, **params), ref, rtol=1e-9, atol=1e-12), key


def test_every_named_f_normalized_and_matches_core():
    u = torch.logspace(-3, 3, 31, dtype=torch.float64)
    for key, fd in FDIVS.items():
        params = PARAMS.get(key, {})
        one = torch.tensor(1.0, dtype=torch.float64)
        assert abs(float(fd.f(one, **params))) < 1e-14, key
        # core(lp, lq) = q f(p/q)
        lq = torch.full_like(u, -0.7)
        lp = torch.log(u) + lq
        assert torch.allclose(fd.core(lp, lq, **params), lq.exp() * fd.f(u, **params), rtol=1e-9, atol=1e-14), key


# ------------------------------------------------------------------ generic f
def test_generic_f_divergence_matches_named():
    p, q = _cases(1, seed=2)[0]
    v = float(dl.divergence(p, q, "f_divergence", f=lambda u: torch.special.xlogy(u, u)))
    assert v == pytest.approx(float(dl.divergence(p, q, "kl", "quadrature")), rel=1e-10)
    sq = float(dl.divergence(p, q, "f_divergence", f=lambda u: (torch.sqrt(u) - 1) ** 2))
    assert sq == pytest.approx(2 * float(dl.divergence(p, q, "hellinger", "quadrature")), rel=1e-10)
    h = dl.gradient_weight("f_divergence", torch.tensor([2.0], dtype=torch.float64), f=lambda u: u * torch.log(u))
    assert float(h) == pytest.approx(2.0)


def test_generic_f_rejects_bad_f():
    from divlab.divergences import generic_fdivergence

    with pytest.raises(ValueError, match="f\\(1\\) must be 0"):
        generic_fdivergence(lambda u: u**2)
    with pytest.raises(ValueError, match="convex"):
        generic_fdivergence(lambda u: -(u - 1) ** 2)
    with pytest.raises(ValueError, match="callable"):
        dl.divergence(dl.Normal(), dl.Normal(1.0), "f_divergence", f=3.0)


# ------------------------------------------------------------------ API errors
def test_unknown_divergence_and_params():
    p, q = dl.Normal(), dl.Normal(1.0)
    with pytest.raises(ValueError, match="divergence='klx' is unknown"):
        dl.divergence(p, q, "klx")
    with pytest.raises(ValueError, match="unknown parameter 'alpah'"):
        dl.divergence(p, q, "alpha", alpah=0.5)
    with pytest.raises(ValueError, match=r"alpha=7.0\): alpha must be in"):
        dl.divergence(p, q, "alpha", alpha=7.0)
    with pytest.raises(ValueError, match="estimator='magic'"):
        dl.divergence(p, q, "kl", estimator="magic")
    with pytest.raises(ValueError, match="same dimension"):
        dl.divergence(p, dl.MultivariateNormal(), "kl")


def test_catalogue_entries_complete():
    entries = dl.catalogue()
    keys = {e.key for e in entries}
    for k in ["kl", "reverse_kl", "jeffreys", "js", "hellinger", "tv", "pearson", "neyman", "alpha", "skew_kl",
              "renyi", "tsallis", "cauchy_schwarz", "bhattacharyya", "f_divergence"]:
        assert k in keys
    for e in entries:
        d = e.as_dict()
        for field in ("key", "name", "latex", "family", "params", "symmetric", "behaviour", "needs", "estimators"):
            assert field in d
        assert d["estimators"], e.key
        for prm in e.params:
            if prm.kind == "number":
                prm.check(e.key, prm.default)  # defaults are in range
    assert "closed_form" in get("kl").estimators and "quadrature" in get("kl").estimators


LOG_BASED = ("kl", "reverse_kl", "jeffreys", "js", "skew_kl", "renyi", "bhattacharyya", "cauchy_schwarz")
PURE_NUMBERS = ("hellinger", "tv", "pearson", "neyman", "alpha", "tsallis")


def test_every_entry_has_a_unit_from_the_allowed_set():
    """The unit lives in the one registry (issue 6): every entry has one, the catalogue's dict
    carries it, and it is what each definition implies: a log gives nats, a ratio of densities
    integrated without a log gives a pure number, transport a length (Sinkhorn's S_ε a squared one)."""
    from divlab.divergences.registry import DIMENSIONLESS, UNITS

    for e in dl.catalogue():
        assert e.unit in UNITS, e.key
        assert e.as_dict()["unit"] == e.unit
    for key in LOG_BASED:
        assert get(key).unit == "nats", key
    for key in PURE_NUMBERS:
        assert get(key).unit == DIMENSIONLESS == "dimensionless", key
    assert get("wasserstein").unit == get("sliced_wasserstein").unit == get("energy").unit == "units of x"
    assert get("sinkhorn").unit == "squared units of x"
    assert get("mmd").unit == get("ksd").unit == "kernel units"
    assert get("fisher").unit == "squared score units"


def test_register_refuses_an_entry_without_a_unit():
    from divlab.divergences.registry import DivergenceSpec, register

    spec = DivergenceSpec(key="_no_unit", name="x", latex="x", family="kernel", behaviour="balanced",
                          symmetric=True, direction="x", description="x")
    with pytest.raises(ValueError, match="unit=''"):
        register(spec)
    assert "_no_unit" not in dl.divergences.keys()


def test_unit_texts():
    from divlab.divergences.registry import unit_label, with_unit

    assert with_unit("0.5", "nats") == "0.5 nats" and with_unit("0.5", "dimensionless") == "0.5"
    assert get("tv").with_unit("0.5") == "0.5" and get("sinkhorn").with_unit("2") == "2 squared units of x"
    assert unit_label("dimensionless") == "" and unit_label(["nats", "nats"]) == "nats"
    assert unit_label(["nats", "dimensionless"]) == "nats; no unit"
    assert "nats" in repr(dl.estimate(dl.Normal(), dl.Normal(1.0, 1.0), "kl"))
    assert "nats" not in repr(dl.estimate(dl.Normal(), dl.Normal(1.0, 1.0), "hellinger"))


def test_quadrature_reports_error_and_masses():
    p = dl.StudentT(3.0, 0.0, 1.0)
    est = dl.estimate(p, dl.Normal(0.0, 2.0), "kl")
    assert est.estimator == "quadrature"
    assert est.info["mass_p"] <= 1.0 and est.info["mass_p"] > 0.999
    assert est.error >= 0 and est.n > 500
