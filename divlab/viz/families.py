"""Families figures: the best fit moving as a divergence parameter (α, λ, q) slides, and an
overlay of the fits for several values."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..distributions import Distribution
from ..divergences.registry import get as get_spec
from ..fit import FitResult
from .fit1d import TARGET_COLOR, TARGET_FILL, _density, frame_values
from .race import model_x_grid
from .layout import animation_frame, animation_layout, legible

__all__ = ["sweep_animation", "sweep_overlay", "param_colors", "phase_figure"]


def param_colors(n: int) -> list[str]:
    """n saturated colours from red (small parameter: the reverse-KL, mode-seeking end, reverse
    KL's colour) through purple to blue (large: the forward-KL, mass-covering end, forward KL's
    colour); never grey in the middle (grey is the target)."""
    import colorsys

    out = []
    for i in range(n):
        t = i / max(n - 1, 1)
        h = (1.0 - t * (145.0 / 360.0)) % 1.0  # hue 360° (red) → 215° (blue), via magenta/purple
        r, g, b = colorsys.hsv_to_rgb(h, 0.82, 0.80)
        out.append(f"rgb({int(255 * r)}, {int(255 * g)}, {int(255 * b)})")
    return out


def _params_of(r: FitResult, name: str) -> float:
    return float(r.divergence_params[name])


def sweep_animation(target: Distribution, results: Sequence[FitResult], param: str, symbol: str | None = None) -> go.Figure:
    """Left: the target p and the best fit q at the current parameter value; right: the fitted
    mean and scale against the parameter with a marker at the current value. A plotly slider over
    the values moves both (no recomputation: the sweep is precomputed)."""
    results = list(results)
    if not results:
        raise ValueError("sweep_animation(results=[]): give the fits of a sweep")
    sym = symbol or param
    vals = [_params_of(r, param) for r in results]
    x = model_x_grid(target, results)
    p_y = _density(target, x)
    locs = np.array([float(r.model().mean.reshape(-1)[0]) if hasattr(r.model(), "mean") else np.nan for r in results])
    scales = np.array([float(r.params.get("scale", np.nan)) for r in results])
    losses = [r.final_loss for r in results]

    def model_trace(i: int, frame: bool = False):
        """The best model at the i-th value; in a frame only what changes (y, name, hover), as a dict."""
        r = results[i]
        val = get_spec(r.divergence).with_unit(f"{losses[i]:.4g}") if math.isfinite(losses[i]) else "∞"
        upd = {"y": frame_values(_density(r.model(), x)), "name": f"best q at {sym}={vals[i]:.3g}",
               "hovertemplate": f"{r.label}: D(p‖q) = {val}<br>x=%{{x:.3g}}, q(x)=%{{y:.4g}}<extra></extra>"}
        if frame:
            return {"type": "scatter", **upd}
        return go.Scatter(x=x, mode="lines", line={"color": "#d62728", "width": 3}, **upd)

    def marker(i: int, frame: bool = False):
        if frame:
            return {"type": "scatter", "x": [vals[i], vals[i]], "y": [locs[i], scales[i]]}
        return go.Scatter(x=[vals[i], vals[i]], y=[locs[i], scales[i]], mode="markers", showlegend=False,
                          marker={"color": "#d62728", "size": 12}, hoverinfo="skip")

    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.08,
                        subplot_titles=("target p and the best model q", f"fitted mean and scale vs {sym}"))
    fig.add_trace(go.Scatter(x=x, y=p_y, mode="lines", fill="tozeroy", name="target p", fillcolor=TARGET_FILL,
                             line={"color": TARGET_COLOR, "width": 1.5}), row=1, col=1)
    fig.add_trace(model_trace(0), row=1, col=1)
    fig.add_trace(go.Scatter(x=vals, y=locs, mode="lines+markers", name="mean of q", line={"color": "#1f77b4"}),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=vals, y=scales, mode="lines+markers", name="scale of q", line={"color": "#2ca02c"}),
                  row=1, col=2)
    fig.add_trace(marker(0), row=1, col=2)
    fig.frames = [animation_frame(name=f"{v:g}", data=[model_trace(i, frame=True), marker(i, frame=True)], traces=[1, 4])
                  for i, v in enumerate(vals)]
    ymax = max([float(np.nanmax(p_y))] + [float(np.nanmax(f.data[0].y)) for f in fig.frames])
    ymax = min(ymax, 3 * float(np.nanmax(p_y)))
    fig.update_yaxes(range=[0, 1.05 * ymax], title_text="density", row=1, col=1)
    fig.update_xaxes(title_text="x", row=1, col=1)
    fig.update_xaxes(title_text=sym, row=1, col=2)
    legend = [d.name for d in fig.data if d.showlegend is not False]
    fig.update_layout(template="plotly_white",
                      **animation_layout([f"{v:g}" for v in vals], plot_height=320, prefix=f"{sym} = ", frame_ms=250,
                                         pause=False, legend_names=legend, right=10))
    return legible(fig)


def sweep_overlay(target: Distribution, results: Sequence[FitResult], param: str, symbol: str | None = None) -> go.Figure:
    """The target and the best fit for each parameter value in one plot, coloured from blue
    (smallest value) to red (largest)."""
    results = list(results)
    if not results:
        raise ValueError("sweep_overlay(results=[]): give at least one fit")
    sym = symbol or param
    x = model_x_grid(target, results)
    fig = go.Figure(go.Scatter(x=x, y=_density(target, x), mode="lines", fill="tozeroy", name="target p",
                               fillcolor=TARGET_FILL, line={"color": TARGET_COLOR, "width": 1.5}))
    for r, color in zip(results, param_colors(len(results))):
        v = _params_of(r, param)
        val = get_spec(r.divergence).with_unit(f"{r.final_loss:.4g}") if math.isfinite(r.final_loss) else "∞"
        fig.add_trace(go.Scatter(x=x, y=_density(r.model(), x), mode="lines", name=f"{sym} = {v:g}",
                                 line={"color": color, "width": 2},
                                 hovertemplate=f"{r.label}: D(p‖q) = {val}<extra></extra>"))
    fig.update_layout(template="plotly_white", height=380, xaxis_title="x", yaxis_title="density",
                      margin={"l": 50, "r": 10, "t": 20, "b": 40})
    return legible(fig)


def phase_figure(view: dict) -> go.Figure:
    """The phase diagram: rows = parameter values, columns = half-separation d of the two-mode
    target; a cell is blue where the best Normal covers both modes (centred), red where it sits
    on one; a black diamond marks each row's refined switch separation. ``view`` from
    ``app_support.phase_view``."""
    vals, seps = view["values"], view["separations"]
    sym = view["symbol"]
    z = [[1.0 if c else 0.0 for c in row] for row in view["covers"]]
    text = [[f"{sym}={v:g}, d={d:g}: {'covers both modes' if c else 'sits on one mode'}<br>"
             f"q = N({lo:.3g}, {sc:.3g}²), modes covered {mc}"
             for d, c, lo, sc, mc in zip(seps, row, locs, scales, mcs)]
            for v, row, locs, scales, mcs in zip(vals, view["covers"], view["loc"], view["scale"], view["modes_covered"])]
    ylab = [f"{sym} = {v:g}" for v in vals]
    fig = go.Figure(go.Heatmap(x=seps, y=ylab, z=z, zmin=0, zmax=1, text=text, hoverinfo="text",
                               colorscale=[[0, "#d62728"], [0.5, "#d62728"], [0.5, "#1f77b4"], [1, "#1f77b4"]],
                               colorbar={"tickvals": [0.25, 0.75], "ticktext": ["one mode", "covers both"]}))
    crit = [(c, y) for c, y in zip(view["critical"], ylab) if c is not None]
    if crit:
        fig.add_trace(go.Scatter(x=[c for c, _ in crit], y=[y for _, y in crit], mode="markers", name="switch",
                                 marker={"symbol": "diamond", "size": 12, "color": "black"},
                                 hovertemplate="switch at d = %{x:.3f}<extra></extra>"))
    fig.update_layout(template="plotly_white", height=120 + 45 * len(vals), margin={"l": 80, "r": 10, "t": 20, "b": 50},
                      xaxis_title="half-separation d of 0.5·N(−d, 1) + 0.5·N(d, 1)", showlegend=False)
    return legible(fig)
