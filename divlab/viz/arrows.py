"""Arrows x → T(x) of a transport map, drawn as one plotly trace (Fit 2D and Flows, issue 17).

A map is shown by a subset of its arrows: a line segment from each chosen point x_i to its image
T(x_i), with a small arrowhead at T(x_i). All arrows of one map are ONE scatter trace: the
segments are joined with gaps (``None``) between them and the heads are the trace's markers
(plotly's ``"arrow"`` symbol turned along the segment by ``angleref="previous"``, which plotly
computes in screen pixels, so the heads point along the segments on any axis scaling). Hundreds
of plotly annotations would do the same much more slowly. The colour is the palette's one colour
for the transport map (:data:`divlab.viz.palette.MAP_COLOR`), semi-transparent so the target
under the arrows stays visible.

The trace can go under others (``index``): the pages put it just above the panel's target, so
the model's ellipses and the particles stay visible over the arrows that start from them.

In an animation (a figure with frames) the arrows belong to one state, by default the last
frame: the trace is listed in every frame, empty in all but that one, so Play shows the model
moving without stale arrows and draws them when it reaches the end (plotly keeps a trace that a
frame does not list as it is, so an unlisted arrow trace would sit over every step).
:func:`open_at_frame` makes the figure open at that frame.

- :func:`add_map_arrows` adds the arrows to a ``go.Figure`` (``row``/``col`` of a subplot grid).
- :func:`add_map_arrows_to_spec` does the same on a figure dict (:func:`divlab.viz.shown.figure_spec`)
  without rebuilding the figure: the app caches figures as dicts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from .palette import MAP_COLOR

__all__ = ["add_map_arrows", "add_map_arrows_to_spec", "map_arrows_trace", "arrow_segments", "open_at_frame",
           "make_legend_room", "MAP_NAME", "HEAD_PX", "OPACITY", "LEGEND_SAFE_PX"]

#: the legend entry of the arrows (short: a long one ran under the figure's modebar on Flows)
MAP_NAME = "transport map T_ε"
#: arrowhead size in pixels
HEAD_PX = 9
#: opacity of the whole arrow trace (segments do not darken where they cross)
OPACITY = 0.8


def _points(owner: str, name: str, v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}({name}=...): {name} must be an array of 2D points") from None
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{owner}({name} with shape {a.shape}): {name} must have shape (n, 2)")
    return a


def _chosen(owner: str, x, Tx, max_arrows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, Tx, indices) of the arrows drawn: finite pairs only, at most ``max_arrows`` of them at
    evenly spaced indices (deterministic; a uniform subset when x is an i.i.d. sample)."""
    x, Tx = _points(owner, "x", x), _points(owner, "Tx", Tx)
    if x.shape != Tx.shape:
        raise ValueError(f"{owner}: x has shape {x.shape} and Tx {Tx.shape}; one image per point")
    if isinstance(max_arrows, bool) or not isinstance(max_arrows, (int, np.integer)) or max_arrows < 1:
        raise ValueError(f"{owner}(max_arrows={max_arrows!r}): max_arrows must be a positive integer")
    ok = np.flatnonzero(np.isfinite(x).all(1) & np.isfinite(Tx).all(1))
    if len(ok) > max_arrows:
        ok = ok[np.unique(np.round(np.linspace(0, len(ok) - 1, int(max_arrows))).astype(int))]
    return x[ok], Tx[ok], ok


def arrow_segments(x, Tx, max_arrows: int = 80) -> dict:
    """The arrays of the arrow trace: ``x``, ``y`` (start, end, gap per arrow: 3k entries, gaps
    as ``None``), marker ``size`` (0 at starts and gaps, :data:`HEAD_PX` at the heads), hover
    ``text``, and ``index``: which input points were drawn."""
    x, Tx, idx = _chosen("arrow_segments", x, Tx, max_arrows)
    k = len(idx)
    xs, ys, size, text = [None] * (3 * k), [None] * (3 * k), [0] * (3 * k), [""] * (3 * k)
    d2 = ((Tx - x) ** 2).sum(1)
    for j in range(k):
        xs[3 * j], ys[3 * j] = float(x[j, 0]), float(x[j, 1])
        xs[3 * j + 1], ys[3 * j + 1] = float(Tx[j, 0]), float(Tx[j, 1])
        size[3 * j + 1] = HEAD_PX
        tip = (f"x = ({x[j, 0]:.3g}, {x[j, 1]:.3g}) → T_ε(x) = ({Tx[j, 0]:.3g}, {Tx[j, 1]:.3g})<br>"
               f"|x − T_ε(x)|² = {d2[j]:.3g} squared units of x")
        text[3 * j] = text[3 * j + 1] = tip
    return {"x": xs, "y": ys, "size": size, "text": text, "index": idx}


def map_arrows_trace(x, Tx, *, color: str | None = None, max_arrows: int = 80, name: str = MAP_NAME,
                     showlegend: bool = True, legendgroup: str = "transport map") -> go.Scatter:
    """One scatter trace with the arrows x_i → Tx_i (see :func:`arrow_segments`)."""
    seg = arrow_segments(x, Tx, max_arrows)
    color = color or MAP_COLOR
    return go.Scatter(
        x=seg["x"], y=seg["y"], mode="lines+markers", name=name, legendgroup=legendgroup, showlegend=showlegend,
        opacity=OPACITY, line={"color": color, "width": 1.3},
        marker={"symbol": "arrow", "angleref": "previous", "size": seg["size"], "color": color,
                "line": {"width": 0}},
        text=seg["text"], hovertemplate="%{text}<extra>transport map</extra>", connectgaps=False, cliponaxis=True)


def _frame_entry(trace: dict, on: bool) -> dict:
    """What a frame sends for the arrow trace: its segments (``on``) or nothing."""
    if on:
        return {"type": "scatter", "x": trace["x"], "y": trace["y"], "text": trace["text"],
                "marker": {"size": trace["marker"]["size"]}}
    return {"type": "scatter", "x": [], "y": [], "text": [], "marker": {"size": []}}


def _frame_index(n_frames: int, at_frame: int) -> int:
    if isinstance(at_frame, bool) or not isinstance(at_frame, (int, np.integer)):
        raise ValueError(f"at_frame={at_frame!r}: must be a frame index (an integer, -1 for the last)")
    k = int(at_frame) + (n_frames if at_frame < 0 else 0)
    if not 0 <= k < n_frames:
        raise ValueError(f"at_frame={at_frame}: the figure has {n_frames} frames")
    return k


def _insert_at(index: int | None, n_traces: int) -> int:
    """Where the arrow trace goes among ``n_traces`` traces (None: on top, after all of them)."""
    if index is None:
        return n_traces
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index <= n_traces:
        raise ValueError(f"index={index!r}: must be a trace position in 0..{n_traces} (None: on top)")
    return int(index)


def _frame_traces(traces, data, pos: int) -> list:
    """A frame's trace indices once a trace is inserted at ``pos``, plus ``pos`` itself."""
    old = list(range(len(data))) if traces is None else list(traces)
    return [t + 1 if t >= pos else t for t in old] + [pos]


def add_map_arrows(fig: go.Figure, x, Tx, *, row: int | None = None, col: int | None = None,
                   color: str | None = None, max_arrows: int = 80, name: str = MAP_NAME,
                   showlegend: bool = True, at_frame: int = -1, index: int | None = None) -> go.Figure:
    """Draw arrows from the points ``x`` (n, 2) to their images ``Tx`` (n, 2) on ``fig`` (in
    subplot ``row``, ``col`` when given) as one trace: at most ``max_arrows`` of them (evenly
    spaced indices), non-finite pairs skipped, in the palette's transport-map colour unless
    ``color`` is given. ``index``: the trace's position in ``fig.data`` (drawn over the traces
    before it and under those after; default on top). If ``fig`` has frames, the arrows show at
    frame ``at_frame`` only (see the module docstring). Returns ``fig``."""
    if not isinstance(fig, go.Figure):
        raise ValueError(f"add_map_arrows(fig={type(fig).__name__}): needs a plotly go.Figure "
                         "(for a figure dict use add_map_arrows_to_spec)")
    pos = _insert_at(index, len(fig.data))
    tr = map_arrows_trace(x, Tx, color=color, max_arrows=max_arrows, name=name, showlegend=showlegend)
    fig.add_trace(tr, row=row, col=col)
    if pos < len(fig.data) - 1:
        data = list(fig.data)
        fig.data = data[:pos] + [data[-1]] + data[pos:-1]
    if fig.frames:
        k = _frame_index(len(fig.frames), at_frame)
        tj = fig.data[pos].to_plotly_json()
        fig.frames = [go.Frame(data=list(fr.data) + [_frame_entry(tj, j == k)],
                               traces=_frame_traces(fr.traces, fr.data, pos), name=fr.name,
                               layout=fr.layout, group=fr.group, baseframe=fr.baseframe)
                      for j, fr in enumerate(fig.frames)]
    return fig


def add_map_arrows_to_spec(spec: dict, x, Tx, *, xaxis: str = "x", yaxis: str = "y", color: str | None = None,
                           max_arrows: int = 80, name: str = MAP_NAME, showlegend: bool = True,
                           at_frame: int = -1, index: int | None = None) -> dict:
    """:func:`add_map_arrows` on a figure dict (``fig.to_dict()``): returns a new dict (the
    input is not changed; unchanged traces and frames are shared, not copied) with the arrow
    trace on axes ``xaxis``/``yaxis`` ("x2", "y2" ...) at position ``index`` of the data
    (default on top), listed in every frame (the frames' trace indices are renumbered)."""
    if not isinstance(spec, dict) or "data" not in spec:
        raise ValueError("add_map_arrows_to_spec(spec=...): needs a figure dict (fig.to_dict())")
    pos = _insert_at(index, len(spec["data"]))
    tr = map_arrows_trace(x, Tx, color=color, max_arrows=max_arrows, name=name, showlegend=showlegend)
    tj = tr.to_plotly_json()
    tj.update(xaxis=xaxis, yaxis=yaxis)
    out = dict(spec)
    out["data"] = list(spec["data"][:pos]) + [tj] + list(spec["data"][pos:])
    frames = spec.get("frames") or []
    if frames:
        k = _frame_index(len(frames), at_frame)
        out["frames"] = [dict(fr, data=list(fr.get("data", [])) + [_frame_entry(tj, j == k)],
                              traces=_frame_traces(fr.get("traces"), fr.get("data", []), pos))
                         for j, fr in enumerate(frames)]
    return out


#: a one-row legend wider than this (by :func:`divlab.viz.layout.legend_rows`' estimate) wraps:
#: at 1400 px the app's chart leaves about 660 px left of its modebar, where plotly's tools appear
LEGEND_SAFE_PX = 640


def make_legend_room(spec: dict, before: Sequence[str] = (), max_px: int = LEGEND_SAFE_PX) -> dict:
    """A figure dict whose horizontal legend wraps into rows of equal columns (``max_px`` wide in
    all) when its entries (estimated 40 px + 7 px a character each, as
    :func:`divlab.viz.layout.legend_rows`) would be wider than ``max_px``, with the top margin
    and the height grown by a legend row for each row more than the figure reserved for the
    entries ``before`` (so the plot area and the subplot titles stay where they were). Returns a
    new dict, or ``spec`` when nothing changes."""
    import math

    from .layout import LEGEND_ROW_PX, legend_rows

    names = [d["name"] for d in spec["data"] if d.get("showlegend", True) is not False and d.get("name")]
    width = sum(40 + 7 * len(str(n)) for n in names)
    if width <= max_px or not names:
        return spec
    rows = math.ceil(width / max_px)
    per_row = math.ceil(len(names) / rows)
    rows = math.ceil(len(names) / per_row)
    extra = max(rows - (legend_rows(before) if before else 1), 0)
    layout = dict(spec.get("layout", {}))
    # columns of equal width in pixels (a fraction of the plot width spread them under the
    # modebar again; plotly adds the symbol's 40 px to entrywidth, and fills a row while entries
    # fit the plot: at 1400 px, three columns whose third starts 506 px in, short of the modebar)
    layout["legend"] = dict(layout.get("legend", {}), entrywidthmode="pixels", entrywidth=int(max_px // per_row))
    if extra:
        margin = dict(layout.get("margin", {}))
        margin["t"] = int(margin.get("t", 100)) + extra * LEGEND_ROW_PX
        layout["margin"] = margin
        if layout.get("height"):
            layout["height"] = int(layout["height"]) + extra * LEGEND_ROW_PX
    return dict(spec, layout=layout)


def _merge(base, upd):
    """``base`` updated by ``upd`` as plotly merges a frame into a trace: nested dicts merged,
    everything else (arrays included, also plotly's typed arrays ``{"dtype", "bdata"}``)
    replaced. Returns a new dict; ``base`` is not changed."""
    if not _is_object(base) or not _is_object(upd):
        return upd
    out = dict(base)
    for k, v in upd.items():
        out[k] = _merge(base.get(k), v) if _is_object(v) and _is_object(base.get(k)) else v
    return out


def _is_object(v) -> bool:
    return isinstance(v, dict) and "bdata" not in v


def open_at_frame(spec: dict, at_frame: int = -1) -> dict:
    """A figure dict that opens at frame ``at_frame`` (default the last): that frame's data
    merged into the traces it lists and the step slider set there. Play still starts from the
    first frame (plotly's ``fromcurrent`` restarts from the beginning at the last frame).
    Returns a new dict; ``spec`` is not changed."""
    frames = spec.get("frames") or []
    if not frames:
        return spec
    k = _frame_index(len(frames), at_frame)
    fr = frames[k]
    data = list(spec["data"])
    fdata: Sequence = fr.get("data", [])
    for i, d in zip(fr.get("traces", range(len(fdata))), fdata):
        data[i] = _merge(data[i], {kk: v for kk, v in d.items() if kk != "type"})
    out = dict(spec, data=data)
    layout = dict(spec.get("layout", {}))
    if layout.get("sliders"):
        sliders = [dict(s) for s in layout["sliders"]]
        sliders[0]["active"] = k
        layout["sliders"] = sliders
        out["layout"] = layout
    return out
