"""Figures for 2D fits: target log-density contours, the model drawn over them, loss curves.

Conventions as in :mod:`divlab.viz.fit1d`: ``p`` is the target (grey filled contours of
log p), ``q`` the model (one colour per divergence, :func:`~divlab.viz.color_for`), values in
each divergence's unit (:attr:`~divlab.divergences.registry.DivergenceSpec.unit`).
Figures are family-agnostic: a model is drawn from ``res.model(step)``. A Gaussian model (or a
mixture of Gaussians) is drawn as its 1σ (solid) and 2σ (dotted) ellipses, one pair per
component, with the component means as markers; any other model as contour lines of its density.
A target without a density (an :class:`~divlab.Empirical` point cloud) is drawn as its points.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..distributions import Distribution, Empirical, Mixture
from ..divergences.registry import get as get_spec
from ..divergences.registry import unit_suffix, with_unit
from .fit1d import SPEEDS, _check_results, _finite_or_none, _log_y, _styles, color_for, frame_steps, loss_title, step_labels
from .layout import animation_frame, animation_layout, legible

__all__ = ["unit", "xy_grid", "log_density_grid", "ellipse", "gaussian_parts", "target_contour", "target_figure2d",
           "fit2d_animation", "fit2d_small_multiples", "N_XY", "LOG_RANGE"]

#: grid points per axis of the contour plots
N_XY = 121
#: the contour colour scale spans log p from its maximum down by this many nats (lower values
#: share the lightest colour; they are still drawn, never clipped away)
LOG_RANGE = 12.0
TARGET_SCALE = [[0.0, "rgb(250, 250, 250)"], [0.5, "rgb(200, 200, 200)"], [1.0, "rgb(90, 90, 90)"]]
def unit(key: str) -> str:
    """The unit of divergence ``key``'s values, from the registry (:attr:`DivergenceSpec.unit`)."""
    return get_spec(key).unit


def _loss_axis(results) -> str:
    return loss_title(results, "D(p‖q) per step")


#: milliseconds per frame when playing
FRAME_MS = 100  # as Fit 1D: 60 frames play in 6 s; ▶ ½× and ▶ 2× beside Play


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy().astype(float)
    return np.asarray(t, dtype=float)


def _check_2d(owner: str, dist) -> None:
    if not isinstance(dist, Distribution):
        raise ValueError(f"{owner}(target={dist!r}): target must be a divlab distribution")
    if dist.dim != 2:
        raise ValueError(f"{owner}(target={type(dist).__name__}, {dist.dim}D): needs a 2D target")


# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------

def gaussian_parts(dist: Distribution) -> list[tuple[float, np.ndarray, np.ndarray]] | None:
    """``[(weight, mean (2,), cov (2, 2)), ...]`` when ``dist`` is a 2D Gaussian or a mixture of
    2D Gaussians (weights sum to 1); ``None`` otherwise."""
    if getattr(dist, "dim", None) != 2 or not getattr(dist, "is_gaussian", False):
        return None
    if isinstance(dist, Mixture):
        w = _np(dist.weights).reshape(-1)
        out = []
        for wk, c in zip(w, dist.components):
            part = gaussian_parts(c)
            if part is None:
                return None
            out.extend((float(wk) * pw, m, s) for pw, m, s in part)
        return out
    mean, cov = getattr(dist, "mean", None), getattr(dist, "cov", None)
    if mean is None or cov is None:
        return None
    mean, cov = _np(mean), _np(cov)
    if mean.shape != (2,) or cov.shape != (2, 2):  # batched parameters are not one model
        return None
    return [(1.0, mean, cov)]


def ellipse(mean, cov, k: float = 1.0, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The k-σ ellipse {m + k·L u : |u| = 1} (cov = L Lᵀ) as ``n`` points, closed (first = last).
    Its semi-axes are k·√λ along the eigenvectors of ``cov``; for a Gaussian it is the contour of
    constant Mahalanobis distance k (mass inside: 1 − exp(−k²/2), i.e. 39% at 1σ, 86% at 2σ)."""
    mean, cov = np.asarray(mean, dtype=float), np.asarray(cov, dtype=float)
    if mean.shape != (2,) or cov.shape != (2, 2):
        raise ValueError(f"ellipse(mean with shape {mean.shape}, cov with shape {cov.shape}): need a 2-vector "
                         "and a 2x2 matrix")
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise ValueError("ellipse(mean, cov): mean and cov must be finite")
    if not (math.isfinite(k) and k > 0):
        raise ValueError(f"ellipse(k={k!r}): k must be > 0")
    if isinstance(n, bool) or not isinstance(n, int) or n < 8:
        raise ValueError(f"ellipse(n={n!r}): n must be an integer >= 8")
    # eigendecomposition (not Cholesky): accurate for nearly singular covariances too
    lam, vec = np.linalg.eigh(0.5 * (cov + cov.T))
    if lam.min() < -1e-12 * max(1.0, abs(lam.max())):
        raise ValueError(f"ellipse(cov={cov.tolist()}): cov must be positive semi-definite")
    t = np.linspace(0.0, 2 * math.pi, n)
    t[-1] = 0.0  # closed exactly
    u = np.stack([np.cos(t), np.sin(t)])
    pts = mean[:, None] + k * (vec * np.sqrt(np.clip(lam, 0.0, None))) @ u
    return pts[0], pts[1]


def _box(dist: Distribution) -> np.ndarray:
    return _np(dist.bounds()).reshape(2, 2)


def _visible_box(target: Distribution, box: np.ndarray, n: int = 81) -> np.ndarray:
    """The part of the quadrature box where log p is within LOG_RANGE + 2 nats of its maximum
    (padded by 10%): a banana's box reaches far up its arms, where nothing is drawn."""
    xs, ys = np.linspace(box[0, 0], box[0, 1], n), np.linspace(box[1, 0], box[1, 1], n)
    z = log_density_grid(target, xs, ys)
    finite = np.isfinite(z)
    if not finite.any():
        return box
    keep = z >= z[finite].max() - (LOG_RANGE + 2.0)
    jj, ii = np.nonzero(keep)
    lo = np.array([xs[max(ii.min() - 1, 0)], ys[max(jj.min() - 1, 0)]])
    hi = np.array([xs[min(ii.max() + 1, n - 1)], ys[min(jj.max() + 1, n - 1)]])
    pad = 0.1 * (hi - lo)
    return np.stack([np.maximum(lo - pad, box[:, 0]), np.minimum(hi + pad, box[:, 1])], axis=1)


def xy_grid(target: Distribution, results: Sequence = (), n: int = N_XY) -> tuple[np.ndarray, np.ndarray]:
    """Axes (xs, ys) of the plotting grid: the target's box, widened to where the Gaussian models
    went (mean ± 2.5σ), at most by the target's own width on each side."""
    _check_2d("xy_grid", target)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"xy_grid(n={n!r}): n must be an integer >= 2")
    box = _box(target)
    if getattr(target, "has_density", True):
        box = _visible_box(target, box)
    lo, hi = box[:, 0].copy(), box[:, 1].copy()
    width = hi - lo
    for r in results:
        for step in (0, len(r.losses) - 1):
            parts = gaussian_parts(r.model(step))
            for _, m, c in parts or ():
                sd = np.sqrt(np.clip(np.diag(c), 0.0, None))
                if np.isfinite(m).all() and np.isfinite(sd).all():
                    lo, hi = np.minimum(lo, m - 2.5 * sd), np.maximum(hi, m + 2.5 * sd)
    lo = np.maximum(lo, box[:, 0] - width)
    hi = np.minimum(hi, box[:, 1] + width)
    return np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)


def log_density_grid(dist: Distribution, xs, ys) -> np.ndarray:
    """log density on the grid, shape ``(len(ys), len(xs))`` (row = y), ``-inf`` where it is 0."""
    xs, ys = _np(xs).reshape(-1), _np(ys).reshape(-1)
    X, Y = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([X, Y], -1), dtype=dist.dtype, device=dist.device)
    with torch.no_grad():
        lp = _np(dist.log_prob(pts))
    return np.where(np.isnan(lp), -np.inf, lp)


# ---------------------------------------------------------------------------------------------
# traces
# ---------------------------------------------------------------------------------------------

def target_contour(target: Distribution, xs, ys, *, showscale: bool = True) -> go.BaseTraceType:
    """The target p as filled contours of log p (nats); a point cloud as its points."""
    if isinstance(target, Empirical) or not getattr(target, "has_density", True):
        pts, w = target.cloud()
        pts, w = _np(pts), _np(w)
        size = 4 + 8 * np.sqrt(w / w.max()) if len(w) else 6
        return go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="target p (samples)",
                          marker={"color": "rgba(60, 60, 60, 0.75)", "size": size},
                          hovertemplate="x=%{x:.3g}, y=%{y:.3g}<extra>target p</extra>")
    z = log_density_grid(target, xs, ys)
    finite = z[np.isfinite(z)]
    zmax = float(finite.max()) if finite.size else 0.0
    zmin = zmax - LOG_RANGE
    zplot = np.where(np.isfinite(z), z, np.nan)  # p = 0: a gap, never a number
    return go.Contour(
        x=xs, y=ys, z=zplot, name="target p (log p)", showlegend=True, colorscale=TARGET_SCALE,
        zmin=zmin, zmax=zmax, contours={"start": zmin, "end": zmax, "size": LOG_RANGE / 12, "coloring": "fill"},
        line={"width": 0.5, "color": "rgba(80, 80, 80, 0.4)"}, showscale=showscale,
        colorbar={"title": {"text": "log p [nats]", "side": "right"}, "len": 0.8, "thickness": 12},
        hovertemplate="x=%{x:.3g}, y=%{y:.3g}<br>log p=%{z:.4g} nats<extra>target p</extra>")


def target_image_uri(target: Distribution, xs, ys) -> str | None:
    """The target's log-density as a grey PNG (data URI) on the grid (xs, ys), in the colours of
    :data:`TARGET_SCALE`; None for a point cloud. Used as a layout image under every panel of an
    animation: plotly.js drops contour traces that a frame does not list while it plays, so the
    target vanished during Play on Fit 2D and Flows; a layout image is not a trace and stays."""
    import base64
    import io

    from PIL import Image

    if isinstance(target, Empirical) or not getattr(target, "has_density", True):
        return None
    z = log_density_grid(target, xs, ys)
    finite = z[np.isfinite(z)]
    if not finite.size:
        return None
    zmax = float(finite.max())
    t = np.clip((np.where(np.isfinite(z), z, zmax - LOG_RANGE) - (zmax - LOG_RANGE)) / LOG_RANGE, 0.0, 1.0)
    # TARGET_SCALE: 250 at 0, 200 at 0.5, 90 at 1 (piecewise linear)
    grey = np.where(t < 0.5, 250 - 100 * t, 200 - 220 * (t - 0.5))
    img = Image.fromarray(np.flipud(grey).astype(np.uint8), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def add_target_images(fig: go.Figure, target: Distribution, xs, ys) -> go.Figure:
    """A layout image of the target under each panel that has a target contour trace, and those
    contours drawn as lines only (the image is their fill): the target stays on screen while the
    animation plays. Returns ``fig``."""
    uri = target_image_uri(target, xs, ys)
    if uri is None:
        return fig
    dx, dy = (xs[1] - xs[0]) / 2 if len(xs) > 1 else 0.0, (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0.0
    images = list(fig.layout.images or [])
    for tr in fig.data:
        if isinstance(tr, go.Contour) and str(tr.name or "").startswith("target p"):
            xa, ya = tr.xaxis or "x", tr.yaxis or "y"
            images.append({"source": uri, "xref": xa, "yref": ya, "x": float(xs[0]) - dx, "y": float(ys[-1]) + dy,
                           "sizex": float(xs[-1] - xs[0]) + 2 * dx, "sizey": float(ys[-1] - ys[0]) + 2 * dy,
                           "sizing": "stretch", "layer": "below", "opacity": 1.0})
            tr.contours.coloring = "lines"
            tr.line = {"width": 0.6, "color": "rgba(80, 80, 80, 0.5)"}
            # plotly draws grid and zero lines over a layer-"below" image: white stripes through the target
            for ax in (xa, ya):
                key = ("xaxis" if ax[0] == "x" else "yaxis") + ax[1:]
                fig.layout[key].update(showgrid=False, zeroline=False)
    fig.update_layout(images=images)
    return fig


def _ellipse_xy(parts, k: float) -> tuple[list, list]:
    xs, ys = [], []
    for _, m, c in parts:
        try:
            ex, ey = ellipse(m, c, k)
        except ValueError:  # a model that left the finite numbers is not drawn
            continue
        xs += ex.tolist() + [None]
        ys += ey.tolist() + [None]
    return xs, ys


def _model_traces(r, step: int, style: dict, xs, ys, style_mode: str, showlegend: bool = True,
                  frame: bool = False) -> list:
    """Three traces per model: the 1σ ellipses (or density contours), the 2σ ellipses, the means.

    ``frame``: only what changes from step to step, as plain dicts (an animation frame: plotly
    merges them into the drawn traces, so names and styles are sent once)."""
    i = min(step, len(r.losses) - 1)
    q = r.model(i)
    parts = gaussian_parts(q) if style_mode != "contour" else None
    color = style["color"]
    loss = float(r.losses[i])
    val = with_unit(f"{loss:.4g}", unit(r.divergence)) if math.isfinite(loss) else "∞"
    tip = f"{r.label}<br>step {i}: D = {val}<extra></extra>"
    if parts is not None:
        x1, y1 = _ellipse_xy(parts, 1.0)
        x2, y2 = _ellipse_xy(parts, 2.0)
        means = np.array([m for _, m, _ in parts])
        wts = np.array([w for w, _, _ in parts])
        if frame:  # float32 arrays, NaN between ellipses (a gap, as None is in the drawn trace)
            x1, y1, x2, y2 = (np.array([np.nan if v is None else v for v in a], dtype=np.float32)
                              for a in (x1, y1, x2, y2))
            return [{"type": "scatter", "x": x1, "y": y1, "hovertemplate": tip},
                    {"type": "scatter", "x": x2, "y": y2, "hovertemplate": tip},
                    {"type": "scatter", "x": means[:, 0], "y": means[:, 1], "customdata": wts,
                     "marker": {"size": 5 + 10 * np.sqrt(wts)}}]
        return [
            go.Scatter(x=x1, y=y1, mode="lines", name=r.label, legendgroup=r.label, showlegend=showlegend,
                       line={"color": color, "width": 2.5, "dash": style["dash"]}, hovertemplate=tip),
            go.Scatter(x=x2, y=y2, mode="lines", name=f"{r.label} (2σ)", legendgroup=r.label, showlegend=False,
                       line={"color": color, "width": 1.2, "dash": "dot"}, hovertemplate=tip),
            go.Scatter(x=means[:, 0], y=means[:, 1], mode="markers", legendgroup=r.label, showlegend=False,
                       marker={"color": color, "size": 5 + 10 * np.sqrt(wts), "symbol": "x"},
                       customdata=wts, hovertemplate=(f"{r.label}<br>mean (%{{x:.3g}}, %{{y:.3g}}), "
                                                      "weight %{customdata:.3f}<extra></extra>")),
        ]
    # any other model: contour lines of log q at 1σ/2σ-equivalent heights below its maximum
    z = log_density_grid(q, xs, ys)
    finite = z[np.isfinite(z)]
    zmax = float(finite.max()) if finite.size else 0.0
    if frame:
        return [{"type": "contour", "z": np.where(np.isfinite(z), z, np.nan).astype(np.float32),
                 "contours": {"coloring": "lines", "start": zmax - 2.0, "end": zmax - 0.5, "size": 1.5},
                 "hovertemplate": tip}, {"type": "scatter"}, {"type": "scatter"}]
    return [
        go.Contour(x=xs, y=ys, z=np.where(np.isfinite(z), z, np.nan), name=r.label, legendgroup=r.label,
                   showlegend=showlegend, showscale=False, colorscale=[[0, color], [1, color]],
                   contours={"coloring": "lines", "start": zmax - 2.0, "end": zmax - 0.5, "size": 1.5},
                   line={"width": 2.0, "color": color}, hovertemplate=tip),
        go.Scatter(x=[None], y=[None], mode="lines", legendgroup=r.label, showlegend=False, hoverinfo="skip"),
        go.Scatter(x=[None], y=[None], mode="markers", legendgroup=r.label, showlegend=False, hoverinfo="skip"),
    ]


def _markers(r, step: int, style: dict, frame: bool = False):
    i = min(step, len(r.losses) - 1)
    y = float(r.losses[i])
    if frame:
        return {"type": "scatter", "x": [i], "y": [y if math.isfinite(y) else None]}
    return go.Scatter(x=[i], y=[y if math.isfinite(y) else None], mode="markers", showlegend=False,
                      legendgroup=r.label, marker={"color": style["color"], "size": 10},
                      hovertemplate=(f"{r.label}<br>step %{{x}}: %{{y:.4g}}{unit_suffix(unit(r.divergence))}"
                                     "<extra></extra>"))


def _style_mode(model_style: str) -> str:
    if model_style not in ("auto", "ellipse", "contour"):
        raise ValueError(f"fit2d_animation(model_style={model_style!r}): model_style must be 'auto', "
                         "'ellipse' or 'contour'")
    return model_style


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------

def target_figure2d(target: Distribution, n: int = N_XY) -> go.Figure:
    """A static figure of a 2D target: filled contours of log p (or the points of a sample cloud)."""
    _check_2d("target_figure2d", target)
    xs, ys = xy_grid(target, n=n)
    fig = go.Figure(target_contour(target, xs, ys))
    fig.update_layout(template="plotly_white", margin={"l": 40, "r": 10, "t": 30, "b": 40}, height=420,
                      xaxis_title="x", yaxis_title="y")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return legible(fig)


def fit2d_animation(target: Distribution, results, n_frames: int = 40, *, model_style: str = "auto",
                    n: int = N_XY, show_loss: bool = True) -> go.Figure:
    """Animated 2D fit: left, log p as filled contours and each model q at the current step (1σ
    and 2σ ellipses, or contours of q); right, the loss curves D(p‖q) with a marker at the
    current step. Plotly frames with Play/Pause and a step slider.

    Trace order: 0 target; then 3 per result (1σ, 2σ, means) = 1..3R; then R loss curves;
    then R current-step markers. Frames update the model traces and the markers.
    """
    results = _check_results(results)
    _check_2d("fit2d_animation", target)
    mode = _style_mode(model_style)
    xs, ys = xy_grid(target, results, n=n)
    steps = frame_steps(results, n_frames)
    styles = _styles(results)
    R = len(results)

    def frame_data(s: int, frame: bool = True) -> list:
        data = []
        for r, st in zip(results, styles):
            data += _model_traces(r, s, st, xs, ys, mode, frame=frame)
        if show_loss:
            data += [_markers(r, s, st, frame=frame) for r, st in zip(results, styles)]
        return data

    cols = 2 if show_loss else 1
    fig = make_subplots(rows=1, cols=cols, column_widths=[0.56, 0.44] if show_loss else None,
                        horizontal_spacing=0.12,
                        subplot_titles=("target p (log p) and model q", _loss_axis(results))[:cols])
    fig.add_trace(target_contour(target, xs, ys, showscale=False), row=1, col=1)
    first = frame_data(steps[0], frame=False)
    for tr in first[:3 * R]:
        fig.add_trace(tr, row=1, col=1)
    if show_loss:
        for r, st in zip(results, styles):
            fig.add_trace(go.Scatter(x=np.arange(len(r.losses)), y=_finite_or_none(r.losses), mode="lines",
                                     name=r.label, legendgroup=r.label, showlegend=False,
                                     line={**st, "width": 1.5}), row=1, col=2)
        for tr in first[3 * R:]:
            fig.add_trace(tr, row=1, col=2)
    traces = list(range(1, 3 * R + 1)) + (list(range(4 * R + 1, 5 * R + 1)) if show_loss else [])
    fig.frames = [animation_frame(name=str(s), data=frame_data(s), traces=traces) for s in steps]
    fig.update_xaxes(title_text="x", range=[float(xs[0]), float(xs[-1])], row=1, col=1)
    fig.update_yaxes(title_text="y", range=[float(ys[0]), float(ys[-1])], row=1, col=1)
    if show_loss:
        fig.update_xaxes(title_text="step", range=[0, max(steps[-1], 1)], row=1, col=2)
        if _log_y(results):
            fig.update_yaxes(type="log", row=1, col=2)
    names = [d.name for d in fig.data if d.showlegend is not False and d.name]
    fig.update_layout(template="plotly_white",
                      **animation_layout([str(s) for s in steps], plot_height=380, frame_ms=FRAME_MS,
                                         labels=step_labels(results, steps), speeds=SPEEDS, legend_names=names))
    return legible(add_target_images(fig, target, xs, ys))


def fit2d_small_multiples(target: Distribution, results, n_frames: int = 40, *, cols: int = 3,
                          model_style: str = "auto", n: int = 81) -> go.Figure:
    """One panel per result (divergence), each with the target contours and that model, all
    animated by one shared slider and Play button; a shared legend. Panel titles are the
    divergence labels (which say the direction)."""
    results = _check_results(results)
    _check_2d("fit2d_small_multiples", target)
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ValueError(f"fit2d_small_multiples(cols={cols!r}): cols must be a positive integer")
    mode = _style_mode(model_style)
    xs, ys = xy_grid(target, results, n=n)
    steps = frame_steps(results, n_frames)
    styles = _styles(results)
    R = len(results)
    ncol = min(cols, R)
    nrow = math.ceil(R / ncol)
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[r.label for r in results],
                        horizontal_spacing=0.05, vertical_spacing=0.12 if nrow > 1 else 0.1)
    tgt = target_contour(target, xs, ys, showscale=False)
    for k, (r, st) in enumerate(zip(results, styles)):
        row, col = k // ncol + 1, k % ncol + 1
        t = go.Contour(tgt) if isinstance(tgt, go.Contour) else go.Scatter(tgt)
        t.showlegend = k == 0
        fig.add_trace(t, row=row, col=col)
        for tr in _model_traces(r, steps[0], st, xs, ys, mode):
            fig.add_trace(tr, row=row, col=col)
        fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], row=row, col=col)
        fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], row=row, col=col)
    # per panel: 1 target + 3 model traces; frames update the model traces
    traces = [4 * k + j for k in range(R) for j in (1, 2, 3)]

    def frame_data(s: int) -> list:
        out = []
        for r, st in zip(results, styles):
            out += _model_traces(r, s, st, xs, ys, mode, frame=True)
        return out

    fig.frames = [animation_frame(name=str(s), data=frame_data(s), traces=traces) for s in steps]
    names = [d.name for d in fig.data if d.showlegend is not False and d.name]
    fig.update_layout(template="plotly_white",
                      **animation_layout([str(s) for s in steps], plot_height=320 * nrow, frame_ms=FRAME_MS,
                                         labels=step_labels(results, steps), speeds=SPEEDS, legend_names=names,
                                         axis_title=False, left=40))
    return legible(add_target_images(fig, target, xs, ys))
