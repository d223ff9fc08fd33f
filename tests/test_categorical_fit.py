"""Fitting softmax students to Categorical teachers (issue 15): exact recoveries and the
mode-seeking / mass-covering split of a top-k student, against closed-form optima."""

import math

import numpy as np
import pytest
import scipy.special as sps

import divlab as dl

RNG = np.random.default_rng(0)
P = RNG.dirichlet(np.ones(10))


def zipf(K=120, s=1.1):
    z = 1.0 / np.arange(1, K + 1) ** s
    return z / z.sum()


def test_full_support_recovers_the_target_exactly():
    t = dl.Categorical(probs=P)
    res = dl.fit(t, family="categorical", divergence=["kl", "reverse_kl", "js", "hellinger"], steps=600)
    for r in res:
        assert r.status in ("converged", "max_steps"), r.status
        np.testing.assert_allclose(r.probs, P, atol=1e-9, err_msg=r.divergence)
        assert r.final_loss == pytest.approx(0.0, abs=1e-12)
    # the loss is the exact sum: KL(p‖q) at the start (uniform student) by scipy
    assert res[0].losses[0] == pytest.approx(sps.rel_entr(P, np.full(10, 0.1)).sum(), rel=1e-12)
    assert res.by_divergence("kl")[0].info["batch"] == 4  # one batch


def _topk_optima(p, k):
    """Closed-form optima of the top-k + uniform-tail student: forward KL copies the head and gives
    the tail its mass; reverse KL copies the head's proportions and gives each tail outcome
    a mass proportional to the geometric mean of the tail."""
    head, tail = p[:k], p[k:]
    m = tail.size
    fwd = np.concatenate([head, np.full(m, tail.sum() / m)])
    g = math.exp(np.log(tail).mean())
    rev = np.concatenate([head, np.full(m, g)])
    return fwd, rev / rev.sum()


def test_topk_student_reverse_kl_seeks_the_head_forward_kl_spreads():
    p = zipf()
    t = dl.Categorical(probs=p)
    k = 8
    fwd_ref, rev_ref = _topk_optima(p, k)
    res = dl.fit(t, family="categorical_topk", topk=k, divergence=["kl", "reverse_kl"], steps=800)
    fwd, rev = res.by_divergence("kl")[0], res.by_divergence("reverse_kl")[0]
    np.testing.assert_allclose(fwd.probs, fwd_ref, rtol=1e-7)
    np.testing.assert_allclose(rev.probs, rev_ref, rtol=1e-7)
    head_fwd, head_rev = fwd.probs[:k].sum(), rev.probs[:k].sum()
    assert head_rev > head_fwd + 0.05  # reverse KL piles its mass on the top outcomes
    assert fwd.info["tail_mass"] == pytest.approx(p[k:].sum(), rel=1e-7)  # forward KL covers the tail exactly
    assert rev.probs[0] > p[0] > 0  # ... and over-weights the top token
    assert fwd.info["free"] == list(range(k))


def test_support_extends_the_vocabulary_and_reverse_kl_is_infinite():
    t = dl.Categorical(probs=[0.5, 0.3, 0.2], labels=["a", "b", "c"])
    r = dl.fit(t, family="categorical", divergence="kl", support=["c", "a", "b", "d"], steps=400)
    np.testing.assert_allclose(r.probs[:3], [0.2, 0.5, 0.3], atol=1e-6)
    assert r.probs[3] < 1e-4 and r.labels == ["c", "a", "b", "d"]
    bad = dl.fit(t, family="categorical", divergence="reverse_kl", support=4, steps=10)
    assert bad.status.startswith("diverged") and "outcome 3" in bad.status and math.isinf(bad.losses[0])
    with pytest.raises(ValueError, match="outcome 'b' probability 0.3 but it is not in the student's support"):
        dl.fit(t, family="categorical", divergence="kl", support=["a", "c"])


def test_exact_sample_divergences_fit():
    t = dl.Categorical(probs=P)
    r = dl.fit(t, family="categorical", divergence="energy", steps=1500, lr=0.2)
    assert float(dl.divergence(t, r.model(), "energy")) == pytest.approx(r.final_loss, rel=1e-9, abs=1e-15)
    assert r.final_loss < 1e-6


def test_wasserstein_1_and_mmd_students():
    t = dl.Categorical(probs=P)
    res = dl.fit(t, family="categorical", divergence=["wasserstein", "mmd"], params={"wasserstein": {"order": 1},
                 "mmd": {"bandwidth": 1.0}}, steps=1500, lr=0.2)
    w1, mmd = res
    assert w1.final_loss == pytest.approx(float(dl.divergence(t, w1.model(), "wasserstein", order=1)), rel=1e-9)
    assert w1.final_loss < 0.02 and mmd.final_loss < 1e-6
    assert mmd.final_loss == pytest.approx(float(dl.divergence(t, mmd.model(), "mmd")), rel=1e-6, abs=1e-14)
    with pytest.raises(ValueError, match="K = 5000 is more than 4000 outcomes"):
        dl.fit(dl.Categorical(probs=np.full(5000, 1 / 5000)), family="categorical", divergence="mmd", steps=1)


def test_model_and_trajectory_frames():
    t = dl.Categorical(probs=P)
    r = dl.fit(t, family="categorical", divergence="js", steps=50, polish=False, options={"frames": 6})
    assert r.trajectory["probs"].shape == (6, 10)
    assert r.trajectory["step"][0] == 0 and r.trajectory["step"][-1] == r.steps
    q0 = r.model(0)
    np.testing.assert_allclose(q0.probs.numpy(), np.full(10, 0.1), rtol=1e-12)
    assert r.losses[0] == pytest.approx(float(dl.divergence(t, q0, "js")), rel=1e-12)


@pytest.mark.parametrize("kw,msg", [
    pytest.param({"family": "categorical", "topk": 3}, "topk applies to family='categorical_topk'", id="topk"),
    pytest.param({"family": "categorical_topk", "topk": 10}, "needs 1 <= topk < 10", id="topk-range"),
    pytest.param({"family": "categorical", "estimator": "quadrature"}, "estimator must be 'auto' or 'exact'", id="est"),
    pytest.param({"family": "normal", "support": 3}, "support and topk apply to the categorical families", id="normal"),
    pytest.param({"family": "categorical", "divergence": "sinkhorn"}, "no exact sum between Categoricals", id="sinkhorn"),
    pytest.param({"family": "normal"}, "is fitted by family='categorical' or 'categorical_topk'", id="normal-family"),
    pytest.param({"family": "categorical", "divergence": "wasserstein"}, "is fitted with order=1", id="w2"),
])
def test_errors(kw, msg):
    kw = {"divergence": "kl", **kw}
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        dl.fit(dl.Categorical(probs=P), **kw)
