"""Where an animated figure puts its legend, its Play/Pause buttons and its step slider.

Plotly places these in paper coordinates (fractions of the plot area) while their sizes are in
pixels, so fractions picked by eye collide as soon as a figure's height or its number of legend
entries changes: the legend sat on the slider's tick labels (Fit 1D, Fit 2D, Flows) and on the
Play button and a panel title (Race). Here each gets its own band outside the plot area, with
positions computed from pixel sizes, and the margins are made big enough to hold the bands (so
plotly's automatic margins never move them):

    top margin      legend (one row or more, growing upwards)
                    subplot titles
    plot area
    bottom margin   x tick labels and axis title
                    ▶ Play ⏸ Pause
                    slider: current value, rail, ticks, tick labels

The sizes are measured in Chromium with plotly.js 3 and the plotly_white template (12 px
font): a legend row is 29 px, the buttons 33 px, a slider 75 px below its top padding (plotly.js
sliders: current-value line + offset 10 + tick offset 25 + tick length 7 + label line).
"""

from __future__ import annotations

import base64
import math
from typing import Sequence

import numpy as np

import plotly.graph_objects as go

__all__ = ["animation_frame", "animation_layout", "animated_figure", "animated_spec", "legend_rows", "TITLE_PX", "LEGEND_ROW_PX", "AXIS_PX", "BUTTONS_PX", "SLIDER_PX", "legible", "log_ticks", "tick_text"]

#: subplot titles: 21 px above the plot area, plus a gap
TITLE_PX = 28
#: one row of a horizontal legend
LEGEND_ROW_PX = 30
#: x tick labels and an axis title below the plot area (the title's bottom is 43 px down)
AXIS_PX = 58  # (the Play row with its speed buttons reaches under the left panel's x title)
#: tick labels only (panels without an x-axis title)
TICKS_PX = 28
#: the Play/Pause row
BUTTONS_PX = 36
#: slider top padding
SLIDER_PAD_PX = 4
#: the slider below its padding (current value, rail, ticks, labels), with room for larger fonts
SLIDER_PX = 84
#: what a legend row may span, in pixels (the app's wide main column is about 1000 px)
LEGEND_WIDTH_PX = 900


def legend_rows(names: Sequence[str], width_px: int = LEGEND_WIDTH_PX) -> int:
    """Rows a horizontal legend with these entries takes (about 40 px of symbol and padding plus
    7 px a character per entry, wrapped at ``width_px``)."""
    rows, used = 1, 0
    for name in names:
        w = 40 + 7 * len(str(name))
        if used and used + w > width_px:
            rows, used = rows + 1, 0
        used += w
    return rows


def animation_layout(frames: Sequence[str], *, plot_height: int, labels: Sequence[str] | None = None,
                     prefix: str = "step ", frame_ms: int = 60, pause: bool = True,
                     legend_names: Sequence[str] = (), axis_title: bool = True, left: int = 50,
                     right: int = 20, speeds: Sequence[tuple] = ()) -> dict:
    """``fig.update_layout`` arguments for an animated figure whose plot area (all subplots with
    their spacing) is ``plot_height`` pixels: the figure height and margins, a horizontal legend
    above the subplot titles, Play (and Pause) below the x axis, then the slider over ``frames``
    (frame names; slider ``labels``, default the names, with ``prefix`` before the current value).
    ``legend_names``: the entries shown, to reserve enough legend rows; ``axis_title``: whether
    the bottom subplots have an x-axis title (else only tick labels are below the plot).
    ``speeds``: extra play buttons as (label, speed factor), e.g. (("½×", 0.5), ("2×", 2.0))."""
    frames = [str(f) for f in frames]
    labels = frames if labels is None else [str(s) for s in labels]
    if len(labels) != len(frames):
        raise ValueError(f"animation_layout: {len(labels)} labels for {len(frames)} frames")
    h = int(plot_height)
    if h <= 0:
        raise ValueError(f"animation_layout(plot_height={plot_height!r}): must be a positive number of pixels")
    rows = legend_rows(legend_names) if legend_names else 1
    top = TITLE_PX + rows * LEGEND_ROW_PX + 12
    below = AXIS_PX if axis_title else TICKS_PX
    buttons_at = below
    slider_at = below + BUTTONS_PX
    bottom = slider_at + SLIDER_PAD_PX + SLIDER_PX + 6
    play = {"frame": {"duration": int(frame_ms), "redraw": True}, "transition": {"duration": 0}, "fromcurrent": True,
            "mode": "immediate"}
    buttons = [{"label": "▶ Play", "method": "animate", "args": [None, play]}]
    for label, factor in speeds:  # the same animation slower or faster
        fast = {**play, "frame": {"duration": int(round(frame_ms / factor)), "redraw": True}}
        buttons.append({"label": label, "method": "animate", "args": [None, fast]})
    if pause:
        buttons.append({"label": "⏸ Pause", "method": "animate",
                        "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate",
                                          "transition": {"duration": 0}}]})
    return {
        "height": h + top + bottom,
        "margin": {"l": left, "r": right, "t": top, "b": bottom},
        "legend": {"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.0 + TITLE_PX / h, "yanchor": "bottom"},
        "updatemenus": [{
            "type": "buttons", "direction": "left", "showactive": False, "x": 0.0, "xanchor": "left",
            "y": -buttons_at / h, "yanchor": "top", "pad": {"t": 0, "r": 0, "b": 0, "l": 0}, "buttons": buttons,
        }],
        "sliders": [{
            "active": 0, "x": 0.0, "len": 1.0, "y": -slider_at / h, "yanchor": "top",
            "pad": {"t": SLIDER_PAD_PX, "b": 0}, "currentvalue": {"prefix": prefix},
            "steps": [{"label": lab, "method": "animate",
                       "args": [[name], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                         "transition": {"duration": 0}}]} for name, lab in zip(frames, labels)],
        }],
    }


def tick_text(v: float) -> str:
    """A tick label as a plain number: 0.5, 1, 2, 50, 0.001; 1e-06 only beyond 10^±4 (never an SI
    prefix: "1p" would read as the density p, "100µ" as a mean)."""
    if v == 0:
        return "0"
    if 1e-4 <= abs(v) < 1e5:
        return f"{v:.6g}"
    return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e+").replace("e+", "e")


def log_ticks(lo: float, hi: float, max_ticks: int = 9) -> tuple[list, list]:
    """Tick values and plain-number labels for a log axis spanning [lo, hi] (> 0): 1-2-5 steps
    (0.5, 1, 2, 5) when they fit in ``max_ticks``, else 1-3 steps, else powers of ten (every k-th)."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        return [], []
    if hi / lo < 1.5:  # a narrow range: pad so there is something to label
        lo, hi = lo / 1.5, hi * 1.5
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mants in ((1, 2, 5), (1, 3), (1,), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        vals = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in mants]
        vals = [v for v in vals if lo / 1.0001 <= v <= hi * 1.0001]
        if 2 <= len(vals) <= max_ticks:
            return vals, [tick_text(v) for v in vals]
    if e1 - e0 <= 1:  # a narrow range: three rounded values across it
        vals = sorted({float(f"{v:.2g}") for v in np.geomspace(lo, hi, 3)})
        return vals, [tick_text(v) for v in vals]
    step = max(1, math.ceil((e1 - e0 + 1) / max_ticks))
    vals = [10.0 ** e for e in range(e0, e1 + 1, step)]
    return vals, [tick_text(v) for v in vals]


def _axis_values(fig: go.Figure, frames, axis_key: str) -> np.ndarray:
    """Every finite positive value plotted against layout axis ``axis_key`` ('yaxis2', ...)."""
    letter = axis_key[0]
    ref = letter + axis_key[5:]  # 'yaxis2' -> 'y2'
    out = []

    def add(trace_axis, vals):
        if (trace_axis or letter) != ref or vals is None:
            return
        if isinstance(vals, dict):  # a typed array
            return
        try:
            a = np.asarray(vals, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            return
        out.append(a[np.isfinite(a) & (a > 0)])

    for tr in fig.data:
        add(getattr(tr, f"{letter}axis", None), getattr(tr, letter, None))
    for _name, data, traces in frames or ():
        for d, ti in zip(data, traces):
            if 0 <= ti < len(fig.data):
                add(getattr(fig.data[ti], f"{letter}axis", None), d.get(letter) if isinstance(d, dict) else getattr(d, letter, None))
    return np.concatenate(out) if out else np.array([])


def legible(fig: go.Figure, frames=None) -> go.Figure:
    """Axes a class can read: every axis writes powers of ten, not SI prefixes (exponentformat
    "power"), and every log axis gets plain-number ticks 0.5, 1, 2, 5 over the values plotted on
    it (plotly's own log ticks label minor ticks with a bare digit: "5 4 3 2 1 9 8", and 0.34 sat
    beside a "3"). ``frames``: an animation's (name, trace dicts, trace indices), whose values
    count too. Returns ``fig``."""
    lay = fig.layout.to_plotly_json()
    for key in [k for k in lay if k.startswith(("xaxis", "yaxis"))] or ["xaxis", "yaxis"]:
        ax = fig.layout[key]
        upd = {"exponentformat": "power"}
        if ax.type == "log" and ax.tickvals is None:
            vals = _axis_values(fig, frames, key)
            if vals.size:
                tv, tt = log_ticks(float(vals.min()), float(vals.max()))
                if tv:
                    upd.update(tickvals=tv, ticktext=tt)
        fig.layout[key].update(**upd)
    return fig


def animation_frame(name: str, data: list, traces: list) -> go.Frame:
    """One animation frame, not validated again: its traces are plain dicts holding only what
    changes from step to step (y, x, z, hover text) of traces the figure has validated already.
    Validating 60 frames of 6 such dicts cost 0.16 s (Fit 1D), more than the fit it shows."""
    return go.Frame(name=name, data=data, traces=traces, _validate=False)


def animated_figure(fig: go.Figure, frames: Sequence[tuple], layout: dict) -> go.Figure:
    """``fig`` (the static traces) with its ``frames`` — (name, trace dicts, trace indices) — and
    the animation ``layout`` (:func:`animation_layout` plus the template) applied."""
    fig.frames = [animation_frame(name=name, data=data, traces=traces) for name, data, traces in frames]
    fig.update_layout(**layout)
    return legible(fig, frames)


def animated_spec(fig: go.Figure, frames: Sequence[tuple], layout: dict) -> dict:
    """The plain dict ``figure_spec(animated_figure(fig, frames, layout))`` gives (data, layout,
    frames; numpy arrays as plotly's base64 typed arrays), without plotly validating and deep-copying
    the frames and the slider steps: only the static traces and the rest of the layout go through
    plotly. For Fit 1D's 60 frames of 3 fits 0.04 s instead of 0.10 s, as long as the fit itself."""
    layout = dict(layout)
    sliders = layout.pop("sliders", None)
    fig.update_layout(**layout)
    legible(fig, frames)
    spec = fig.to_dict()
    if sliders is not None:
        spec["layout"]["sliders"] = sliders
    spec["frames"] = [{"data": [_typed_arrays(d) for d in data], "name": name, "traces": traces}
                      for name, data, traces in frames]
    return spec


#: numpy dtypes (little-endian) and their plotly.js typed-array names; frames hold float32 curves
_TYPED = {"<f4": "f4", "<f8": "f8"}


def _typed_arrays(trace: dict) -> dict:
    """A frame's trace with its 1D numpy arrays as plotly's typed-array dicts (``{"dtype", "bdata"}``,
    base64 of the little-endian bytes), as ``go.Figure.to_dict`` writes them; other arrays as lists."""
    out = {}
    for k, v in trace.items():
        if isinstance(v, np.ndarray):
            v = ({"dtype": _TYPED[v.dtype.str], "bdata": base64.b64encode(v.tobytes()).decode("ascii")}
                 if v.dtype.str in _TYPED and v.ndim == 1 else v.tolist())
        out[k] = v
    return out
