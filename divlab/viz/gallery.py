"""Small figures for the lesson gallery and target previews (static, no animation)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..distributions import Distribution, Normal, from_spec
from .layout import legible
from .fit1d import TARGET_COLOR, TARGET_FILL, _density

__all__ = ["thumbnail", "target_preview"]


def _dist(target) -> Distribution:
    if isinstance(target, Distribution):
        return target
    if isinstance(target, dict):
        return from_spec(target)
    raise ValueError(f"thumbnail(target={target!r}): target must be a distribution or its JSON spec")


def _x(d: Distribution, n: int = 200) -> np.ndarray:
    """x over the target's bounds (a preview shows all of what was drawn or typed)."""
    box = d.bounds().detach().cpu().numpy()
    return np.linspace(float(box[0, 0]), float(box[0, 1]), n)


def _middle(d: Distribution, n: int = 4000) -> np.ndarray:
    """The box (dim × [lo, hi]) holding the middle 99 % of each coordinate of ``n`` fixed-seed
    samples of ``d``, padded by 10 %."""
    xs = d.sample(n, seed=0).detach().cpu().numpy().reshape(n, -1)
    lo, hi = np.quantile(xs, 0.005, axis=0), np.quantile(xs, 0.995, axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    return np.stack([lo - pad, hi + pad], -1)


def _x_thumbnail(d: Distribution, q: Distribution | None, n: int = 200) -> np.ndarray:
    """A 1D thumbnail's x: the middle 99 % of the target (see :func:`_middle`) and the start's
    loc ± 3 scale. The target's bounds are far too wide for a heavy tail: a Student-t with 3
    degrees of freedom spans ±100 there, and the lesson's peak and tails drew as one spike."""
    lo, hi = _middle(d)[0]
    if q is not None:
        loc, scale = float(q.loc), float(q.scale)
        lo, hi = min(lo, loc - 3 * scale), max(hi, loc + 3 * scale)
    return np.linspace(lo, hi, n)


def thumbnail(target, start: dict | None = None, height: int = 150) -> go.Figure:
    """A lesson thumbnail: the target density p (shaded) and, dashed, the model's starting Normal
    ``start`` = {"loc", "scale"} when given. No axes titles, no legend, no toolbar clutter."""
    d = _dist(target)
    if getattr(d, "is_discrete", False):  # a Categorical: its bars (divlab.viz.discrete)
        from .discrete import categorical_thumbnail

        return categorical_thumbnail(d, height)
    if d.dim == 2:
        return _thumbnail_2d(d, height)
    if d.dim != 1:
        raise ValueError(f"thumbnail: needs a 1D or 2D target, got {d.dim}D")
    q = Normal(float(start["loc"]), float(start["scale"])) if start and {"loc", "scale"} <= set(start) else None
    x = _x_thumbnail(d, q)
    fig = go.Figure(go.Scatter(x=x, y=_density(d, x), mode="lines", fill="tozeroy", name="target p",
                               line={"color": TARGET_COLOR, "width": 1.2}, fillcolor=TARGET_FILL, hoverinfo="skip"))
    if q is not None:
        fig.add_trace(go.Scatter(x=x, y=_density(q, x), mode="lines", name="start q",
                                 line={"color": "#d62728", "width": 1.5, "dash": "dash"}, hoverinfo="skip"))
    fig.update_layout(template="plotly_white", height=height, showlegend=False,
                      margin={"l": 5, "r": 5, "t": 5, "b": 20}, yaxis={"visible": False},
                      xaxis={"tickfont": {"size": 9}})
    return legible(fig)


def _thumbnail_2d(d: Distribution, height: int, n: int = 60) -> go.Figure:
    """A 2D target's density as a heatmap on the box holding the middle 99 % of each coordinate
    (from 4 000 fixed-seed samples, padded by 10 %). The full bounding box is far too wide for a thin
    shape: a banana's y-bounds span 30 units for a curve 0.5 wide, which drew as a few dark pixels."""
    import torch

    box = _middle(d)
    xs, ys = np.linspace(box[0, 0], box[0, 1], n), np.linspace(box[1, 0], box[1, 1], n)
    X, Y = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], -1), dtype=d.dtype, device=d.device)
    with torch.no_grad():
        z = d.log_prob(pts).exp().cpu().numpy().reshape(n, n)
    fig = go.Figure(go.Heatmap(x=xs, y=ys, z=z, colorscale="Greys", showscale=False, hoverinfo="skip"))
    fig.update_layout(template="plotly_white", height=height, margin={"l": 5, "r": 5, "t": 5, "b": 5},
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    return legible(fig)


def target_preview(target, height: int = 220) -> go.Figure:
    """The target density p as drawn or typed, with its axis labelled (x, p(x))."""
    d = _dist(target)
    if d.dim != 1:
        raise ValueError(f"target_preview: needs a 1D target, got {d.dim}D")
    x = _x(d, n=400)
    from ..distributions import GridDensity, Mixture

    if isinstance(d, Mixture):  # a drawing with tails: frame the drawing (and a quarter more each side)
        grids = [c for c in d.components if isinstance(c, GridDensity)]
        if grids:
            b = grids[0].bounds().detach().cpu().numpy()[0]
            w = float(b[1] - b[0])
            x = np.linspace(float(b[0]) - 0.25 * w, float(b[1]) + 0.25 * w, 400)
    fig = go.Figure(go.Scatter(x=x, y=_density(d, x), mode="lines", fill="tozeroy", name="target p",
                               line={"color": TARGET_COLOR, "width": 1.5}, fillcolor=TARGET_FILL,
                               hovertemplate="x=%{x:.3g}<br>p(x)=%{y:.4g}<extra>target p</extra>"))
    fig.update_layout(template="plotly_white", height=height, margin={"l": 40, "r": 10, "t": 10, "b": 40},
                      xaxis_title="x", yaxis_title="p(x) (normalized)")
    return legible(fig)
