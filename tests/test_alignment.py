"""Alignment over discrete outcomes (issue 15): tilt, f-regularized optima, best-of-n, the
reward-vs-KL frontier and the k1/k2/k3 KL estimators, against direct sums, Monte Carlo and
autograd of divlab's own divergences."""

import math

import numpy as np
import pytest
import scipy.special as sps
import torch

import divlab as dl
from divlab import alignment as al

RNG = np.random.default_rng(7)
K = 30
P = RNG.dirichlet(np.ones(K))
R = RNG.normal(size=K)
R_TIES = np.round(RNG.normal(size=K), 0)  # a handful of reward levels: many ties


def test_tilt_against_direct_sums():
    beta = 0.6
    pi = dl.tilt(dl.Categorical(probs=P), R, beta).probs.numpy()
    w = P * np.exp(R / beta)
    ref = w / w.sum()
    np.testing.assert_allclose(pi, ref, rtol=1e-13)
    st = al.policy_stats(pi, P, R)
    assert st["kl"] == pytest.approx(sps.rel_entr(ref, P).sum(), rel=1e-12)
    assert st["reward"] == pytest.approx(ref @ R, rel=1e-13)
    # identity: KL(π*‖π_ref) = E_π*[r]/β − log Z
    assert st["kl"] == pytest.approx(ref @ R / beta - math.log(w.sum()), rel=1e-11)
    assert float(dl.divergence(dl.Categorical(probs=P), dl.Categorical(probs=pi), "reverse_kl")) == pytest.approx(st["kl"], rel=1e-12)


@pytest.mark.parametrize("key,alpha", [
    pytest.param("kl", 0.5, id="forward-kl"), pytest.param("js", 0.5, id="js"),
    pytest.param("alpha", 0.5, id="alpha-0.5"), pytest.param("alpha", 2.0, id="alpha-2"),
    pytest.param("alpha", -1.0, id="alpha-neg1"),
])
def test_regularized_optimum_is_the_maximum(key, alpha):
    beta = 0.8
    ref = dl.Categorical(probs=P)
    kw = {"alpha": alpha} if key == "alpha" else {}
    pi = al.regularized_optimum(ref, R, beta, key, alpha=alpha).probs.numpy()
    assert pi.sum() == pytest.approx(1.0, abs=1e-12)

    def objective(q):
        return q @ R - beta * float(dl.divergence(ref, dl.Categorical(probs=q), key, **kw))

    best = objective(pi)
    rng = np.random.default_rng(0)
    for _ in range(100):  # no nearby distribution does better
        z = np.log(np.clip(pi, 1e-300, None)) + 1e-3 * rng.normal(size=K)
        q = np.exp(z - z.max())
        assert objective(q / q.sum()) <= best + 1e-12
    if key == "kl":  # KKT: r_i + β·π_ref,i/π_i is the same constant λ on every outcome
        lam = R + beta * P / pi
        assert np.ptp(lam) < 1e-9 * max(1.0, abs(lam.mean()))


def test_alpha_limits_are_the_kls():
    ref = dl.Categorical(probs=P)
    t = dl.tilt(ref, R, 0.5).probs.numpy()
    np.testing.assert_allclose(al.regularized_optimum(ref, R, 0.5, "alpha", alpha=0.0).probs.numpy(), t, rtol=1e-13)
    np.testing.assert_allclose(al.regularized_optimum(ref, R, 0.5, "alpha", alpha=1e-7).probs.numpy(), t, rtol=1e-5)
    np.testing.assert_allclose(al.regularized_optimum(ref, R, 0.5, "alpha", alpha=1.0).probs.numpy(),
                               al.regularized_optimum(ref, R, 0.5, "kl").probs.numpy(), rtol=1e-12)


def _simulate_bon(p, r, n, draws=100_000, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.choice(p.size, size=(draws, n), p=p)
    rank = np.unique(r, return_inverse=True)[1]
    key = rank[x] + 0.5 * rng.random((draws, n))  # ties broken uniformly at random
    pick = x[np.arange(draws), key.argmax(1)]
    return np.bincount(pick, minlength=p.size) / draws


@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("reward", [pytest.param(R, id="distinct"), pytest.param(R_TIES, id="ties")])
def test_best_of_n_exact_law_against_monte_carlo(n, reward):
    exact = dl.best_of_n(dl.Categorical(probs=P), reward, n).probs.numpy()
    freq = _simulate_bon(P, reward, n)
    se = np.sqrt(exact * (1 - exact) / 100_000)
    assert np.all(np.abs(freq - exact) <= 5 * se + 1e-12)
    assert exact.sum() == pytest.approx(1.0, abs=1e-12)


def test_best_of_n_kl_never_above_the_formula():
    rng = np.random.default_rng(3)
    for trial in range(40):
        k = int(rng.integers(2, 60))
        p = rng.dirichlet(np.ones(k) * rng.uniform(0.2, 3))
        r = np.round(rng.normal(size=k), int(rng.integers(0, 3)))
        for n in (1, 2, 5, 17, 64):
            kl = al.policy_stats(dl.best_of_n(p, r, n), p, r, k=())["kl"]
            assert kl <= al.bon_kl_formula(n) + 1e-12
    # all rewards tied: best-of-n is the reference itself, KL 0 (< formula for n > 1)
    assert al.policy_stats(dl.best_of_n(P, np.zeros(K), 8), P, np.zeros(K), k=())["kl"] == pytest.approx(0, abs=1e-14)


def test_best_of_n_kl_reaches_the_formula_without_atoms():
    # n = 1: both 0. Without ties and vanishing atoms (uniform over K outcomes, K -> ∞) the exact
    # KL tends to log n − (n−1)/n; the gap shrinks as the atoms do.
    assert al.policy_stats(dl.best_of_n(P, R, 1), P, R, k=())["kl"] == pytest.approx(0.0, abs=1e-14)
    assert al.bon_kl_formula(1) == 0.0
    gaps = []
    for k in (10, 1000, 100_000):
        p, r = np.full(k, 1.0 / k), np.arange(k, dtype=float)
        kl = al.policy_stats(dl.best_of_n(p, r, 4), p, r, k=())["kl"]
        gaps.append(al.bon_kl_formula(4) - kl)
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[2] < 1e-3


def test_best_of_n_win_rate_and_pass_at_k():
    p = np.array([0.5, 0.3, 0.2])
    r = np.array([0.0, 1.0, 2.0])
    st = al.policy_stats(dl.best_of_n(p, r, 2), p, r, k=(1, 3))
    bon = np.array([0.25, 0.8**2 - 0.25, 1 - 0.64])
    # win rate against π_ref: P(r(Y) > r(Y')) + ½ P(tie), summed by hand
    win = sum(bon[i] * p[j] * (1.0 if r[i] > r[j] else 0.5 if i == j else 0.0) for i in range(3) for j in range(3))
    assert st["win_rate"] == pytest.approx(win, rel=1e-13)
    assert st["pass_at"][3] == pytest.approx(1 - (1 - bon[2]) ** 3, rel=1e-13)
    assert al.policy_stats(p, p, r)["win_rate"] == pytest.approx(0.5, rel=1e-13)


def test_tilt_dominates_best_of_n_on_the_frontier():
    f = al.frontier(dl.Categorical(probs=P), R)
    assert np.all(f.tilt_reward_at_bon_kl >= f.bon_reward - 1e-10)
    assert np.all((f.tilt_reward_at_bon_kl - f.bon_reward)[1:-1] > 1e-6)  # strictly, for 1 < n
    assert np.all(f.bon_kl <= f.bon_formula + 1e-12)
    assert np.all(np.diff(f.tilt_kl) >= -1e-12) and np.all(np.diff(f.tilt_reward) >= -1e-12)  # β decreasing
    assert f.tilt_kl[-1] > f.bon_kl[-1]  # the tilt curve spans every best-of-n budget


def test_kl_estimators_bias_variance_and_gradients():
    ref = dl.Categorical(probs=P)
    pi = dl.tilt(ref, R, 1.0)
    z = al.kl_estimators(pi, ref, n=100_000, seed=0)
    a = pi.probs.numpy()
    kl = sps.rel_entr(a, P).sum()
    assert z.kl == pytest.approx(kl, rel=1e-12)
    assert z.bias["k1"] == pytest.approx(0.0, abs=1e-12)
    assert z.bias["k3"] == pytest.approx(0.0, abs=1e-12)
    L = np.log(a / P)
    assert z.bias["k2"] == pytest.approx(0.5 * a @ L**2 - kl, rel=1e-12) and z.bias["k2"] > 1e-3
    assert z.var["k3"] < z.var["k1"]  # the point of k3: unbiased with less variance here
    for key in ("k1", "k2", "k3"):  # simulation agrees with the exact means
        assert abs(z.mc_mean[key] - z.mean[key]) < 5 * z.mc_se[key]
        assert z.mc_var[key] == pytest.approx(z.var[key], rel=0.05)
    # expected gradients vs autograd of divlab's divergences at π = softmax(θ)
    theta = torch.tensor(np.log(a), dtype=torch.float64, requires_grad=True)
    q = dl.Categorical(logits=theta)
    (g_rev,) = torch.autograd.grad(dl.divergence(ref, q, "reverse_kl"), theta)  # KL(π‖π_ref)
    theta2 = theta.detach().clone().requires_grad_(True)
    (g_fwd,) = torch.autograd.grad(dl.divergence(ref, dl.Categorical(logits=theta2), "kl"), theta2)  # KL(π_ref‖π)
    np.testing.assert_allclose(z.grad["k1"], 0.0)
    np.testing.assert_allclose(z.grad["k2"], g_rev.numpy(), atol=1e-14)
    np.testing.assert_allclose(z.grad["k3"], g_fwd.numpy(), atol=1e-14)
    for key in ("k1", "k2", "k3"):
        err = np.abs(z.mc_grad[key] - z.grad[key])
        assert np.all(err <= 5 * z.mc_grad_se[key] + 1e-12), key


@pytest.mark.parametrize("call,msg", [
    pytest.param(lambda: dl.tilt(P, R, 0.0), "beta must be a finite number > 0", id="beta"),
    pytest.param(lambda: dl.tilt(P, R[:3], 1.0), "need one reward per outcome, shape (30,)", id="shape"),
    pytest.param(lambda: dl.best_of_n(P, R, 2.5), "n must be a positive integer", id="n"),
    pytest.param(lambda: al.regularized_optimum(P, R, 1.0, "tv"), "divergence must be one of", id="reg"),
    pytest.param(lambda: al.kl_estimators([0.5, 0.5, 0.0], [0.4, 0.3, 0.3]), "outcome 2 has π = 0", id="support"),
])
def test_errors(call, msg):
    with pytest.raises(ValueError) as ei:
        call()
    assert msg in str(ei.value)
