"""Categorical distributions and the exact divergences between them (issue 15)."""

import math

import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st
import torch

import divlab as dl
from divlab.divergences import discrete_reason

RNG = np.random.default_rng(0)
P = RNG.dirichlet(np.ones(12) * 0.7)
Q = RNG.dirichlet(np.ones(12) * 1.3)


def _ref(key, p, q, **kw):
    """Direct numpy/scipy sums (no divlab code)."""
    m = 0.5 * (p + q)
    if key == "kl":
        return sps.rel_entr(p, q).sum()
    if key == "reverse_kl":
        return sps.rel_entr(q, p).sum()
    if key == "jeffreys":
        return sps.rel_entr(p, q).sum() + sps.rel_entr(q, p).sum()
    if key == "js":
        return 0.5 * sps.rel_entr(p, m).sum() + 0.5 * sps.rel_entr(q, m).sum()
    if key == "hellinger":
        return 1 - np.sqrt(p * q).sum()
    if key == "tv":
        return 0.5 * np.abs(p - q).sum()
    if key == "pearson":
        return ((p - q) ** 2 / q).sum()
    if key == "neyman":
        return ((q - p) ** 2 / p).sum()
    if key == "alpha":
        a = kw["alpha"]
        return (1 - (p**a * q ** (1 - a)).sum()) / (a * (1 - a))
    if key == "skew_kl":
        lam = kw["lam"]
        return sps.rel_entr(p, lam * p + (1 - lam) * q).sum()
    if key == "tsallis":
        a = kw["alpha"]
        return ((p**a * q ** (1 - a)).sum() - 1) / (a - 1)
    if key == "renyi":
        a = kw["alpha"]
        return np.log((p**a * q ** (1 - a)).sum()) / (a - 1)
    if key == "bhattacharyya":
        return -np.log(np.sqrt(p * q).sum())
    if key == "cauchy_schwarz":
        return -np.log((p * q).sum()) + 0.5 * np.log((p * p).sum()) + 0.5 * np.log((q * q).sum())
    raise KeyError(key)


CASES = [
    pytest.param("kl", {}, id="kl"), pytest.param("reverse_kl", {}, id="reverse_kl"),
    pytest.param("jeffreys", {}, id="jeffreys"), pytest.param("js", {}, id="js"),
    pytest.param("hellinger", {}, id="hellinger"), pytest.param("tv", {}, id="tv"),
    pytest.param("pearson", {}, id="pearson"), pytest.param("neyman", {}, id="neyman"),
    pytest.param("alpha", {"alpha": 0.3}, id="alpha-0.3"), pytest.param("alpha", {"alpha": 2.0}, id="alpha-2"),
    pytest.param("alpha", {"alpha": -1.0}, id="alpha-neg1"),
    pytest.param("skew_kl", {"lam": 0.25}, id="skew_kl"), pytest.param("tsallis", {"alpha": 1.7}, id="tsallis"),
    pytest.param("renyi", {"alpha": 0.5}, id="renyi-0.5"), pytest.param("renyi", {"alpha": 3.0}, id="renyi-3"),
    pytest.param("bhattacharyya", {}, id="bhattacharyya"), pytest.param("cauchy_schwarz", {}, id="cauchy_schwarz"),
]


def test_every_density_divergence_is_registered_for_categoricals():
    from divlab.divergences.discrete import DENSITY_KEYS

    tested = {c.values[0] for c in CASES} | {"f_divergence"}
    assert set(DENSITY_KEYS) == tested
    table = dl.closed_form_table()
    for k in DENSITY_KEYS + ("wasserstein", "mmd", "energy"):
        assert ("Categorical", "Categorical") in table[k]


@pytest.mark.parametrize("key,kw", CASES)
def test_divergence_is_the_exact_sum(key, kw):
    p, q = dl.Categorical(probs=P), dl.Categorical(probs=Q)
    e = dl.estimate(p, q, key, **kw)
    assert e.estimator == "closed_form"
    assert float(e.value) == pytest.approx(_ref(key, P, Q, **kw), rel=1e-10, abs=1e-13)
    # identity D(p‖p) = 0
    assert float(dl.divergence(p, p, key, **kw)) == pytest.approx(0.0, abs=1e-12)


def test_generic_f_divergence_matches_kl():
    p, q = dl.Categorical(probs=P), dl.Categorical(probs=Q)
    v = dl.divergence(p, q, "f_divergence", f=lambda u: u * torch.log(u))
    assert float(v) == pytest.approx(sps.rel_entr(P, Q).sum(), rel=1e-10)


def test_logits_give_softmax_probabilities():
    z = np.array([1.0, -2.0, 0.5, 3.0])
    c = dl.Categorical(logits=z)
    ref = np.exp(z - sps.logsumexp(z))
    np.testing.assert_allclose(c.probs.numpy(), ref, rtol=1e-14)
    np.testing.assert_allclose(c.log_prob(torch.tensor([3, 1])).numpy(), np.log(ref[[3, 1]]), rtol=1e-13)


ZP = np.array([0.5, 0.3, 0.2, 0.0])
ZQ = np.array([0.4, 0.0, 0.3, 0.3])


@pytest.mark.parametrize("key,kw,inf,needle", [
    pytest.param("kl", {}, True, "gives outcome 'b' (index 1) probability 0 where the target p gives it 0.3", id="kl"),
    pytest.param("reverse_kl", {}, True, "outcome 'd' (index 3) probability 0.3 where the target p gives it 0", id="rkl"),
    pytest.param("pearson", {}, True, "'b' (index 1) probability 0 where", id="pearson"),
    pytest.param("neyman", {}, True, "'d' (index 3) probability 0.3 where", id="neyman"),
    pytest.param("renyi", {"alpha": 2.0}, True, "'b' (index 1)", id="renyi-2"),
    pytest.param("alpha", {"alpha": 2.0}, True, "'b' (index 1)", id="alpha-2"),
    pytest.param("js", {}, False, "", id="js-bounded"),
    pytest.param("tv", {}, False, "", id="tv-bounded"),
    pytest.param("hellinger", {}, False, "", id="hellinger-bounded"),
])
def test_zeros_give_infinity_with_the_outcome_named(key, kw, inf, needle):
    labels = ["a", "b", "c", "d"]
    p, q = dl.Categorical(probs=ZP, labels=labels), dl.Categorical(probs=ZQ, labels=labels)
    v = dl.divergence(p, q, key, **kw)
    reason = discrete_reason(key, p, q, kw, v)
    if inf:
        assert math.isinf(float(v)) and float(v) > 0
        assert needle in reason
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ref = _ref(key, ZP, ZQ, **kw)
        assert float(v) == pytest.approx(ref, rel=1e-12)
        assert reason is None


def test_disjoint_supports_named():
    p, q = dl.Categorical(probs=[0.5, 0.5, 0, 0]), dl.Categorical(probs=[0, 0, 0.5, 0.5])
    v = dl.divergence(p, q, "bhattacharyya")
    assert math.isinf(float(v))
    assert "share no outcome" in discrete_reason("bhattacharyya", p, q, {}, v)
    assert float(dl.divergence(p, q, "js")) == pytest.approx(math.log(2), rel=1e-14)


def test_wasserstein_energy_mmd_exact():
    x = np.arange(12.0)
    p, q = dl.Categorical(probs=P), dl.Categorical(probs=Q)
    w1 = st.wasserstein_distance(x, x, P, Q)
    assert float(dl.divergence(p, q, "wasserstein", order=1)) == pytest.approx(w1, rel=1e-12)
    # W_2 via the quantile coupling, independently: a fine u grid (exact on each constant piece)
    u = (np.arange(200000) + 0.5) / 200000
    qa = x[np.searchsorted(np.cumsum(P), u)]
    qb = x[np.minimum(np.searchsorted(np.cumsum(Q), u), 11)]
    assert float(dl.divergence(p, q, "wasserstein", order=2)) == pytest.approx(np.sqrt(np.mean((qa - qb) ** 2)), rel=1e-4)
    e = st.energy_distance(x, x, P, Q) ** 2  # scipy returns sqrt(2 ∫(F−G)²)
    assert float(dl.divergence(p, q, "energy")) == pytest.approx(e, rel=1e-12)
    K = np.exp(-(x[:, None] - x[None, :]) ** 2 / (2 * 1.5**2))
    d = P - Q
    assert float(dl.divergence(p, q, "mmd", bandwidth=1.5)) == pytest.approx(d @ K @ d, rel=1e-12)
    assert float(dl.divergence(p, p, "wasserstein")) == pytest.approx(0.0, abs=1e-12)


def test_numeric_labels_are_positions():
    p = dl.Categorical(probs=[1.0, 0.0], labels=[0.0, 10.0])
    q = dl.Categorical(probs=[0.0, 1.0], labels=[0.0, 10.0])
    assert float(dl.divergence(p, q, "wasserstein", order=1)) == pytest.approx(10.0)


@pytest.mark.parametrize("kwargs,msg", [
    pytest.param({"probs": [0.2, 0.3]}, "Categorical(probs=[0.2, 0.3]): probs must sum to 1 (they sum to 0.5)", id="sum"),
    pytest.param({"probs": [1.2, -0.2]}, "probs must be >= 0 (outcome 1 has -0.2)", id="negative"),
    pytest.param({"probs": [0.5, float("nan")]}, "probs must be finite", id="nan"),
    pytest.param({"logits": [0.0, float("inf")]}, "Categorical(logits=[0.0, inf]): logits must be finite", id="logits"),
    pytest.param({"probs": [0.5, 0.5], "logits": [0, 0]}, "give exactly one of probs or logits", id="both"),
    pytest.param({"probs": [0.5, 0.5], "labels": ["a"]}, "need one label per outcome (2)", id="labels-n"),
    pytest.param({"probs": [0.5, 0.5], "labels": ["a", "a"]}, "labels must be distinct ('a'", id="labels-dup"),
    pytest.param({"probs": np.ones(100_001) / 100_001}, "at most 100000 outcomes", id="too-many"),
])
def test_validation_messages(kwargs, msg):
    with pytest.raises(ValueError) as ei:
        dl.Categorical(**kwargs)
    assert msg in str(ei.value)


def test_log_prob_rejects_bad_indices():
    c = dl.Categorical(probs=[0.5, 0.5])
    with pytest.raises(ValueError, match="out of range 0..1"):
        c.log_prob(torch.tensor(2))
    with pytest.raises(ValueError, match="integer outcome indices"):
        c.log_prob(torch.tensor(0.5, dtype=torch.float64))


def test_spec_round_trip_and_sampling():
    c = dl.Categorical(probs=[0.6, 0.3, 0.1], labels=["x", "y", "z"])
    c2 = dl.from_spec(c.to_spec())
    np.testing.assert_array_equal(c2.probs.numpy(), c.probs.numpy())
    assert c2.labels == ["x", "y", "z"]
    z = dl.Categorical(logits=[0.0, -800.0])  # the second probability underflows; logits keep it
    assert float(dl.from_spec(z.to_spec()).log_probs[1]) == pytest.approx(-800.0)
    s1, s2 = c.sample(100_000, seed=3), c.sample(100_000, seed=3)
    assert torch.equal(s1, s2) and s1.dtype == torch.int64
    freq = np.bincount(s1.numpy(), minlength=3) / 1e5
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=4 * np.sqrt(0.25 / 1e5))
    assert float(c.entropy()) == pytest.approx(st.entropy([0.6, 0.3, 0.1]), rel=1e-13)


def test_mismatched_outcomes_raise():
    with pytest.raises(ValueError, match="p has 2 outcomes and q has 3"):
        dl.divergence(dl.Categorical(probs=[0.5, 0.5]), dl.Categorical(probs=[0.2, 0.3, 0.5]), "kl")


def test_large_K_is_exact_and_fast():
    rng = np.random.default_rng(1)
    a, b = rng.dirichlet(np.ones(100_000)), rng.dirichlet(np.ones(100_000))
    v = dl.divergence(dl.Categorical(probs=a), dl.Categorical(probs=b), "kl")
    assert float(v) == pytest.approx(sps.rel_entr(a, b).sum(), rel=1e-10)


def test_sinkhorn_and_sliced_between_categoricals():
    p, q = dl.Categorical(probs=[0.5, 0.3, 0.2, 0.0]), dl.Categorical(probs=[0.1, 0.0, 0.4, 0.5])
    # a measure on a line is its own projection: sliced W_p = W_p
    for order in (1, 2):
        assert float(dl.divergence(p, q, "sliced_wasserstein", order=order)) == pytest.approx(
            float(dl.divergence(p, q, "wasserstein", order=order)), rel=1e-14)
    # the Sinkhorn divergence of the measures equals that of the same weighted point clouds
    x = torch.arange(4, dtype=torch.float64)
    clouds = dl.divergence(dl.Empirical(x[:3], p.probs[:3]), dl.Empirical(x[[0, 2, 3]], q.probs[[0, 2, 3]]),
                           "sinkhorn", estimator="samples", n=3)
    exact = dl.estimate(p, q, "sinkhorn", epsilon=0.1)
    assert exact.estimator == "closed_form"
    assert float(exact.value) == pytest.approx(float(clouds), rel=1e-6)
    assert float(dl.divergence(p, p, "sinkhorn")) == pytest.approx(0.0, abs=1e-9)


def test_cli_compare_two_categoricals(tmp_path, capsys):
    from divlab.cli import main

    a, b = tmp_path / "p.json", tmp_path / "q.json"
    a.write_text('{"type": "categorical", "probs": [0.5, 0.3, 0.2], "labels": ["a", "b", "c"]}')
    b.write_text('{"type": "categorical", "probs": [0.2, 0.0, 0.8], "labels": ["a", "b", "c"]}')
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.startswith("reverse_kl"))
    assert f"{sps.rel_entr([0.2, 0.0, 0.8], [0.5, 0.3, 0.2]).sum():.6g}" in row and "closed_form" in row
    assert "kl: ∞ because KL(p‖q), forward is infinite: the model q gives outcome 'b' (index 1) probability 0" in out
    assert "ksd: does not apply between Categoricals" in out
