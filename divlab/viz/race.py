"""Race: one target, several divergences, small multiples with one synchronized animation.

Each panel shows the target p (shaded) and one fitted model q at the current step; one slider
and one Play button move every panel together; the legend is shared (one entry per fit, in the
divergence's fixed colour). Family-agnostic: models are drawn through ``FitResult.model(step)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..distributions import Distribution
from ..divergences.registry import get as get_spec
from ..fit import FitResult
from .fit1d import TARGET_COLOR, TARGET_FILL, _check_results, _density, _styles, frame_steps, frame_values
from .layout import animated_figure, animated_spec, animation_layout

__all__ = ["race_animation", "race_animation_spec", "race_grid", "model_x_grid", "MAX_PANELS"]

MAX_PANELS = 6


def race_grid(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) of the small multiples for ``n`` panels: at most 3 per row by default."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PANELS:
        raise ValueError(f"race_animation(results of length {n!r}): give 1 to {MAX_PANELS} fits")
    cols = min(n, 3) if cols is None else max(1, min(int(cols), n))
    return int(math.ceil(n / cols)), cols


def model_x_grid(target: Distribution, results: Sequence[FitResult] = (), n: int = 300) -> np.ndarray:
    """x points covering the target's box and the final models (their central 99.9%), any family."""
    box = target.bounds().detach().cpu().numpy()
    lo, hi = float(box[0, 0]), float(box[0, 1])
    width = hi - lo
    for r in results:
        for step in (0, -1):
            try:
                b = r.model(step).bounds().detach().cpu().numpy()
            except (ValueError, RuntimeError):
                continue
            if np.isfinite(b).all():
                lo, hi = min(lo, float(b[0, 0])), max(hi, float(b[0, 1]))
    # a model that ran away (or a very wide one) widens the view by at most half the target's width
    return np.linspace(max(lo, float(box[0, 0]) - width / 2), min(hi, float(box[0, 1]) + width / 2), n)


def race_animation(target: Distribution, results, n_frames: int = 40, cols: int | None = None, x=None,
                   height_per_row: int = 260) -> go.Figure:
    """Small multiples, one panel per fit, animated together (one slider, one Play button).

    Trace order: for panel k (0-based), trace 2k is the target and 2k+1 the model; frames update
    the model traces only. Panel titles name the divergence and its direction. A fit that stopped
    early stays at its last point. :func:`race_animation_spec` builds the same figure as a dict."""
    return animated_figure(*_race_parts(target, results, n_frames, cols, x, height_per_row))


def race_animation_spec(target: Distribution, results, n_frames: int = 40, cols: int | None = None, x=None,
                        height_per_row: int = 260) -> dict:
    """:func:`race_animation` as the plain dict ``figure_spec(race_animation(...))`` gives, built
    without validating the frames and the slider (:func:`divlab.viz.layout.animated_spec`)."""
    return animated_spec(*_race_parts(target, results, n_frames, cols, x, height_per_row))


def _race_parts(target: Distribution, results, n_frames: int, cols: int | None, x, height_per_row: int):
    """The static panels (validated), the frames as (name, trace dicts, trace indices), and the
    animation layout, not yet applied."""
    results = _check_results(results)
    if target.dim != 1:
        raise ValueError(f"race_animation(target={type(target).__name__}, {target.dim}D): needs a 1D target")
    rows, cols = race_grid(len(results), cols)
    x = model_x_grid(target, results) if x is None else np.asarray(x, dtype=float).reshape(-1)
    steps = frame_steps(results, n_frames)
    styles = _styles(results)
    p_y = _density(target, x)

    def model_trace(k: int, step: int, frame: bool = False):
        """Panel k's model at ``step``; in a frame only what changes (y, hover), as a dict."""
        r = results[k]
        i = min(step, len(r.losses) - 1)
        y = frame_values(_density(r.model(i), x))
        loss = float(r.losses[i])
        val = get_spec(r.divergence).with_unit(f"{loss:.4g}") if math.isfinite(loss) else "∞"
        hover = f"{r.label}<br>step {i}: D(p‖q) = {val}<br>x=%{{x:.3g}}, q(x)=%{{y:.4g}}<extra></extra>"
        if frame:
            return {"type": "scatter", "y": y, "hovertemplate": hover}
        return go.Scatter(x=x, y=y, mode="lines", name=r.label, legendgroup=r.label, showlegend=True,
                          line={**styles[k], "width": 2.5}, hovertemplate=hover)

    titles = [f"{r.label}" for r in results]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.04, vertical_spacing=0.12)
    for k in range(len(results)):
        rr, cc = k // cols + 1, k % cols + 1
        fig.add_trace(go.Scatter(x=x, y=p_y, mode="lines", fill="tozeroy", name="target p", legendgroup="target",
                                 showlegend=k == 0, line={"color": TARGET_COLOR, "width": 1.2}, fillcolor=TARGET_FILL,
                                 hovertemplate="x=%{x:.3g}<br>p(x)=%{y:.4g}<extra>target p</extra>"), row=rr, col=cc)
        fig.add_trace(model_trace(k, steps[0]), row=rr, col=cc)
    model_idx = [2 * k + 1 for k in range(len(results))]
    frames = [(str(s), [model_trace(k, s, frame=True) for k in range(len(results))], model_idx) for s in steps]
    peak = float(np.nanmax(p_y)) if p_y.size else 1.0
    ymax = peak
    for _, data, _ in frames:
        for d in data:
            if len(d["y"]):
                ymax = max(ymax, float(np.nanmax(d["y"])))
    ymax = min(ymax, 3 * peak) if peak > 0 else (ymax if math.isfinite(ymax) and ymax > 0 else 1.0)
    fig.update_yaxes(range=[0, 1.05 * ymax])
    names = ["target p"] + [r.label for r in results]
    layout = dict(template="plotly_white",
                  **animation_layout([str(s) for s in steps], plot_height=height_per_row * rows,
                                     legend_names=names, axis_title=False, left=40, right=10))
    return fig, frames, layout
