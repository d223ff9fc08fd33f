"""Mode metrics (dl.mode_metrics): HDR coverage/precision against closed forms (Φ differences in
1D, noncentral χ² in 2D), mode counting with prominence, point clouds by KDE, along fits/flows."""

import math

import numpy as np
import pytest
from scipy import optimize, stats

import divlab as dl
from divlab.fit.metrics import hdr_threshold, mode_metrics, mode_metrics_along

Z = stats.norm.ppf(0.975)
BIMODAL = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


@pytest.mark.parametrize("mu, s", [(0.0, 1.0), (0.5, 2.0), (-1.0, 0.5), (3.0, 1.0), (0.0, 0.2)])
def test_normal_pair_closed_form(mu, s):
    m = mode_metrics(dl.Normal(0.0, 1.0), dl.Normal(mu, s))
    # q's 95 % HDR = [μ − zσ, μ + zσ]; p's = [−z, z]
    cov = stats.norm.cdf(mu + Z * s) - stats.norm.cdf(mu - Z * s)
    prec = stats.norm.cdf((Z - mu) / s) - stats.norm.cdf((-Z - mu) / s)
    assert m["coverage"] == pytest.approx(cov, abs=2e-3)
    assert m["precision"] == pytest.approx(prec, abs=2e-3)
    assert m["modes"] == 1 and abs(m["mode_locations"][0][0]) < 0.01
    assert m["modes_covered"] == int(abs(mu) <= Z * s)


def test_identical_distributions_give_the_level():
    for p in (dl.Normal(1.0, 2.0), BIMODAL, dl.MultivariateNormal([0.5, -1.0], [[1.0, 0.6], [0.6, 2.0]])):
        m = mode_metrics(p, p)
        assert m["coverage"] == pytest.approx(0.95, abs=2e-3)
        assert m["precision"] == pytest.approx(0.95, abs=2e-3)
        assert m["modes_covered"] == m["modes"]


@pytest.mark.parametrize("mx, my, s", [(0.0, 0.0, 1.0), (1.0, 0.5, 1.5), (2.0, -1.0, 0.7)])
def test_isotropic_2d_closed_form(mx, my, s):
    # p = N(0, I), q = N(m, s²I): q's HDR is the disc |x − m|² ≤ c s², c = −2 ln 0.05
    c = -2 * math.log(0.05)
    m = mode_metrics(dl.MultivariateNormal([0.0, 0.0]), dl.MultivariateNormal([mx, my], [[s * s, 0], [0, s * s]]))
    lam = mx * mx + my * my
    cov = stats.ncx2.cdf(c * s * s, 2, lam) if lam > 0 else stats.chi2.cdf(c * s * s, 2)
    prec = stats.ncx2.cdf(c / (s * s), 2, lam / (s * s)) if lam > 0 else stats.chi2.cdf(c / (s * s), 2)
    assert m["coverage"] == pytest.approx(cov, abs=3e-3)
    assert m["precision"] == pytest.approx(prec, abs=3e-3)
    assert m["modes"] == 1 and np.abs(m["mode_locations"][0]).max() < 0.1


def _bimodal_hdr_threshold():
    """Independent: p's 95 % HDR {p ≥ t} by root finding (its two symmetric intervals)."""
    pdf = lambda x: 0.5 * stats.norm.pdf(x, -3, 1) + 0.5 * stats.norm.pdf(x, 3, 1)  # noqa: E731

    def mass(t):  # {p ≥ t} ∩ [0, ∞) = [a, b] around the mode 3 (t above the valley p(0))
        a = optimize.brentq(lambda x: pdf(x) - t, 0.0, 3.0)
        b = optimize.brentq(lambda x: pdf(x) - t, 3.0, 20.0)
        cdf = stats.norm.cdf
        return (cdf(b - 3) - cdf(a - 3)) + (cdf(b + 3) - cdf(a + 3)), a, b

    t = optimize.brentq(lambda t: mass(t)[0] - 0.95, pdf(0.0) * 1.0001, pdf(3.0) * 0.999)
    return t, mass(t)[1], mass(t)[2]


def test_bimodal_covering_vs_mode_seeking():
    t, a, b = _bimodal_hdr_threshold()
    for mu, s, covered in ((0.0, math.sqrt(10.0), 2), (2.984, 1.023, 1)):
        m = mode_metrics(BIMODAL, dl.Normal(mu, s))
        lo, hi = mu - Z * s, mu + Z * s
        cov = sum(0.5 * (stats.norm.cdf(hi - c) - stats.norm.cdf(lo - c)) for c in (-3.0, 3.0))
        prec = sum(stats.norm.cdf((y - mu) / s) - stats.norm.cdf((x - mu) / s) for x, y in ((a, b), (-b, -a)))
        assert m["modes"] == 2
        assert sorted(x[0] for x in m["mode_locations"]) == pytest.approx([-3.0, 3.0], abs=0.01)
        assert m["modes_covered"] == covered
        assert m["coverage"] == pytest.approx(cov, abs=2e-3)
        assert m["precision"] == pytest.approx(prec, abs=2e-3)
        assert m["threshold_p"] == pytest.approx(t, rel=5e-3)  # the HDR edge to a grid cell


def test_three_blobs_2d():
    blobs = [dl.MultivariateNormal(c, [[0.3, 0.0], [0.0, 0.3]]) for c in ([-2.0, 0.0], [2.0, 0.0], [0.0, 2.5])]
    p = dl.Mixture(blobs)
    m = mode_metrics(p, blobs[0])
    assert m["modes"] == 3 and m["modes_covered"] == 1
    # q = one blob: its HDR holds 95 % of that blob (the others add ~nothing): coverage = 0.95/3
    assert m["coverage"] == pytest.approx(0.95 / 3, abs=3e-3)
    assert m["precision"] > 0.94
    wide = mode_metrics(p, dl.MultivariateNormal([0.0, 0.8], [[4.0, 0.0], [0.0, 3.0]]))
    assert wide["modes_covered"] == 3 and wide["coverage"] > 0.97


def test_prominence_threshold_counts_small_bumps_only_when_asked():
    p = dl.Mixture([dl.Normal(0.0, 1.0), dl.Normal(4.0, 0.3)], weights=[0.99, 0.01])
    # the bump: height ≈ 0.01·N(0; 0, 0.3) ≈ 0.0133 above a valley of ~0.0003, vs the peak 0.395
    assert mode_metrics(p, p, prominence=0.01)["modes"] == 2
    assert mode_metrics(p, p, prominence=0.05)["modes"] == 1


def test_hdr_threshold_of_uniform_weights():
    dens = np.array([4.0, 3.0, 2.0, 1.0])
    w = np.ones(4)
    # masses 0.4, 0.3, 0.2, 0.1: 70 % HDR is exactly {4, 3}
    assert hdr_threshold(dens, w, 0.7) == pytest.approx(3.0)
    assert hdr_threshold(dens, w, 0.8) == pytest.approx(2.5)  # half-way through the value 2


def test_particles_by_kde():
    x = np.asarray(dl.Normal(0.0, 1.0).sample(2000, seed=1))
    m = mode_metrics(dl.Normal(0.0, 1.0), dl.Empirical(x))
    # Scott's KDE widens the variance by (1 + n^(−2/5)) ≈ 1.048: HDR half-width 1.96·1.024 → 0.956
    assert m["coverage"] == pytest.approx(0.95, abs=0.015)
    assert m["precision"] == pytest.approx(0.95, abs=0.015)
    assert m["modes"] == 1 and m["modes_covered"] == 1


def test_along_a_fit_and_a_flow():
    res = dl.fit(BIMODAL, "normal", "reverse_kl", init={"loc": 0.5, "scale": 4.0}, steps=60, polish=False)
    a = mode_metrics_along(BIMODAL, res, every=20)
    T = len(res.losses)
    assert a["steps"] == list(range(0, T, 20)) + ([T - 1] if (T - 1) % 20 else [])
    last = mode_metrics(BIMODAL, res.model(-1))
    assert a["coverage"][-1] == pytest.approx(last["coverage"], abs=3e-3)
    assert a["modes_covered"][0] == 2  # the wide start covers both modes
    assert len(a["coverage"]) == len(a["steps"]) == len(a["precision"])
    fl = dl.flow(dl.Normal(0.0, 1.0), "mmd", n=200, steps=40, n_target=200, record_every=20, seed=0)
    b = mode_metrics_along(dl.Normal(0.0, 1.0), fl)
    assert b["steps"] == [0, 20, 40]
    assert b["coverage"][0] < 0.5 < b["coverage"][-1]  # the blob starts off the mode and reaches it
    assert b["coverage"][-1] == pytest.approx(mode_metrics(dl.Normal(0.0, 1.0), fl.particles(-1))["coverage"], abs=0.01)


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"level": 1.0}, r"level=1.0", id="level"),
    pytest.param({"prominence": -0.1}, r"prominence=-0.1", id="prominence"),
    pytest.param({"grid_n": 3}, r"grid_n=3", id="grid_n"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mode_metrics(dl.Normal(0.0, 1.0), dl.Normal(0.0, 1.0), **kwargs)
    with pytest.raises(ValueError, match="must be a divlab distribution"):
        mode_metrics([0.0], dl.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="1D and the model 2D|target is 1D and the model 2D"):
        mode_metrics(dl.Normal(0.0, 1.0), dl.MultivariateNormal([0.0, 0.0]))
    with pytest.raises(ValueError, match="every must be a positive integer"):
        mode_metrics_along(dl.Normal(0.0, 1.0), dl.fit(dl.Normal(0.0, 1.0), steps=2), every=0)
