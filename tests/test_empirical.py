"""Empirical (weighted point cloud) distributions."""

from __future__ import annotations

import pytest
import torch

import divlab as dl

DT = torch.float64


def test_construction_1d_2d_and_weights_normalized():
    e1 = dl.Empirical([1.0, 2.0, 4.0], weights=[1.0, 1.0, 2.0])
    assert e1.dim == 1 and e1.n == 3 and e1.event_shape == torch.Size()
    assert torch.allclose(e1.weights, torch.tensor([0.25, 0.25, 0.5], dtype=e1.dtype))
    assert float(e1.mean) == pytest.approx(2.75)
    e2 = dl.Empirical(torch.zeros(5, 2, dtype=DT))
    assert e2.dim == 2 and torch.allclose(e2.weights, torch.full((5,), 0.2, dtype=DT))
    assert dl.Empirical(torch.zeros(4, 1, dtype=DT)).dim == 1


def test_points_keep_their_graph():
    x = torch.randn(6, 2, dtype=DT, requires_grad=True)
    e = dl.Empirical(x)
    e.mean.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 1 / 6))


@pytest.mark.parametrize("points,weights,match", [
    (torch.zeros(3, 3, 3), None, r"Empirical\(points with shape \(3, 3, 3\)\)"),  # (n, d) any d is valid
    ([], None, r"Empirical\(points with shape \(0,\)\)"),
    ([0.0, float("nan")], None, r"Empirical\(points=.*\): points must be finite"),
    ([0.0, 1.0], [1.0, -1.0], r"Empirical\(weights=.*\): weights must be >= 0"),
    ([0.0, 1.0], [0.0, 0.0], r"weights must not sum to 0"),
    ([0.0, 1.0], [1.0], r"Empirical\(weights with shape \(1,\)\): need one weight per point"),
], ids=["shape", "empty", "nan", "negative-weight", "zero-weights", "weight-count"])
def test_invalid_inputs_raise_value_error(points, weights, match):
    with pytest.raises(ValueError, match=match):
        dl.Empirical(points, weights)


def test_no_density():
    e = dl.Empirical([0.0, 1.0])
    assert e.has_density is False
    with pytest.raises(TypeError, match="Empirical has no density"):
        e.log_prob(torch.tensor(0.5, dtype=DT))
    with pytest.raises(ValueError, match="Empirical"):
        dl.estimate(e, dl.Normal(0.0, 1.0), "kl")


def test_sample_resamples_with_seed():
    e = dl.Empirical([0.0, 10.0, 20.0], weights=[0.0, 1.0, 3.0])
    s = e.sample(200, seed=0)
    assert torch.equal(s, e.sample(200, seed=0))
    assert set(s.tolist()) <= {10.0, 20.0}
    assert 0.6 < float((s == 20.0).double().mean()) < 0.9
    assert e.sample(4, seed=1).shape == (4,)
    assert dl.Empirical(torch.randn(5, 2, dtype=DT)).sample(3, seed=0).shape == (3, 2)


def test_bounds_and_min_scale():
    e = dl.Empirical([[0.0, 1.0], [2.0, 1.0]])
    b = e.bounds()
    assert b.shape == (2, 2)
    assert b[0].tolist() == pytest.approx([-0.2, 2.2]) and b[1].tolist() == pytest.approx([0.0, 2.0])
    assert e.min_scale() > 0
    assert dl.Empirical([3.0]).min_scale() == 1.0


def test_spec_round_trip():
    e = dl.Empirical([[0.0, 1.0], [2.0, 3.0]], weights=[1.0, 3.0])
    spec = e.to_spec()
    assert spec["type"] == "empirical"
    back = dl.from_spec(spec)
    assert isinstance(back, dl.Empirical)
    assert torch.equal(back.points, e.points) and torch.allclose(back.weights, e.weights)
    assert isinstance(dl.from_spec({"type": "empirical", "points": [1.0, 2.0]}), dl.Empirical)
    with pytest.raises(ValueError, match="empirical spec: unknown key 'w'"):
        dl.from_spec({"type": "empirical", "points": [1.0], "w": [1.0]})


def test_point_clouds_become_empirical_in_estimate():
    est = dl.estimate([0.0, 1.0], [0.0, 1.0], "wasserstein")
    assert float(est) == 0.0
