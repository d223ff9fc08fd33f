"""The conversions in docs/conventions.md, checked against the real libraries.

Each test computes a divlab number and the same quantity with scipy, POT, TensorFlow
Probability (numpy substrate, no TensorFlow needed) or GeomLoss, and asserts the conversion
stated in the doc. scipy and POT are test dependencies; the TFP and GeomLoss tests are skipped
when those packages are not installed.

Density divergences are compared on one quadrature grid: divlab's quadrature value on a
trapezoid grid with weights w_i is exactly the discrete divergence between the vectors
P_i ∝ w_i p(x_i) and Q_i ∝ w_i q(x_i) (f-divergences and the Rényi integral are
1-homogeneous), so the libraries' discrete functions must agree to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import divlab as dl
from divlab.estimators.quadrature import make_grid

DT = torch.float64
RTOL = 1e-9


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def grid_pair():
    """A bimodal target p, a Normal model q, the grid, and the discrete vectors P, Q."""
    p = dl.Mixture([dl.Normal(-1.0, 0.7), dl.Normal(1.5, 1.0)], weights=[0.3, 0.7])
    q = dl.Normal(0.3, 1.4)
    g = make_grid(p, q)
    w = g.weights.to(DT)
    P = (w * p.log_prob(g.points.to(DT)).exp()).numpy()
    Q = (w * q.log_prob(g.points.to(DT)).exp()).numpy()
    P, Q = P / P.sum(), Q / Q.sum()

    def D(key, **kw):
        return float(dl.estimate(p, q, key, estimator="quadrature", grid=g, **kw).value)

    return D, P, Q


@pytest.fixture(scope="module")
def clouds():
    """Two 2D point clouds (uniform weights) as tensors, Empirical and numpy."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 2, generator=gen, dtype=DT)
    y = torch.randn(25, 2, generator=gen, dtype=DT) * 0.8 + torch.tensor([1.0, -0.5], dtype=DT)
    a, b = np.full(30, 1 / 30), np.full(25, 1 / 25)
    return x, y, dl.Empirical(x), dl.Empirical(y), x.numpy(), y.numpy(), a, b


@pytest.fixture(scope="module")
def clouds_1d():
    """Two 1D clouds, the second one with non-uniform weights."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, generator=gen, dtype=DT)
    y = 0.5 + 1.3 * torch.randn(30, generator=gen, dtype=DT)
    wy = torch.rand(30, generator=gen, dtype=DT)
    wy = wy / wy.sum()
    return dl.Empirical(x), dl.Empirical(y, weights=wy), x.numpy(), y.numpy(), wy.numpy()


# --------------------------------------------------------------------------- scipy: KL, JS
def test_kl_is_scipy_rel_entr_kl_div_and_entropy(grid_pair):
    from scipy.special import kl_div, rel_entr
    from scipy.stats import entropy

    D, P, Q = grid_pair
    kl = D("kl")
    assert kl == pytest.approx(rel_entr(P, Q).sum(), rel=RTOL)
    assert kl == pytest.approx(kl_div(P, Q).sum(), rel=RTOL)  # the extra −P + Q sums to 0
    assert kl == pytest.approx(entropy(P, Q), rel=RTOL)  # base e by default
    assert kl / math.log(2) == pytest.approx(entropy(P, Q, base=2), rel=RTOL)  # bits
    assert D("reverse_kl") == pytest.approx(entropy(Q, P), rel=RTOL)


def test_js_is_scipy_jensenshannon_squared(grid_pair):
    from scipy.spatial.distance import jensenshannon

    D, P, Q = grid_pair
    js = D("js")
    assert js == pytest.approx(jensenshannon(P, Q) ** 2, rel=RTOL)  # scipy returns √JS, base e
    assert js == pytest.approx(math.log(2) * jensenshannon(P, Q, base=2) ** 2, rel=RTOL)


def test_categorical_matches_scipy_directly():
    """The same identities with divlab's discrete outcomes (no grid involved)."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import entropy, wasserstein_distance

    P, Q = np.array([0.1, 0.4, 0.2, 0.3]), np.array([0.25, 0.25, 0.3, 0.2])
    cp, cq = dl.Categorical(probs=torch.tensor(P)), dl.Categorical(probs=torch.tensor(Q))
    assert float(dl.divergence(cp, cq, "kl")) == pytest.approx(entropy(P, Q), rel=RTOL)
    assert float(dl.divergence(cp, cq, "js")) == pytest.approx(jensenshannon(P, Q) ** 2, rel=RTOL)
    pos = np.arange(4.0)  # default labels 0..K−1 are the positions of the ground cost
    assert float(dl.divergence(cp, cq, "wasserstein", order=1)) == pytest.approx(
        wasserstein_distance(pos, pos, P, Q), rel=RTOL)


def test_scipy_chisquare_and_power_divergence():
    """scipy's Cressie–Read statistics on probability vectors (total count 1):
    power_divergence(P, Q, λ) = 2·D_α(p‖q) with α = λ + 1."""
    from scipy.stats import chisquare, power_divergence

    P, Q = np.array([0.1, 0.4, 0.2, 0.3]), np.array([0.25, 0.25, 0.3, 0.2])
    cp, cq = dl.Categorical(probs=torch.tensor(P)), dl.Categorical(probs=torch.tensor(Q))

    def d(key, **kw):
        return float(dl.divergence(cp, cq, key, **kw))

    assert chisquare(P, Q).statistic == pytest.approx(d("pearson"), rel=RTOL)
    assert power_divergence(P, Q, lambda_="log-likelihood").statistic == pytest.approx(2 * d("kl"), rel=RTOL)
    assert power_divergence(P, Q, lambda_="neyman").statistic == pytest.approx(d("neyman"), rel=RTOL)
    assert power_divergence(P, Q, lambda_="freeman-tukey").statistic == pytest.approx(8 * d("hellinger"), rel=RTOL)
    assert power_divergence(P, Q, lambda_=0.7).statistic == pytest.approx(2 * d("alpha", alpha=1.7), rel=RTOL)


def test_torch_kl_div_argument_order(grid_pair):
    import torch.nn.functional as F

    D, P, Q = grid_pair
    Pt, Qt = torch.as_tensor(P), torch.as_tensor(Q)
    # torch's kl_div takes the *model's* log-probabilities first, the target second
    assert D("kl") == pytest.approx(float(F.kl_div(Qt.log(), Pt, reduction="sum")), rel=RTOL)


# --------------------------------------------------------------------------- definitions (no library)
def test_renyi_bhattacharyya_hellinger_definitions(grid_pair):
    D, P, Q = grid_pair
    for a in (0.3, 2.0):
        assert D("renyi", alpha=a) == pytest.approx(math.log((P**a * Q ** (1 - a)).sum()) / (a - 1), rel=1e-8)
    bc = np.sqrt(P * Q).sum()
    assert D("bhattacharyya") == pytest.approx(-math.log(bc), rel=1e-8)
    assert D("hellinger") == pytest.approx(1 - bc, rel=1e-8)
    assert D("hellinger") == pytest.approx(0.5 * ((np.sqrt(P) - np.sqrt(Q)) ** 2).sum(), rel=1e-8)
    assert D("tv") == pytest.approx(0.5 * np.abs(P - Q).sum(), rel=1e-8)


def test_amari_original_parameterization(grid_pair):
    """Amari's α_A ∈ (−1, 1): D^(α_A) = 4/(1 − α_A²)·(1 − Σ P^((1−α_A)/2) Q^((1+α_A)/2)) is
    divlab's alpha with α = (1 − α_A)/2."""
    D, P, Q = grid_pair
    for aA in (-0.6, 0.0, 0.4):
        amari = 4 / (1 - aA**2) * (1 - (P ** ((1 - aA) / 2) * Q ** ((1 + aA) / 2)).sum())
        assert D("alpha", alpha=(1 - aA) / 2) == pytest.approx(amari, rel=1e-8)


def test_tsallis_and_renyi_from_alpha(grid_pair):
    D, P, Q = grid_pair
    for a in (0.3, 2.0):
        amari = D("alpha", alpha=a)
        assert D("tsallis", alpha=a) == pytest.approx(a * amari, rel=1e-8)
        assert D("renyi", alpha=a) == pytest.approx(math.log(1 - a * (1 - a) * amari) / (a - 1), rel=1e-8)


def test_renyi_argument_swap():
    """Rényi VI (Li & Turner) writes D_α(q‖p); in divlab's order that is α/(1−α)·D_{1−α}(p‖q)."""
    p, q = dl.Normal(0.0, 1.0), dl.Normal(0.8, 1.3)
    for a in (0.25, 0.6):
        swapped = float(dl.divergence(q, p, "renyi", alpha=a))
        assert swapped == pytest.approx(a / (1 - a) * float(dl.divergence(p, q, "renyi", alpha=1 - a)), rel=1e-8)


def test_fisher_has_no_half_and_expects_under_target():
    """F(p‖q) = E_p|∇log p − ∇log q|²; for Normals (s₁/s₂² − 1/s₁)² + (m₁ − m₂)²/s₂⁴."""
    m1, s1, m2, s2 = 0.3, 0.8, -0.5, 1.5
    ref = (s1 / s2**2 - 1 / s1) ** 2 + (m1 - m2) ** 2 / s2**4
    est = dl.estimate(dl.Normal(m1, s1), dl.Normal(m2, s2), "fisher", estimator="grid")
    assert float(est.value) == pytest.approx(ref, rel=1e-6)


# --------------------------------------------------------------------------- TensorFlow Probability
@pytest.fixture(scope="module")
def tfp_vi():
    tfp = pytest.importorskip("tensorflow_probability.substrates.numpy")
    return tfp.vi


def _tfp_D(P, Q, f, **kw):
    """TFP's D_f[p, q] = E_q[f(p/q)], f given in log space (logu = log p − log q)."""
    return float((Q * f(np.log(P) - np.log(Q), **kw)).sum())


def test_tfp_same_direction_kl_tv_pearson(grid_pair, tfp_vi):
    D, P, Q = grid_pair
    assert _tfp_D(P, Q, tfp_vi.kl_forward) == pytest.approx(D("kl"), rel=RTOL)
    assert _tfp_D(P, Q, tfp_vi.kl_reverse) == pytest.approx(D("reverse_kl"), rel=RTOL)
    assert _tfp_D(P, Q, tfp_vi.total_variation) == pytest.approx(D("tv"), rel=RTOL)
    assert _tfp_D(P, Q, tfp_vi.pearson) == pytest.approx(D("pearson"), rel=RTOL)
    assert _tfp_D(P, Q, tfp_vi.chi_square) == pytest.approx(D("pearson"), rel=1e-8)
    neyman = lambda lu: tfp_vi.dual_csiszar_function(lu, tfp_vi.pearson)  # noqa: E731
    assert _tfp_D(P, Q, neyman) == pytest.approx(D("neyman"), rel=RTOL)


def test_tfp_js_hellinger_jeffreys_factors(grid_pair, tfp_vi):
    D, P, Q = grid_pair
    js = D("js")
    assert _tfp_D(P, Q, tfp_vi.jensen_shannon, self_normalized=True) == pytest.approx(2 * js, rel=RTOL)
    # TFP's default (self_normalized=False) drops the (u + 1) log 2 term: 2·JS − 2 ln 2 < 0
    assert _tfp_D(P, Q, tfp_vi.jensen_shannon) == pytest.approx(2 * js - 2 * math.log(2), rel=RTOL)
    assert _tfp_D(P, Q, tfp_vi.squared_hellinger) == pytest.approx(2 * D("hellinger"), rel=RTOL)
    assert _tfp_D(P, Q, tfp_vi.jeffreys) == pytest.approx(D("jeffreys") / 2, rel=RTOL)


def test_tfp_amari_alpha_and_t_power(grid_pair, tfp_vi):
    D, P, Q = grid_pair
    for a in (-0.5, 0.3, 0.5, 2.0):
        for sn in (False, True):
            assert _tfp_D(P, Q, tfp_vi.amari_alpha, alpha=a, self_normalized=sn) == pytest.approx(
                D("alpha", alpha=a), rel=1e-8)
    for t in (0.3, 2.0):
        for sn in (False, True):
            assert _tfp_D(P, Q, tfp_vi.t_power, t=t, self_normalized=sn) == pytest.approx(
                abs(1 - t) * D("tsallis", alpha=t), rel=1e-8)


# --------------------------------------------------------------------------- Wasserstein, energy
def test_wasserstein_1d_scipy_and_pot(clouds_1d):
    import ot
    from scipy.stats import wasserstein_distance

    X, Y, x, y, wy = clouds_1d
    w1 = float(dl.divergence(X, Y, "wasserstein", estimator="samples", order=1))
    assert w1 == pytest.approx(wasserstein_distance(x, y, None, wy), rel=RTOL)
    w2 = float(dl.divergence(X, Y, "wasserstein", estimator="samples", order=2))
    assert w2 == pytest.approx(math.sqrt(ot.wasserstein_1d(x, y, None, wy, p=2)), rel=RTOL)  # POT: W₂²


def test_wasserstein_2d_pot_emd2_and_scipy_nd(clouds):
    import ot
    import scipy.stats

    _, _, X, Y, xs, ys, a, b = clouds
    w2 = float(dl.divergence(X, Y, "wasserstein", estimator="samples", order=2))
    assert w2 == pytest.approx(math.sqrt(ot.emd2(a, b, ot.dist(xs, ys))), rel=RTOL)  # emd2 = W₂²
    w1 = float(dl.divergence(X, Y, "wasserstein", estimator="samples", order=1))
    assert w1 == pytest.approx(ot.emd2(a, b, ot.dist(xs, ys, metric="euclidean")), rel=RTOL)
    if hasattr(scipy.stats, "wasserstein_distance_nd"):
        assert w1 == pytest.approx(scipy.stats.wasserstein_distance_nd(xs, ys), rel=1e-8)


def test_energy_is_scipy_energy_distance_squared(clouds_1d, clouds):
    from scipy.stats import energy_distance

    X, Y, x, y, wy = clouds_1d
    e_v = float(dl.divergence(X, Y, "energy", estimator="samples", statistic="biased"))
    assert e_v == pytest.approx(energy_distance(x, y, None, wy) ** 2, rel=RTOL)
    # unbiased (default) with uniform weights: E_U = E_V − s_x/(n−1) − s_y/(m−1), s = mean |x_i − x_j|
    _, _, Xc, Yc, xs, ys, _, _ = clouds
    from scipy.spatial.distance import cdist

    sx, sy = cdist(xs, xs).mean(), cdist(ys, ys).mean()
    ev = float(dl.divergence(Xc, Yc, "energy", estimator="samples", statistic="biased"))
    eu = float(dl.divergence(Xc, Yc, "energy", estimator="samples"))
    assert eu == pytest.approx(ev - sx / (len(xs) - 1) - sy / (len(ys) - 1), rel=RTOL)


def test_mmd_biased_and_unbiased_gretton(clouds):
    from scipy.spatial.distance import cdist

    _, _, X, Y, xs, ys, _, _ = clouds
    h = 0.7
    k = lambda A, B: np.exp(-cdist(A, B, "sqeuclidean") / (2 * h * h))  # noqa: E731  (sklearn γ = 1/(2h²))
    Kxx, Kyy, Kxy = k(xs, xs), k(ys, ys), k(xs, ys)
    n, m = len(xs), len(ys)
    biased = Kxx.mean() + Kyy.mean() - 2 * Kxy.mean()
    unbiased = ((Kxx.sum() - np.trace(Kxx)) / (n * (n - 1)) + (Kyy.sum() - np.trace(Kyy)) / (m * (m - 1))
                - 2 * Kxy.mean())
    assert float(dl.divergence(X, Y, "mmd", estimator="samples", bandwidth=h, statistic="biased")) == pytest.approx(
        biased, rel=RTOL)
    assert float(dl.divergence(X, Y, "mmd", estimator="samples", bandwidth=h)) == pytest.approx(unbiased, rel=RTOL)


# --------------------------------------------------------------------------- Sinkhorn vs POT
EPS = 0.5
# POT's log-domain Sinkhorn converges slowly on the symmetric problems OT_ε(a, a) (it does not
# average its updates): 1000 iterations leave ~1e-6 relative error in S_ε here (and warn)
POT_ITER = 1000


def test_sinkhorn_raw_is_full_objective_and_sinkhorn2_is_linear_part(clouds):
    import ot

    _, _, X, Y, xs, ys, a, b = clouds
    est = dl.estimate(X, Y, "sinkhorn", estimator="samples", epsilon=EPS, debias=False)
    M = ot.dist(xs, ys)  # squared Euclidean, no ½: divlab's cost
    res = ot.solve(M, a, b, reg=EPS, max_iter=POT_ITER, tol=1e-12)  # reg_type='KL': value = ⟨P, M⟩ + ε KL(P‖a⊗b)
    assert float(est.value) == pytest.approx(float(res.value), rel=1e-7)
    assert est.info["transport_cost"] == pytest.approx(float(res.value_linear), rel=1e-7)
    lin = ot.sinkhorn2(a, b, M, EPS, method="sinkhorn_log", numItermax=POT_ITER, stopThr=1e-12)
    assert est.info["transport_cost"] == pytest.approx(float(lin), rel=1e-7)  # sinkhorn2 = ⟨P, M⟩ only
    assert float(est.value) - est.info["transport_cost"] > 0.1  # the entropy term is not small here


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
def test_sinkhorn_divergence_vs_pot(clouds):
    import ot

    _, _, X, Y, xs, ys, a, b = clouds
    s = float(dl.divergence(X, Y, "sinkhorn", estimator="samples", epsilon=EPS))
    # ot.solve_sample(..., debias=True).value = OT_ε(a,b) − ½OT_ε(a,a) − ½OT_ε(b,b), full objectives: S_ε
    sol = ot.solve_sample(xs, ys, a, b, reg=EPS, debias=True, max_iter=POT_ITER, tol=1e-12)
    assert s == pytest.approx(float(sol.value), rel=5e-6)
    # ot.bregman.empirical_sinkhorn_divergence debiases the linear parts ⟨P, M⟩ only (and clips at 0)
    esd = float(ot.bregman.empirical_sinkhorn_divergence(xs, ys, EPS, a, b, method="sinkhorn_log",
                                                        numIterMax=POT_ITER, stopThr=1e-12))
    assert esd == pytest.approx(max(0.0, float(sol.value_linear)), rel=1e-9)
    assert abs(esd - s) > 1e-2


def test_sliced_is_pot_with_the_same_projections(clouds):
    import ot

    _, _, X, Y, xs, ys, a, b = clouds
    for order in (1, 2):
        est = dl.estimate(X, Y, "sliced_wasserstein", estimator="samples", order=order, n_projections=20, seed=3)
        theta = est.info["projections"].numpy()  # (K, 2); POT wants (d, K)
        ref = ot.sliced_wasserstein_distance(xs, ys, a, b, projections=theta.T, p=order)
        assert float(est.value) == pytest.approx(float(ref), rel=RTOL)


# --------------------------------------------------------------------------- GeomLoss
@pytest.fixture(scope="module")
def geomloss():
    return pytest.importorskip("geomloss")


def test_geomloss_sinkhorn_half_cost_and_blur(clouds, geomloss):
    """SamplesLoss('sinkhorn', p=2, blur=σ) = ½ · divlab sinkhorn(epsilon=2σ²)."""
    x, y, X, Y, *_ = clouds
    for debias in (True, False):
        s = float(dl.divergence(X, Y, "sinkhorn", estimator="samples", epsilon=EPS, debias=debias))
        # GeomLoss runs one iteration per ε-step: a slow annealing (scaling → 1) to converge
        gl = geomloss.SamplesLoss("sinkhorn", p=2, blur=math.sqrt(EPS / 2), scaling=0.999, debias=debias,
                                  backend="tensorized")(x, y)
        assert float(gl) == pytest.approx(s / 2, rel=1e-5)


def test_geomloss_kernels_are_half_the_biased_statistic(clouds, geomloss):
    x, y, X, Y, *_ = clouds
    h = 0.7
    mmd_b = float(dl.divergence(X, Y, "mmd", estimator="samples", bandwidth=h, statistic="biased"))
    gl = geomloss.SamplesLoss("gaussian", blur=h, backend="tensorized")(x, y)
    assert float(gl) == pytest.approx(mmd_b / 2, rel=1e-9)
    e_b = float(dl.divergence(X, Y, "energy", estimator="samples", statistic="biased"))
    gl = geomloss.SamplesLoss("energy", backend="tensorized")(x, y)
    # GeomLoss floors distances at 1e-4 (sqrt of clamp(d², 1e-8)), which shifts the diagonal terms
    floor = 0.5e-4 * (1 / x.shape[0] + 1 / y.shape[0])
    assert float(gl) == pytest.approx(e_b / 2 - floor, rel=1e-9)
