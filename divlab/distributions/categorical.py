"""Categorical: a distribution over K discrete outcomes (tokens, classes, answers).

A :class:`Categorical` has a probability mass function, not a density on the real line, so
``has_density`` is ``False``: divlab never integrates it on a quadrature grid. Every density
divergence between two Categoricals is instead an exact sum over the outcomes (registered as a
closed form, :mod:`divlab.divergences.discrete`), and the sample divergences (Wasserstein,
MMD, energy) are exact sums over the outcomes' *positions* on a line: the labels themselves
when they are numbers (increasing), else the indices 0..K−1.

Outcomes are addressed by index (``sample`` returns indices, ``log_prob`` takes indices);
``labels`` only name them (for figures, error messages and the ground cost).
"""

from __future__ import annotations

import math

import torch

from .. import device as _device
from .base import Distribution, fmt_value

__all__ = ["Categorical", "MAX_OUTCOMES", "SUM_TOL"]

#: the most outcomes a Categorical may have
MAX_OUTCOMES = 100_000
#: how far from 1 the given probabilities may sum (they are then renormalized exactly)
SUM_TOL = 1e-6


class Categorical(Distribution):
    """P(X = i) = probs[i], i = 0..K−1, given by ``probs`` (≥ 0, summing to 1 within 1e-6) or by
    ``logits`` (finite; probs = softmax(logits)), not both. A leading batch shape is allowed
    (``probs`` of shape ``(*batch, K)``), which is how a fit evaluates many students at once.

    ``labels``: K distinct names (strings or numbers); default ``0..K−1``. When every label is a
    number and they increase, they are the outcomes' positions for the ground cost of
    Wasserstein / MMD / energy; otherwise the positions are the indices.

    >>> Categorical(probs=[0.5, 0.3, 0.2], labels=["the", "a", "an"]).log_prob(torch.tensor(0))  # log 0.5
    """

    spec_type = "categorical"
    has_density = False
    has_rsample = False
    is_discrete = True
    dim = 1

    def __init__(self, probs=None, logits=None, labels=None, *, device=None, dtype=None, validate: bool = True):
        owner = "Categorical"
        if (probs is None) == (logits is None):
            raise ValueError(f"{owner}(probs={_short(probs)}, logits={_short(logits)}): give exactly one of probs or logits")
        name = "probs" if probs is not None else "logits"
        raw = probs if probs is not None else logits
        like = raw if isinstance(raw, torch.Tensor) and raw.is_floating_point() else None
        dev, dt = _device.resolve(device, dtype, like=like)
        try:
            t = _device.as_tensor(raw, device=dev, dtype=dt)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{owner}({name}={_short(raw)}): {name} must be an array of numbers") from exc
        if t.dim() == 0 or t.shape[-1] < 1:
            raise ValueError(f"{owner}({name}={fmt_value(t)}): {name} must be a non-empty array (one entry per outcome)")
        K = int(t.shape[-1])
        if K > MAX_OUTCOMES:
            raise ValueError(f"{owner}({name} with {K} entries): at most {MAX_OUTCOMES} outcomes")
        if validate:
            if name == "probs":
                v = t.detach()
                if not bool(torch.isfinite(v).all()):
                    raise ValueError(f"{owner}(probs={fmt_value(v)}): probs must be finite (no NaN or inf)")
                if bool((v < 0).any()):
                    i = int(torch.nonzero((v < 0).reshape(-1))[0]) % K
                    raise ValueError(f"{owner}(probs={fmt_value(v)}): probs must be >= 0 "
                                     f"(outcome {i} has {float(v.reshape(-1, K)[0, i]):.4g})")
                s = v.sum(-1)
                if bool(((s - 1).abs() > SUM_TOL).any()):
                    bad = float(s.reshape(-1)[int(torch.argmax((s - 1).abs().reshape(-1)))])
                    raise ValueError(f"{owner}(probs={fmt_value(v)}): probs must sum to 1 (they sum to {bad:.10g})")
            elif not bool(torch.isfinite(t.detach()).all()):
                raise ValueError(f"{owner}(logits={fmt_value(t)}): logits must be finite (no NaN or inf)")
        if name == "probs":
            self.probs = t / t.sum(-1, keepdim=True)
            self.log_probs = torch.log(self.probs)
            self._given = "probs"
            self._raw = t  # the spec keeps what was given: from_spec(to_spec()) rebuilds identical probs
        else:
            self.log_probs = torch.log_softmax(t, -1)
            self.probs = self.log_probs.exp()
            self._given = "logits"
            self.logits = t
        self.K = K
        self.labels = _check_labels(owner, labels, K)
        self.batch_shape = torch.Size(t.shape[:-1])
        self._set_device(t)

    # ------------------------------------------------------------------ outcomes
    @property
    def n_outcomes(self) -> int:
        return self.K

    def positions(self) -> torch.Tensor:
        """The outcomes' places on a line (the ground cost of the sample divergences): the labels
        when they are increasing numbers, else the indices 0..K−1."""
        labs = self.labels
        if labs is not None and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in labs):
            pos = torch.tensor([float(x) for x in labs], dtype=self.dtype, device=self.device)
            if self.K == 1 or bool((pos[1:] > pos[:-1]).all()):
                return pos
        return torch.arange(self.K, dtype=self.dtype, device=self.device)

    def label(self, i: int) -> str:
        """Outcome ``i`` in words: its label and index, e.g. ``'the' (index 3)``."""
        if self.labels is None:
            return f"{i}"
        return f"{self.labels[i]!r} (index {i})"

    def label_list(self) -> list:
        return list(self.labels) if self.labels is not None else list(range(self.K))

    # ------------------------------------------------------------------ contract
    def _index(self, x) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            xt = x.to(self.device)
        else:
            try:
                xt = torch.as_tensor(x, device=self.device)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ValueError(f"Categorical.log_prob(x={_short(x)}): x must be outcome indices") from exc
        if xt.is_floating_point():
            if not bool(torch.isfinite(xt).all()) or not bool((xt == torch.round(xt)).all()):
                raise ValueError(f"Categorical.log_prob(x={fmt_value(xt)}): x must be integer outcome indices 0..{self.K - 1}")
            xt = xt.round().long()
        xt = xt.long()
        if xt.numel() and (bool((xt < 0).any()) or bool((xt >= self.K).any())):
            bad = int(xt[(xt < 0) | (xt >= self.K)].reshape(-1)[0])
            raise ValueError(f"Categorical.log_prob(x={bad}): outcome index out of range 0..{self.K - 1}")
        return xt

    def log_prob(self, x):
        """log P(X = x) for outcome indices ``x`` (any shape; broadcast against the batch shape)."""
        xt = self._index(x)
        if not self.batch_shape:
            return self.log_probs[xt]
        shape = torch.broadcast_shapes(xt.shape, self.batch_shape)
        lp = self.log_probs.expand(shape + (self.K,))
        return torch.gather(lp, -1, xt.expand(shape).unsqueeze(-1)).squeeze(-1)

    def prob(self, x):
        return self.log_prob(x).exp()

    def score(self, x):
        raise TypeError("Categorical has no score: its outcomes are discrete (there is no d/dx log p)")

    def _sample(self, n):
        flat = self.probs.detach().reshape(-1, self.K)
        idx = torch.multinomial(flat, n, replacement=True)  # (B, n)
        return idx.T.reshape((n,) + tuple(self.batch_shape))

    @property
    def mean(self):
        return (self.probs * self.positions()).sum(-1)

    def entropy(self) -> torch.Tensor:
        """H(p) = −Σ p log p, nats (0 log 0 = 0)."""
        return -torch.special.xlogy(self.probs, self.probs).sum(-1)

    def bounds(self):
        pos = self.positions()
        return torch.stack([pos.min() - 0.5, pos.max() + 0.5]).reshape(1, 2)

    def min_scale(self):
        pos = self.positions()
        if self.K < 2:
            return 1.0
        return float((pos[1:] - pos[:-1]).min())

    def to_spec(self):
        out = {"type": "categorical"}
        if self._given == "logits":
            out["logits"] = self.logits.detach().cpu().tolist()
        else:
            out["probs"] = self._raw.detach().cpu().tolist()
        if self.labels is not None:
            out["labels"] = list(self.labels)
        return out

    @classmethod
    def from_spec_args(cls, spec, **kw):
        if "probs" not in spec and "logits" not in spec:
            raise ValueError("categorical spec: missing key 'probs' (or 'logits')")
        return cls(probs=spec.get("probs"), logits=spec.get("logits"), labels=spec.get("labels"), **kw)

    spec_keys = ("probs", "logits", "labels")

    def __repr__(self):
        top = torch.argsort(self.probs.detach().reshape(-1, self.K)[0], descending=True)[:3].tolist()
        head = ", ".join(f"{self.labels[i] if self.labels else i}: {float(self.probs.reshape(-1, self.K)[0, i]):.3g}"
                         for i in top)
        batch = f", batch {tuple(self.batch_shape)}" if self.batch_shape else ""
        return f"Categorical(K={self.K}{batch}; top {head})"


def _short(v) -> str:
    if v is None:
        return "None"
    if isinstance(v, torch.Tensor):
        return fmt_value(v)
    if isinstance(v, (list, tuple)) and len(v) > 8:
        return repr(list(v[:8]))[:-1] + f", ...] ({len(v)} entries)"
    return repr(v)


def _check_labels(owner: str, labels, K: int):
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (list, tuple)):
        raise ValueError(f"{owner}(labels={_short(labels)}): labels must be a list of {K} names (strings or numbers)")
    labels = list(labels)
    if len(labels) != K:
        raise ValueError(f"{owner}(labels with {len(labels)} entries): need one label per outcome ({K})")
    for i, x in enumerate(labels):
        ok = isinstance(x, str) or (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x))
        if not ok:
            raise ValueError(f"{owner}(labels[{i}]={x!r}): a label must be a string or a finite number")
    if len(set(labels)) != K:
        seen, dup = set(), None
        for x in labels:
            if x in seen:
                dup = x
                break
            seen.add(x)
        raise ValueError(f"{owner}(labels): labels must be distinct ({dup!r} appears more than once)")
    return labels
