"""Finite mixtures of divlab distributions with non-negative weights."""

from __future__ import annotations

import torch

from .. import device as _device
from .base import Distribution, fmt_value, tolist

__all__ = ["Mixture"]


class Mixture(Distribution):
    """Mixture Σ_k w_k p_k of components of one dimension (weights are normalized).

    ``log_prob`` is a logsumexp over ``log w_k + log p_k``; zero weights are allowed (that
    component is ignored), negative weights, NaN and an all-zero weight vector are not.
    Not reparameterizable (the component choice is discrete).
    """

    spec_type = "mixture"

    def __init__(self, components, weights=None, *, device=None, dtype=None, validate: bool = True):
        comps = list(components) if components is not None else []
        if not comps:
            raise ValueError("Mixture(components=[]): a mixture needs at least one component")
        for i, c in enumerate(comps):
            if not isinstance(c, Distribution):
                raise ValueError(f"Mixture(components[{i}]={c!r:.60}): components must be divlab distributions")
            if not getattr(c, "has_density", True):
                raise ValueError(f"Mixture(components[{i}]={c!r:.60}): {type(c).__name__} has no density, so it "
                                 "cannot be a mixture component (a mixture is a density; pool point clouds into one "
                                 "Empirical with weights instead)")
        dims = {c.dim for c in comps}
        if len(dims) != 1:
            raise ValueError(
                f"Mixture(components=[{', '.join(type(c).__name__ + f'({c.dim}D)' for c in comps)}]): "
                "components must all have the same dimension"
            )
        self.dim = comps[0].dim
        if device is not None or dtype is not None:
            dev, dt = _device.resolve(device, dtype)
            if any(c.device != dev or c.dtype != dt for c in comps):
                comps = [_to(c, dev, dt) for c in comps]
        ref = comps[0]
        for i, c in enumerate(comps):
            if c.device != ref.device or c.dtype != ref.dtype:
                comps[i] = _to(c, ref.device, ref.dtype)
        self.components = comps
        if weights is None:
            weights = [1.0] * len(comps)
        try:
            if isinstance(weights, (bool, str, bytes)):
                raise TypeError(type(weights).__name__)
            w = _device.as_tensor(weights, device=ref.device, dtype=ref.dtype)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise ValueError(f"Mixture(weights={weights!r:.60}): weights must be numbers") from exc
        if w.dim() == 0 or w.shape[-1] != len(comps):
            raise ValueError(
                f"Mixture(weights={fmt_value(w)}): need one weight per component ({len(comps)} components)"
            )
        if validate:
            if not torch.isfinite(w).all():
                raise ValueError(f"Mixture(weights={fmt_value(w)}): weights must be finite (no NaN or inf)")
            if (w < 0).any():
                raise ValueError(f"Mixture(weights={fmt_value(w)}): weights must be >= 0")
            if not (w.sum(-1) > 0).all():
                raise ValueError(f"Mixture(weights={fmt_value(w)}): weights must not sum to 0")
            if bool((w.detach().abs() > 1e300).any()):
                raise ValueError(f"Mixture(weights={fmt_value(w)}): weights must be <= 1e300 (they are normalized; "
                                 "the largest value allowed)")
        self.weights = w / w.sum(-1, keepdim=True)
        try:
            self.batch_shape = torch.broadcast_shapes(*(c.batch_shape for c in comps), self.weights.shape[:-1])
        except RuntimeError:
            raise ValueError(f"Mixture(components with batch shapes {[tuple(c.batch_shape) for c in comps]}, weights "
                             f"{tuple(w.shape)}): the batch shapes do not broadcast together") from None
        self._set_device(self.weights)

    @property
    def is_gaussian(self):  # type: ignore[override]
        return all(c.is_gaussian and not isinstance(c, Mixture) for c in self.components)

    @property
    def log_weights(self):
        return torch.log(self.weights)

    def log_prob(self, x):
        x = self._as_points(x)
        lps = torch.stack([c.log_prob(x) for c in self.components], dim=-1)
        return torch.logsumexp(lps + self.log_weights, dim=-1)

    def _sample(self, n):
        draws = torch.stack([c.sample(n) for c in self.components], dim=1 + len(self.batch_shape))
        # draws: (n, *batch, K, *event)
        w = self.weights.expand(tuple(self.batch_shape) + (len(self.components),)).reshape(-1, len(self.components))
        idx = torch.multinomial(w, n, replacement=True).T.reshape((n,) + tuple(self.batch_shape))
        draws = draws.expand((n,) + tuple(self.batch_shape) + draws.shape[1 + len(self.batch_shape):])
        if self.dim == 2:
            gidx = idx[..., None, None].expand(idx.shape + (1, 2))
            return torch.gather(draws, -2, gidx).squeeze(-2)
        return torch.gather(draws, -1, idx[..., None]).squeeze(-1)

    @property
    def mean(self):
        means = torch.stack([c.mean for c in self.components], dim=-1 if self.dim == 1 else -2)
        if self.dim == 1:
            return (means * self.weights).sum(-1)
        return (means * self.weights[..., None]).sum(-2)

    def bounds(self):
        boxes = torch.stack([c.bounds() for c in self.components])
        keep = (self.weights.detach().reshape(-1, len(self.components)) > 0).any(0)
        boxes = boxes[keep]
        return torch.stack([boxes[..., 0].min(0).values, boxes[..., 1].max(0).values], dim=-1)

    def min_scale(self):
        return min(c.min_scale() for c, w in zip(self.components, self.weights.detach().reshape(-1, len(self.components)).T)
                   if (w > 0).any())

    def to_spec(self):
        return {"type": "mixture", "weights": tolist(self.weights),
                "components": [c.to_spec() for c in self.components]}

    spec_keys = ("weights", "components")


def _to(c: Distribution, device, dtype) -> Distribution:
    from .spec import from_spec

    return from_spec(c.to_spec(), device=device, dtype=dtype)
