"""optimizer="fb_gvi": forward–backward Bures–Wasserstein Gaussian VI (divlab.fit.fbgvi) against
closed forms and against Adam's reverse-KL optimum (quadrature + Newton polish)."""

import math

import numpy as np
import pytest

import divlab as dl

BIMODAL = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


def close(a, b, tol):
    assert set(a) == set(b)
    for k in a:
        assert abs(a[k] - b[k]) <= tol, (k, a[k], b[k])


def test_gaussian_target_closed_form_and_adam():
    p = dl.Normal(1.0, 2.0)
    fb = dl.fit(p, "normal", "reverse_kl", optimizer="fb_gvi", steps=3000, lr=0.5, init={"loc": -2.0, "scale": 0.5})
    assert fb.status == "converged" and fb.optimizer == "fb_gvi"
    close(fb.params, {"loc": 1.0, "scale": 2.0}, 1e-8)
    adam = dl.fit(p, "normal", "reverse_kl", steps=2000, init={"loc": -2.0, "scale": 0.5})
    close(fb.params, adam.params, 1e-6)
    # the trajectory is recorded like Adam's: one entry per step, loss = KL(q‖p) falling to 0
    assert len(fb.trajectory["loc"]) == len(fb.losses) == fb.steps + 1
    assert fb.trajectory["loc"][0] == -2.0 and fb.losses[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(fb.losses) <= 1e-12)


def test_first_step_is_the_1d_formula():
    """One step by hand: m ← m − h E∇V, s = (1 − h E∇²V) σ, σ⁺ = (s + √(s² + 4h)) / 2 (V quadratic)."""
    p, h = dl.Normal(1.0, 2.0), 0.3
    fb = dl.fit(p, "normal", "reverse_kl", optimizer="fb_gvi", steps=1, lr=h, init={"loc": -2.0, "scale": 0.5})
    # V = (x − 1)²/8: E∇V = (m − 1)/4, E∇²V = 1/4
    m1 = -2.0 - h * (-3.0) / 4
    s = (1 - h / 4) * 0.5
    assert fb.trajectory["loc"][1] == pytest.approx(m1, abs=1e-13)
    assert fb.trajectory["scale"][1] == pytest.approx((s + math.sqrt(s * s + 4 * h)) / 2, abs=1e-13)


def test_bimodal_target_reaches_adams_optimum():
    init = {"loc": 1.5, "scale": 1.0}
    fb = dl.fit(BIMODAL, "normal", "reverse_kl", optimizer="fb_gvi", steps=5000, lr=0.3, init=init)
    adam = dl.fit(BIMODAL, "normal", "reverse_kl", steps=2000, init=init)
    assert fb.status == "converged" and adam.status == "converged"
    close(fb.params, adam.params, 1e-6)
    assert fb.params["loc"] == pytest.approx(2.9843, abs=1e-4)  # one mode, slightly pulled inwards


def test_banana_reaches_adams_optimum():
    b = dl.Banana()
    fb = dl.fit(b, "mvn", "reverse_kl", optimizer="fb_gvi", steps=5000, lr=0.05)
    adam = dl.fit(b, "mvn", "reverse_kl", steps=3000)
    assert fb.status == "converged"
    close(fb.params, adam.params, 1e-6)


def test_mean_field_shrinks_to_conditional_scale():
    """diag on N(0, [[1, ρ], [ρ, 1]]): the reverse-KL mean-field optimum has 1/σ² = Λ_ii = 1/(1 − ρ²)."""
    rho = 0.9
    g = dl.MultivariateNormal([0.0, 0.0], [[1.0, rho], [rho, 1.0]])
    fb = dl.fit(g, "diag", "reverse_kl", optimizer="fb_gvi", steps=5000, lr=0.05, n=16,
                init={"loc_x": 0.5, "loc_y": -0.3, "scale_x": 1.0, "scale_y": 1.0})
    s = math.sqrt(1 - rho**2)
    close(fb.params, {"loc_x": 0.0, "loc_y": 0.0, "scale_x": s, "scale_y": s}, 1e-4)
    full = dl.fit(g, "mvn", "reverse_kl", optimizer="fb_gvi", steps=5000, lr=0.05, n=16)
    close(full.params, {"loc_x": 0.0, "loc_y": 0.0, "scale_x": 1.0, "scale_y": 1.0, "corr": rho}, 1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"fb_gvi minimizes reverse_kl"):
        dl.fit(BIMODAL, "normal", "kl", optimizer="fb_gvi")
    with pytest.raises(ValueError, match=r"family='student_t'\): fb_gvi fits the Gaussian families"):
        dl.fit(BIMODAL, "student_t", "reverse_kl", optimizer="fb_gvi")
    with pytest.raises(ValueError, match=r"one divergence \(reverse_kl\) and restarts=1"):
        dl.fit(BIMODAL, "normal", "reverse_kl", optimizer="fb_gvi", restarts=3)
    with pytest.raises(ValueError, match=r"optimizer='bfgs'\): optimizer must be one of .*fb_gvi"):
        dl.fit(BIMODAL, "normal", "reverse_kl", optimizer="bfgs")


def test_mean_field_lesson():
    """The mean_field_correlated lesson: forward KL gives the marginal scales 1, reverse KL the
    conditional √(1 − ρ²); fb_gvi from the lesson's start reaches the same reverse-KL optimum."""
    lesson = dl.load_preset("mean_field_correlated")
    sc = lesson["scenario"]
    p = dl.from_spec(sc.target)
    fwd, rev = dl.fit(p, "diag", ["kl", "reverse_kl"], init=sc.model.init, steps=sc.optimizer.steps,
                      lr=sc.optimizer.lr, estimator="quadrature")
    s = math.sqrt(1 - 0.81)
    close({k: fwd.params[k] for k in ("scale_x", "scale_y")}, {"scale_x": 1.0, "scale_y": 1.0}, 1e-6)
    close({k: rev.params[k] for k in ("scale_x", "scale_y")}, {"scale_x": s, "scale_y": s}, 1e-6)
    assert fwd.final_loss == pytest.approx(0.5 * math.log(1 / 0.19), abs=1e-6)
    assert rev.final_loss == pytest.approx(0.5 * math.log(1 / 0.19), abs=1e-6)
    fb = dl.fit(p, "diag", "reverse_kl", optimizer="fb_gvi", init=sc.model.init, steps=5000, lr=0.05, n=16)
    close(fb.params, rev.params, 1e-6)
