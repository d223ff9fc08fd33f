"""Continuation in the separation of 0.5·N(−d,1) + 0.5·N(d,1) and the covering / mode-seeking
phase diagram, against an independent scipy computation (quadrature + optimizers)."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

import divlab as dl
from divlab.fit.continuation import continuation, phase_diagram, two_modes

#: the separation where reverse KL's off-centre optimum becomes global: the root of
#: centred(d) − off_centre(d) by scipy.optimize.brentq on [2.5, 3] with the functions below
#: (xtol 1e-9): 2.800082
D_CRIT = 2.800082


def _rkl(mu, s, d):
    """KL(N(μ, s²) ‖ 0.5N(−d,1) + 0.5N(d,1)) by Simpson's rule on ±12 s (independent of divlab)."""
    x = np.linspace(mu - 12 * s, mu + 12 * s, 4001)
    lq = stats.norm.logpdf(x, mu, s)
    lp = np.logaddexp(stats.norm.logpdf(x, -d, 1), stats.norm.logpdf(x, d, 1)) + math.log(0.5)
    return integrate.simpson(np.exp(lq) * (lq - lp), x=x)


def _centred(d):
    return optimize.minimize_scalar(lambda ls: _rkl(0.0, math.exp(ls), d), bounds=(-3, 3), method="bounded",
                                    options={"xatol": 1e-10}).fun


def _off_centre(d):
    r = optimize.minimize(lambda t: _rkl(t[0], math.exp(t[1]), d), [d, 0.0], method="Nelder-Mead",
                          options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
    return r.fun, r.x[0], math.exp(r.x[1])


def test_reverse_kl_branches_and_critical_separation():
    c = continuation(two_modes, [2.0, 2.5, 3.0], "reverse_kl", restarts=6, steps=250, refine_tol=2e-3)
    # one centred branch all along; two mirror-image mode-seeking branches appear by d = 2.5
    centred = [b for b in c.branches if abs(b.params[0]["loc"]) < 1e-3]
    off = [b for b in c.branches if abs(b.params[0]["loc"]) > 1.0]
    assert len(centred) == 1 and centred[0].index == [0, 1, 2]
    assert len(off) == 2 and all(b.index == [1, 2] for b in off)
    # the reference numbers at d = 3: global ±2.984 / 1.023 / 0.6888, centred 2.744 / 0.8406
    assert c.best(2)["params"]["loc"] == pytest.approx(2.9843, abs=1e-3) or \
        c.best(2)["params"]["loc"] == pytest.approx(-2.9843, abs=1e-3)
    assert c.best(2)["value"] == pytest.approx(0.68877, abs=1e-4)
    assert centred[0].params[2]["scale"] == pytest.approx(2.7438, abs=1e-3)
    assert centred[0].losses[2] == pytest.approx(0.84062, abs=1e-4)
    # independent: the off-centre optimum at d = 2.5 (scipy Nelder–Mead on Simpson quadrature)
    v, mu, s = _off_centre(2.5)
    b = off[0]
    assert abs(b.params[0]["loc"]) == pytest.approx(abs(mu), abs=1e-3)
    assert b.params[0]["scale"] == pytest.approx(s, abs=1e-3) and b.losses[0] == pytest.approx(v, abs=1e-5)
    # the global optimum switches from centred to a mode where the two values cross
    assert c.global_branch[0] == c.global_branch[1] == centred[0].id != c.global_branch[2]
    (sw,) = c.switches
    assert sw["value"] == pytest.approx(D_CRIT, abs=2e-3)
    # and the independent functions really cross there: centred lower just below, higher just above
    lo, hi = sw["value"] - 0.01, sw["value"] + 0.01
    assert _centred(lo) < _off_centre(lo)[0] and _centred(hi) > _off_centre(hi)[0]


def test_phase_diagram_forward_covers_reverse_switches():
    seps = [1.0, 2.5, 3.0]
    pd = phase_diagram(["kl", "reverse_kl"], seps, restarts=6, steps=250, refine_tol=5e-3)
    k, r = pd.divergences.index("kl"), pd.divergences.index("reverse_kl")
    # forward KL: moment matching μ = 0, σ² = 1 + d² at every d, always covering
    assert np.abs(pd.loc[k]).max() < 1e-5
    assert pd.scale[k] == pytest.approx(np.sqrt(1 + np.square(seps)), abs=1e-5)
    assert pd.covers[k].all() and pd.critical["kl"] is None
    # reverse KL: centred (covering) below the critical separation, on one mode above it
    assert pd.covers[r].tolist() == [True, True, False]
    assert pd.critical["reverse_kl"] == pytest.approx(D_CRIT, abs=5e-3)
    # mode metrics: the target is unimodal at d = 1 (two modes for d > 1); the covering fit holds both
    # modes in its 95 % HDR, the mode-seeking one at d = 3 holds one and about half of p's mass
    assert pd.modes[:, 0].tolist() == [1, 1] and pd.modes[:, 2].tolist() == [2, 2]
    assert pd.modes_covered[k, 2] == 2 and pd.modes_covered[r, 2] == 1
    assert pd.coverage[r, 2] == pytest.approx(0.477, abs=0.01)
    assert pd.coverage[k, 2] > 0.99


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"values": [1.0]}, "at least two finite values", id="values-short"),
    pytest.param({"values": [1.0, 3.0, 2.0]}, "strictly monotone", id="values-order"),
    pytest.param({"make_target": 3.0}, "make_target must be a function", id="make_target"),
    pytest.param({"make_target": lambda d: d}, "returned float", id="make_target-returns"),
    pytest.param({"restarts": 0}, r"restarts=0", id="restarts"),
    pytest.param({"tol": -1.0}, r"tol=-1.0", id="tol"),
])
def test_bad_input(kwargs, match):
    kw = {"make_target": two_modes, "values": [1.0, 2.0], "divergence": "kl", **kwargs}
    with pytest.raises(ValueError, match=match):
        continuation(kw.pop("make_target"), kw.pop("values"), kw.pop("divergence"), steps=5, **kw)
    with pytest.raises(ValueError, match="separations must be increasing"):
        phase_diagram("kl", [3.0, 2.0])
    assert isinstance(two_modes(1.0), dl.Mixture)
