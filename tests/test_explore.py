"""Reference fits, local optima and landscapes on the symmetric bimodal target ½N(−3,1) + ½N(3,1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import divlab as dl

RKL_OPT = {"loc": 2.984, "scale": 1.023, "value": 0.6888}  # reverse KL, the two mode-seeking optima
RKL_MID = {"loc": 0.0, "scale": 2.744, "value": 0.8406}  # reverse KL, the symmetric local optimum


@pytest.fixture(scope="module")
def bimodal():
    return dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


@pytest.mark.parametrize("init", [pytest.param({"loc": -2.0, "scale": 1.0}, id="left"),
                                  pytest.param({"loc": 4.0, "scale": 0.5}, id="right-narrow"),
                                  pytest.param(None, id="default")])
def test_forward_kl_matches_moments(bimodal, init):
    # KL(p‖q) over normals is minimized by p's mean and variance: (0, √(1 + 9))
    r = dl.fit(bimodal, divergence="kl", init=init, steps=300)
    assert r.converged
    assert abs(r.params["loc"]) < 1e-3 and abs(r.params["scale"] - math.sqrt(10)) < 1e-3


def test_reverse_kl_reference_optimum(bimodal):
    r = dl.fit(bimodal, divergence="reverse_kl", init={"loc": -2.0, "scale": 1.0}, steps=300)
    assert abs(r.params["loc"] + RKL_OPT["loc"]) < 1e-3 and abs(r.params["scale"] - RKL_OPT["scale"]) < 1e-3
    assert abs(r.final_loss - RKL_OPT["value"]) < 1e-4
    # the value at the optimum agrees with the front door's quadrature
    v = float(dl.divergence(bimodal, r.model(), "reverse_kl", estimator="quadrature"))
    assert abs(v - r.final_loss) < 1e-9


def test_local_optima_reverse_kl(bimodal):
    opt = dl.local_optima(bimodal, family="normal", divergence="reverse_kl", restarts=32, seed=0)
    assert [o.value for o in opt] == sorted(o.value for o in opt)
    glob = [o for o in opt if o.is_global]
    assert len(glob) == 2 and opt[0].is_global  # ±2.984: mirror images, the same value
    assert sorted(round(o.params["loc"], 3) for o in glob) == [-RKL_OPT["loc"], RKL_OPT["loc"]]
    for o in glob:
        assert abs(o.params["scale"] - RKL_OPT["scale"]) < 1e-3 and abs(o.value - RKL_OPT["value"]) < 1e-4
    mid = [o for o in opt if not o.is_global]
    assert len(mid) == 1
    m = mid[0]
    assert abs(m.params["loc"]) < 1e-3 and abs(m.params["scale"] - RKL_MID["scale"]) < 1e-3
    assert abs(m.value - RKL_MID["value"]) < 1e-4 and m.share > 0
    assert abs(sum(o.share for o in opt) + opt.unresolved / len(opt.fits) - 1) < 1e-12
    assert len(opt.fits) == 32


def test_landscape_matches_divergence_and_fit(bimodal):
    land = dl.landscape(bimodal, family="normal", divergence="reverse_kl", n=(81, 61))
    assert land.values.shape == (61, 81) and land.loc.shape == (81,) and land.log_scale.shape == (61,)
    assert np.isfinite(land.values).all()
    am = land.argmin
    # the lattice minimum sits next to one of the fitted optima (lattice spacing ~0.14 in loc, ~0.04 in log σ)
    assert abs(abs(am["loc"]) - RKL_OPT["loc"]) < 0.1 and abs(math.log(am["scale"] / RKL_OPT["scale"])) < 0.05
    assert am["value"] >= RKL_OPT["value"] - 1e-4
    for j, i in [(0, 0), (30, 40), (60, 80), (10, 70)]:
        q = dl.Normal(float(land.loc[i]), float(np.exp(land.log_scale[j])))
        v = float(dl.divergence(bimodal, q, "reverse_kl", estimator="quadrature"))
        assert abs(land.values[j, i] - v) <= 1e-8 * (1 + abs(v))


def test_landscape_chunks_give_the_same_values(bimodal, monkeypatch):
    from divlab.fit import explore

    a = dl.landscape(bimodal, divergence="js", n=(7, 5))
    monkeypatch.setattr(explore, "CHUNK_ELEMENTS", 4 * a.info["grid_points"])  # four models per chunk
    b = dl.landscape(bimodal, divergence="js", n=(7, 5))
    assert a.info["chunks"] == 1 and b.info["chunks"] == 9
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-14)


@pytest.mark.parametrize("call, match", [
    pytest.param(lambda p: dl.landscape(p, n=(1, 5)), r"landscape\(n=\(1, 5\)\): n_loc must be in \[2, 2001\]", id="n"),
    pytest.param(lambda p: dl.landscape(p, loc_range=[2, 1]), r"landscape\(loc_range=\[2, 1\]\)", id="range"),
    pytest.param(lambda p: dl.local_optima(p, divergence=["kl"]), r"local_optima\(divergence=\['kl'\]\)", id="list"),
    pytest.param(lambda p: dl.local_optima(p, restarts=0), r"local_optima\(restarts=0\)", id="restarts"),
])
def test_explore_errors(bimodal, call, match):
    with pytest.raises(ValueError, match=match):
        call(bimodal)


def test_sweep_alpha_warm_starts_follow_a_branch(bimodal):
    vals = [0.0, 0.5, 1.0]
    rs = dl.sweep(bimodal, family="normal", divergence="alpha", param="alpha", values=vals,
                  init={"loc": -2.0, "scale": 1.0}, steps=300)
    assert [r.divergence_params["alpha"] for r in rs] == vals
    assert rs[1].init == rs[0].params and rs[2].init == rs[1].params  # warm starts
    assert len({tuple(r.info["grid_box"]) for r in rs}) == 1  # one grid for the whole sweep
    # α = 0 is KL(q‖p) (a mode), α = 1 is KL(p‖q) (the moments)
    assert abs(rs[0].params["loc"] + RKL_OPT["loc"]) < 1e-3 and abs(rs[0].params["scale"] - RKL_OPT["scale"]) < 1e-3
    assert abs(rs[-1].params["loc"]) < 1e-3 and abs(rs[-1].params["scale"] - math.sqrt(10)) < 1e-3
    cold = dl.sweep(bimodal, divergence="alpha", values=vals, warm=False, init={"loc": -2.0, "scale": 1.0}, steps=300)
    assert all(r.init == {"loc": -2.0, "scale": 1.0} for r in cold)


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"param": "beta", "values": [0.5]}, r"sweep\(param='beta'\): divergence 'alpha' has no numeric", id="param"),
    pytest.param({"values": []}, r"sweep\(values=\[\]\): give at least one value", id="empty"),
    pytest.param({"values": [5.0]}, r"sweep\(divergence='alpha'\)\(alpha=5.0\): alpha must be in", id="range"),
])
def test_sweep_errors(bimodal, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dl.sweep(bimodal, divergence="alpha", **kwargs)


def test_landscape_and_sweep_are_for_the_normal_family(bimodal):
    for fn in (dl.landscape, dl.sweep):
        with pytest.raises(ValueError, match=r"family='mvn'\): only the 1D normal family is supported here"):
            fn(bimodal, family="mvn")


def test_local_optima_of_reverse_kl_mvn_sit_on_the_blobs():
    # three well-separated blobs: reverse KL from an MVN sitting on blob k is ≈ −log w_k
    # (the other blobs' overlap is ~1e-5), so the optima have values ln 2 (w = 0.5) and ln 4
    cov = [[0.4, 0.0], [0.0, 0.4]]
    blobs = dl.Mixture([dl.MultivariateNormal([-3.0, 0.0], cov), dl.MultivariateNormal([3.0, 1.0], cov),
                        dl.MultivariateNormal([0.0, -4.0], cov)], weights=[0.25, 0.5, 0.25])
    opt = dl.local_optima(blobs, family="mvn", divergence="reverse_kl", restarts=6, steps=120, n=65, lr=0.1)
    g = opt.global_optimum
    assert g.is_global and g.value == pytest.approx(math.log(2.0), abs=1e-3)
    assert g.params["loc_x"] == pytest.approx(3.0, abs=1e-2) and g.params["loc_y"] == pytest.approx(1.0, abs=1e-2)
    assert g.params["scale_x"] == pytest.approx(math.sqrt(0.4), abs=1e-2)
    others = [o for o in opt[1:] if abs(o.value - math.log(4.0)) < 1e-3]
    assert others and all(not o.is_global for o in opt[1:])
    assert sum(o.count for o in opt) + opt.unresolved == 6
    with pytest.raises(ValueError, match=r"local_optima\(family='mixture'\): supported families are"):
        dl.local_optima(blobs, family="mixture")
