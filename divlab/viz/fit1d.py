"""Figures for 1D fits: the target density, loss curves, and an animated fit.

Conventions follow the rest of divlab: ``p`` is the target (shaded), ``q`` the model (one line
per divergence, labelled with :attr:`FitResult.label`, which names the direction), values in
each divergence's unit (the registry's :attr:`~divlab.divergences.registry.DivergenceSpec.unit`:
nats for the log-based ones, none for H², TV, χ², ...).
Each divergence key has one fixed colour (:func:`color_for`), so the same divergence looks the
same in every figure.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..distributions import Distribution
from ..divergences.registry import get as get_spec
from ..divergences.registry import unit_label, unit_suffix
from ..fit import FitResult
from .layout import animated_figure, animated_spec, animation_layout, legible

__all__ = ["COLORS", "color_for", "x_grid", "frame_steps", "density_figure", "loss_figure", "fit_animation",
           "fit_animation_spec"]

from .palette import COLORS, TARGET_COLOR, TARGET_FILL, color_for  # noqa: E402  (one palette, divlab.viz.palette)

_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
N_X = 400


def _as_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t, dtype=float)


def _density(dist: Distribution, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return _as_numpy(dist.prob(torch.as_tensor(x, dtype=dist.dtype, device=dist.device)))


def frame_values(values) -> np.ndarray:
    """A curve as an animation frame carries it: float32 (7 significant digits, where a curve
    480 px high needs 3). Plotly sends numpy arrays to the browser as base64 binary, 8 bytes a
    float64 value: float32 halves what a 60-frame animation sends, parses and holds."""
    return np.asarray(values, dtype=np.float32)


def x_grid(target: Distribution, results: Sequence[FitResult] = (), n: int = N_X) -> np.ndarray:
    """Evaluation points covering where the target's mass is and where the models went (within
    reason: a model that ran away widens the view by at most the target's own width on each side)."""
    if target.dim != 1:
        raise ValueError(f"x_grid(target={type(target).__name__}, {target.dim}D): 1D figures need a 1D target")
    from ..fit.families import _robust_box

    # framed on where the target's mass is (the middle 99 % of seeded draws, widened by a quarter),
    # not its quadrature box: a Student-t's ±200 scales drew the whole target as one spike
    rlo, rhi = _robust_box(target)
    box = _as_numpy(target.bounds())
    lo, hi = max(float(rlo[0]), float(box[0, 0])), min(float(rhi[0]), float(box[0, 1]))
    width = hi - lo
    for res in results:
        loc, scale = np.asarray(res.trajectory["loc"]), np.asarray(res.trajectory["scale"])
        ok = np.isfinite(loc) & np.isfinite(scale)
        if ok.any():
            lo = min(lo, float((loc[ok] - 3 * scale[ok]).min()))
            hi = max(hi, float((loc[ok] + 3 * scale[ok]).max()))
    lo = max(lo, float(rlo[0]) - width)
    hi = min(hi, float(rhi[0]) + width)
    return np.linspace(lo, hi, n)


def frame_steps(results: Sequence[FitResult], n_frames: int = 60, *, uniform: float = 0.2) -> list[int]:
    """Trajectory indices shown by the animation, spaced *where the motion is*: ``n_frames`` steps
    at even intervals of a pace coordinate that mixes the parameters' arc length (each parameter
    scaled by its range over all the fits, so loc and scale count alike) with ``uniform`` of plain
    step count. A fit moves most in its first few dozen steps; evenly spaced frames showed all of
    that in the first three frames (0.2 s) and then a still picture. Always starts at 0 and ends
    at the longest trajectory's last index; fewer frames if the trajectories are shorter."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"fit_animation(n_frames={n_frames!r}): n_frames must be a positive integer")
    last = max(len(r.losses) for r in results) - 1
    if last == 0:
        return [0]
    k = min(n_frames, last + 1)
    if k == 1:
        return [last]
    move = np.zeros(last)
    for r in results:
        for arr in r.trajectory.values():
            a = np.asarray(arr, dtype=float)
            if a.ndim != 1 or a.size < 2:
                continue
            a = np.concatenate([a, np.full(last + 1 - a.size, a[-1])]) if a.size < last + 1 else a[: last + 1]
            ok = np.isfinite(a)
            if not ok.all():
                a = np.where(ok, a, np.nan)
            rng = np.nanmax(a) - np.nanmin(a) if ok.any() else 0.0
            if not (rng > 0):
                continue
            d = np.abs(np.diff(a)) / rng
            move += np.nan_to_num(d, nan=0.0)
    arc = np.concatenate([[0.0], np.cumsum(move)])
    pace = np.arange(last + 1) / last * uniform
    if arc[-1] > 0:
        pace = pace + (1 - uniform) * arc / arc[-1]
    else:
        pace = np.arange(last + 1) / last
    pace = pace / pace[-1]
    targets = np.linspace(0.0, 1.0, k)
    idx = np.searchsorted(pace, targets, side="left").clip(0, last)
    out = sorted(set(int(i) for i in idx) | {0, last})
    if len(out) < k:  # fill with evenly spaced steps where the pace bunched frames together
        extra = [int(round(i * last / (k - 1))) for i in range(k)]
        for e in extra:
            if len(out) >= k:
                break
            if e not in out:
                out.append(e)
        out = sorted(out)
    return out


def _finite_or_none(values) -> list:
    return [float(v) if math.isfinite(float(v)) else None for v in values]


def _log_y(results: Sequence[FitResult]) -> bool:
    vals = np.concatenate([np.asarray(r.losses, dtype=float) for r in results]) if results else np.array([])
    vals = vals[np.isfinite(vals)]
    return bool(vals.size) and bool((vals > 0).all())


def _styles(results: Sequence[FitResult]) -> list[dict]:
    seen: dict[str, int] = {}
    out = []
    for r in results:
        i = seen.get(r.divergence, 0)
        seen[r.divergence] = i + 1
        out.append({"color": color_for(r.divergence), "dash": _DASHES[i % len(_DASHES)]})
    return out


def loss_title(results: Sequence[FitResult], text: str = "D(p‖q)") -> str:
    """``text`` with the units of the results' divergences in brackets: ``D(p‖q) [nats]``,
    ``D(p‖q) [nats; no unit]`` for KL with TV, plain ``D(p‖q)`` when all are dimensionless."""
    units = unit_label(sorted({get_spec(r.divergence).unit for r in results}))
    return f"{text} [{units}]" if units else text


def _check_results(results) -> list[FitResult]:
    results = [results] if isinstance(results, FitResult) else list(results)
    if not results:
        raise ValueError("fit_animation(results=[]): give at least one FitResult")
    for i, r in enumerate(results):
        if not isinstance(r, FitResult):
            raise ValueError(f"results[{i}]={r!r}: must be a divlab FitResult")
    return results


def _target_trace(target: Distribution, x: np.ndarray) -> go.Scatter:
    return go.Scatter(x=x, y=_density(target, x), mode="lines", fill="tozeroy", name="target p",
                      line={"color": TARGET_COLOR, "width": 1.5}, fillcolor=TARGET_FILL,
                      hovertemplate="x=%{x:.3g}<br>p(x)=%{y:.4g}<extra>target p</extra>")


def density_figure(target: Distribution, x=None) -> go.Figure:
    """A static plot of a 1D target density p (shaded)."""
    x = x_grid(target) if x is None else _as_numpy(x).reshape(-1)
    fig = go.Figure(_target_trace(target, x))
    fig.update_layout(xaxis_title="x", yaxis_title="density", template="plotly_white",
                      margin={"l": 40, "r": 10, "t": 30, "b": 40}, showlegend=True)
    return legible(fig)


def loss_figure(results) -> go.Figure:
    """Loss curves D(p‖q) per step, one per divergence (log-y when every value is positive).
    Infinite or NaN values are left as gaps, never plotted as numbers."""
    results = _check_results(results)
    fig = go.Figure()
    for r, style in zip(results, _styles(results)):
        fig.add_trace(go.Scatter(x=np.arange(len(r.losses)), y=_finite_or_none(r.losses), mode="lines",
                                 name=r.label, line=style, legendgroup=r.label))
    fig.update_layout(xaxis_title="step", yaxis_title=loss_title(results), template="plotly_white",
                      margin={"l": 40, "r": 10, "t": 30, "b": 40})
    if _log_y(results):
        fig.update_yaxes(type="log")
    return legible(fig)


def fit_animation(target: Distribution, results, n_frames: int = 60, x=None, optima=None) -> go.Figure:
    """Animated fit: left, the target p (shaded) and each model q at the current step; right, the
    loss curves with a marker at the current step. Plotly frames, Play/Pause and a step slider.

    Trace order (stable, frames update traces 1..R and 2R+1..3R, R = len(results)):
    0 target, 1..R models q, R+1..2R loss curves, 2R+1..3R current-step markers, then the ghosts
    of the starting models and, with ``optima`` (one :class:`~divlab.fit.explore.Optima` or None per
    result, e.g. from :func:`divlab.fit.explore.optima_of`), each divergence's optima as dashed
    curves (long dashes: global; dash-dot: local), with their values on hover.
    Trajectories of different lengths are clamped: a fit that stopped early stays at its last point.
    :func:`fit_animation_spec` builds the same figure as a plain dict, faster.
    """
    return animated_figure(*_fit_animation_parts(target, results, n_frames, x, optima))


def fit_animation_spec(target: Distribution, results, n_frames: int = 60, x=None, optima=None) -> dict:
    """:func:`fit_animation` as the plain dict ``figure_spec(fit_animation(...))`` gives, built
    without validating the frames and the slider (:func:`divlab.viz.layout.animated_spec`): what a
    page caches and shows."""
    return animated_spec(*_fit_animation_parts(target, results, n_frames, x, optima))


def _fit_animation_parts(target: Distribution, results, n_frames: int, x, optima=None):
    """The animation's static figure (validated: target, models, loss curves, markers; axes), its
    frames as (name, trace dicts, trace indices), and the animation layout, not yet applied."""
    results = _check_results(results)
    if target.dim != 1:
        raise ValueError(f"fit_animation(target={type(target).__name__}, {target.dim}D): needs a 1D target")
    x = x_grid(target, results) if x is None else _as_numpy(x).reshape(-1)
    steps = frame_steps(results, n_frames)
    styles = _styles(results)
    R = len(results)

    def at(r: FitResult, step: int) -> int:
        return min(step, len(r.losses) - 1)

    def model_traces(step: int, frame: bool = False) -> list:
        """The models at ``step``; in a frame only what changes (y and the hover text): plotly
        merges a frame's trace into the drawn one, so x, name and style are sent once."""
        out = []
        for r, style in zip(results, styles):
            i = at(r, step)
            hover = (f"{r.label}<br>loc={r.trajectory['loc'][i]:.4g}, scale={r.trajectory['scale'][i]:.4g}"
                     "<br>x=%{x:.3g}, q(x)=%{y:.4g}<extra></extra>")
            y = frame_values(_density(r.model(i), x))
            if frame:  # a plain dict: never validated (see animation_frame)
                out.append({"type": "scatter", "y": y, "hovertemplate": hover})
            else:
                out.append(go.Scatter(x=x, y=y, mode="lines", name=r.label, legendgroup=r.label,
                                      line={**style, "width": 2.5}, hovertemplate=hover))
        return out

    def markers(step: int, frame: bool = False) -> list:
        out = []
        for r, style in zip(results, styles):
            i = at(r, step)
            y = float(r.losses[i])
            if frame:
                out.append({"type": "scatter", "x": [i], "y": [y if math.isfinite(y) else None]})
                continue
            out.append(go.Scatter(x=[i], y=[y if math.isfinite(y) else None], mode="markers", showlegend=False,
                                  legendgroup=r.label, marker={"color": style["color"], "size": 10},
                                  hovertemplate=(f"{r.label}<br>step %{{x}}: %{{y:.4g}}"
                                                 f"{unit_suffix(get_spec(r.divergence).unit)}<extra></extra>")))
        return out

    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.08,
                        subplot_titles=("target p and model q", loss_title(results, "D(p‖q) per step")))
    fig.add_trace(_target_trace(target, x), row=1, col=1)
    for tr in model_traces(steps[0]):
        fig.add_trace(tr, row=1, col=1)
    for r, style in zip(results, styles):
        fig.add_trace(go.Scatter(x=np.arange(len(r.losses)), y=_finite_or_none(r.losses), mode="lines",
                                 name=r.label, legendgroup=r.label, showlegend=False, line={**style, "width": 1.5}),
                      row=1, col=2)
    for tr in markers(steps[0]):
        fig.add_trace(tr, row=1, col=2)
    # a faint ghost of where each model started, so the eye sees how far it went (not animated)
    for r, style in zip(results, styles):
        fig.add_trace(go.Scatter(x=x, y=frame_values(_density(r.model(0), x)), mode="lines", showlegend=False,
                                 legendgroup=r.label, hoverinfo="skip", opacity=0.35,
                                 line={"color": style["color"], "width": 1.5, "dash": "dot"}), row=1, col=1)

    if optima is not None:  # each divergence's optima, once per divergence (and parameters)
        seen = set()
        for r, style, opt in zip(results, styles, optima):
            ident = (r.divergence, tuple(sorted(r.divergence_params.items())))
            if opt is None or ident in seen:
                continue
            seen.add(ident)
            u = unit_suffix(get_spec(r.divergence).unit)
            for o in opt:
                if not {"loc", "scale"} <= set(o.params):
                    continue
                kind = "global" if o.is_global else "local"
                from ..distributions import Normal

                y = frame_values(_density(Normal(float(o.params["loc"]), float(o.params["scale"])), x))
                fig.add_trace(go.Scatter(
                    x=x, y=y, mode="lines", showlegend=False, legendgroup=r.label, opacity=0.75,
                    line={"color": style["color"], "width": 1.3, "dash": "longdash" if o.is_global else "dashdot"},
                    hovertemplate=(f"{r.label}: {kind} optimum, D = {o.value:.4g}{u}<br>loc={o.params['loc']:.3g}, "
                                   f"scale={o.params['scale']:.3g}<extra></extra>")), row=1, col=1)

    frame_traces = list(range(1, R + 1)) + list(range(2 * R + 1, 3 * R + 1))
    frames = [(str(s), model_traces(s, frame=True) + markers(s, frame=True), frame_traces) for s in steps]

    # a fixed y range on the left so the view does not rescale between frames; a model that
    # collapses to a spike is cut at three times the target's peak rather than flattening p
    peak_p = float(np.nanmax(fig.data[0].y))
    ymax = max([peak_p] + [float(np.nanmax(d["y"])) for _, data, _ in frames for d in data[:R] if len(d["y"])])
    if peak_p > 0:
        ymax = min(ymax, 3 * peak_p)
    fig.update_yaxes(range=[0, 1.05 * (ymax if math.isfinite(ymax) and ymax > 0 else 1.0)], row=1, col=1,
                     title_text="density")
    fig.update_xaxes(title_text="x", row=1, col=1)
    fig.update_xaxes(title_text="step", range=[0, max(steps[-1], 1)], row=1, col=2)
    if _log_y(results):
        fig.update_yaxes(type="log", row=1, col=2)

    # legend above the panel titles, Play/Pause and the slider below the x-axis titles (viz.layout)
    layout = dict(template="plotly_white",
                  **animation_layout([str(s) for s in steps], plot_height=320, labels=step_labels(results, steps),
                                     frame_ms=FRAME_MS, speeds=SPEEDS,
                                     legend_names=["target p"] + [r.label for r in results]))
    return fig, frames, layout


#: Fit 1D's pace: 60 frames at 100 ms play in 6 s; the extra buttons play them at ½× and 2×
FRAME_MS = 100
SPEEDS = (("▶ ½×", 0.5), ("▶ 2×", 2.0))


def step_labels(results: Sequence[FitResult], steps: Sequence[int]) -> list[str]:
    """Slider labels: the optimizer's step, and for the final polishing steps (a few Newton/LBFGS
    steps after the run) '300 + polish' rather than a step number beyond the run's length."""
    nominal = max(len(r.losses) - 1 - int(r.info.get("polish_steps", 0) or 0) for r in results)
    return [str(s) if s <= nominal else f"{nominal} + polish" for s in steps]
