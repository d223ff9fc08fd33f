"""Plain-Python helpers behind the Fit 2D and Flows pages (no Streamlit here).

The pages pass widget values in and get distribution specs, scenarios, figures and table rows
back; every check a visitor's input needs lives here, so it is unit-tested without a browser:

- :func:`shape_spec`: the named 2D targets (banana, ring, two moons, three blobs, two unequal blobs);
- :func:`spec_from_table`: a component table of 2D Normals -> a mixture spec, with row-level errors;
- :func:`density_from_brush`: a brush-painted canvas image -> a 2D GridDensity spec;
- :func:`points_from_canvas`: clicked points on a canvas -> an Empirical (sample cloud) spec;
- :func:`fit2d_init`, :func:`fit2d_view`, :func:`fit2d_downloads`: the fit, its figure and tables;
- :func:`flows_view`: several particle flows side by side.

Errors a visitor can cause are :class:`InputError` (a ``ValueError``) with one line saying what
to do; the pages show it next to the control and keep the last good state.
"""

from __future__ import annotations

import json as _json
import math
from typing import Any, Sequence

import numpy as np


__all__ = ["InputError", "SHAPES", "shape_spec", "TABLE_COLUMNS", "DEFAULT_TABLE", "spec_from_table",
           "table_from_spec", "density_from_brush", "points_from_canvas", "FAMILIES_2D", "fit2d_init",
           "fit2d_view", "fit2d_downloads", "sample_divergences", "density_divergences",
           "BOX", "MAX_CLICKS", "build_2d_scenario", "widget_state", "spec_json", "main_param", "parse_choices"]


class InputError(ValueError):
    """Something a visitor typed, drew or clicked that cannot become a target (one line)."""


# ---------------------------------------------------------------------------------------------
# named shapes
# ---------------------------------------------------------------------------------------------


def _mvn(mx: float, my: float, sx: float, sy: float, corr: float = 0.0) -> dict:
    c = corr * sx * sy
    return {"type": "mvn", "mean": [float(mx), float(my)], "cov": [[sx * sx, c], [c, sy * sy]]}


#: named 2D targets: label -> (builder, {parameter: (default, low, high, help)})
SHAPES: dict[str, tuple[Any, dict]] = {
    "banana": (lambda curvature, width: {"type": "banana", "curvature": curvature, "scale1": 1.5, "scale2": width},
               {"curvature": (0.3, -1.0, 1.0, "how much the banana bends (0: a tilted-free Gaussian)"),
                "width": (0.5, 0.1, 2.0, "thickness across the curve")}),
    "ring": (lambda radius, width: {"type": "ring", "radius": radius, "width": width, "center": [0.0, 0.0]},
             {"radius": (2.0, 0.5, 5.0, "radius of the ring"), "width": (0.3, 0.05, 1.5, "thickness of the ring")}),
    "two moons": (lambda noise: {"type": "two_moons", "noise": noise},
                  {"noise": (0.1, 0.05, 0.5, "blur of the two half circles")}),
    "three blobs": (lambda separation, width: {
        "type": "mixture", "weights": [1 / 3, 1 / 3, 1 / 3],
        "components": [_mvn(-separation, 0.0, width, width), _mvn(separation, 0.0, width, width),
                       _mvn(0.0, 1.33 * separation, width, width)]},
        {"separation": (3.0, 0.5, 6.0, "distance of the side blobs from the centre"),
         "width": (0.5, 0.1, 2.0, "standard deviation of each blob")}),
    "two unequal blobs": (lambda separation, heavy: {
        "type": "mixture", "weights": [heavy, 1.0 - heavy],
        "components": [_mvn(-separation / 2, 0.0, 0.7, 0.7), _mvn(separation / 2, 0.0, 0.7, 0.7)]},
        {"separation": (5.0, 0.5, 10.0, "distance between the blobs"),
         "heavy": (0.7, 0.5, 0.95, "weight of the left blob")}),
}


def shape_spec(name: str, **params: float) -> dict:
    """The spec of a named shape with the given parameters (defaults where absent)."""
    if name not in SHAPES:
        raise InputError(f"shape {name!r} is unknown (allowed: {', '.join(SHAPES)})")
    build, pars = SHAPES[name]
    unknown = sorted(set(params) - set(pars))
    if unknown:
        raise InputError(f"shape {name!r}: unknown parameter {unknown[0]!r} (allowed: {', '.join(pars)})")
    vals = {}
    for k, (default, lo, hi, _) in pars.items():
        v = params.get(k, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise InputError(f"shape {name!r}: {k} must be a number in [{lo:g}, {hi:g}] (got {v!r})")
        vals[k] = float(v)
    return build(**vals)


# ---------------------------------------------------------------------------------------------
# component table of 2D Normals
# ---------------------------------------------------------------------------------------------

TABLE_COLUMNS = ("weight", "mean_x", "mean_y", "scale_x", "scale_y", "corr")
DEFAULT_TABLE = (
    {"weight": 0.5, "mean_x": -2.5, "mean_y": 0.0, "scale_x": 0.8, "scale_y": 0.8, "corr": 0.0},
    {"weight": 0.5, "mean_x": 2.5, "mean_y": 0.0, "scale_x": 0.8, "scale_y": 0.8, "corr": 0.0},
)
MAX_ROWS = 8


def _records(table: Any) -> list[dict]:
    if hasattr(table, "to_dict"):
        return [dict(r) for r in table.to_dict("records")]
    if isinstance(table, (list, tuple)):
        return [dict(r) if isinstance(r, dict) else {} for r in table]
    raise InputError(f"component table: expected rows, got {type(table).__name__}")


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def _num(row: int, name: str, v: Any) -> float:
    if isinstance(v, bool):
        raise InputError(f"row {row}: {name} must be a number (got {v!r})")
    try:
        x = float(v.strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        raise InputError(f"row {row}: {name} must be a number (got {v!r})") from None
    if not math.isfinite(x):
        raise InputError(f"row {row}: {name} must be finite (got {v!r})")
    return x


def spec_from_table(table: Any) -> dict:
    """A mixture spec from rows of (weight, mean_x, mean_y, scale_x, scale_y, corr). Fully blank
    rows are skipped; a blank or non-numeric cell, scale <= 0, |corr| >= 1, a negative weight or
    all-zero weights raise :class:`InputError` naming the row and column."""
    rows = []
    for i, r in enumerate(_records(table), start=1):
        if all(_blank(r.get(c)) for c in TABLE_COLUMNS):
            continue
        vals = {}
        for c in TABLE_COLUMNS:
            if _blank(r.get(c)):
                raise InputError(f"row {i}: {c} is empty (fill it in or delete the row)")
            vals[c] = _num(i, c, r.get(c))
        if vals["weight"] < 0:
            raise InputError(f"row {i}: weight must be >= 0 (got {vals['weight']:g})")
        for c in ("scale_x", "scale_y"):
            if vals[c] <= 0:
                raise InputError(f"row {i}: {c} must be > 0 (got {vals[c]:g})")
        if not -1 < vals["corr"] < 1:
            raise InputError(f"row {i}: corr must be strictly between -1 and 1 (got {vals['corr']:g})")
        if max(abs(vals["mean_x"]), abs(vals["mean_y"]), vals["scale_x"], vals["scale_y"]) > 1e4:
            raise InputError(f"row {i}: means and scales must be at most 1e4 in size")
        rows.append(vals)
    if not rows:
        raise InputError("the table has no components: add at least one row")
    if len(rows) > MAX_ROWS:
        raise InputError(f"{len(rows)} components: at most {MAX_ROWS}")
    total = sum(r["weight"] for r in rows)
    if not total > 0:
        raise InputError("the weights are all 0: give at least one component a positive weight")
    comps = [_mvn(r["mean_x"], r["mean_y"], r["scale_x"], r["scale_y"], r["corr"]) for r in rows]
    spec = {"type": "mixture", "weights": [r["weight"] / total for r in rows], "components": comps}
    from ..distributions import from_spec

    try:
        from_spec(spec)
    except ValueError as exc:  # pragma: no cover - the row checks above are stricter
        raise InputError(str(exc)) from None
    return spec


def table_from_spec(spec: dict) -> list[dict] | None:
    """Rows for the component table showing ``spec`` (an mvn or a mixture of mvn), else None."""
    if not isinstance(spec, dict):
        return None
    if spec.get("type") == "mvn":
        comps, weights = [spec], [1.0]
    elif spec.get("type") == "mixture" and all(c.get("type") == "mvn" for c in spec.get("components", [])):
        comps, weights = spec["components"], spec["weights"]
    else:
        return None
    rows = []
    for w, c in zip(weights, comps):
        (a, b), (_, d) = c["cov"]
        sx, sy = math.sqrt(a), math.sqrt(d)
        rows.append({"weight": float(w), "mean_x": float(c["mean"][0]), "mean_y": float(c["mean"][1]),
                     "scale_x": sx, "scale_y": sy, "corr": float(b) / (sx * sy)})
    return rows


# ---------------------------------------------------------------------------------------------
# drawing: a brush-painted density, clicked points
# ---------------------------------------------------------------------------------------------

#: default data box of the drawing canvas: [[x_lo, x_hi], [y_lo, y_hi]]
BOX = ((-4.0, 4.0), (-4.0, 4.0))
#: painted fraction above which the canvas counts as filled
MAX_PAINT = 0.6
#: smallest painted extent (fraction of the canvas side, in both directions) of a density
MIN_EXTENT = 0.06
#: most points a clicked sample cloud may have
MAX_CLICKS = 2000
GRID_N = 48


def _box(box) -> tuple[float, float, float, float]:
    try:
        (x0, x1), (y0, y1) = box
        x0, x1, y0, y1 = float(x0), float(x1), float(y0), float(y1)
    except (TypeError, ValueError):
        raise InputError(f"drawing box must be [[x_lo, x_hi], [y_lo, y_hi]], got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or x1 <= x0 or y1 <= y0:
        raise InputError(f"drawing box: each upper end must be larger than the lower end (got x {x0:g}..{x1:g}, "
                         f"y {y0:g}..{y1:g})")
    return x0, x1, y0, y1


def _ink(image: Any) -> np.ndarray | None:
    """Paint intensity in [0, 1] per pixel (dark or opaque paint on a white or clear canvas)."""
    if image is None:
        return None
    arr = np.asarray(image, dtype=float)
    if arr.ndim != 3 or arr.shape[2] < 3 or arr.size == 0:
        return None
    ink = 1.0 - arr[:, :, :3].mean(axis=2) / 255.0
    if arr.shape[2] == 4:
        ink = ink * (arr[:, :, 3] / 255.0)
    return np.clip(ink, 0.0, 1.0)


def density_from_brush(image: Any, box=BOX, *, n: int = GRID_N, smooth: float = 1.0) -> dict:
    """A brush-painted canvas (RGBA array, H x W x 4, paint dark on white) -> a 2D GridDensity
    spec on ``n`` x ``n`` points over ``box``: the paint intensity averaged per cell, blurred by a
    Gaussian of ``smooth`` cells, rows flipped so that y points up. GridDensity normalizes it.

    Raises :class:`InputError` for an empty canvas, a single dot (painted extent below
    :data:`MIN_EXTENT` of the side in both directions) or a filled canvas (more than
    :data:`MAX_PAINT` painted: a flat density says nothing)."""
    x0, x1, y0, y1 = _box(box)
    ink = _ink(image)
    if ink is None or not (ink > 0.05).any():
        raise InputError("The canvas is empty: paint the regions where the target has mass.")
    painted = ink > 0.05
    frac = float(painted.mean())
    if frac > MAX_PAINT:
        raise InputError(f"The canvas is {100 * frac:.0f}% painted: a density that is flat everywhere shows nothing. "
                         "Clear it and paint only where the target should have mass.")
    rows, cols = np.nonzero(painted)
    H, W = ink.shape
    if (rows.max() - rows.min() + 1) < MIN_EXTENT * H and (cols.max() - cols.min() + 1) < MIN_EXTENT * W:
        raise InputError("That is a single dot: paint an area (a density needs some extent), or use 'click "
                         "points' for a sample cloud.")
    n = int(n)
    # average the ink over n x n cells
    ri = np.minimum((np.arange(H) * n) // H, n - 1)
    ci = np.minimum((np.arange(W) * n) // W, n - 1)
    grid = np.zeros((n, n))
    np.add.at(grid, (ri[:, None], ci[None, :]), ink)
    counts = np.zeros((n, n))
    np.add.at(counts, (ri[:, None], ci[None, :]), 1.0)
    grid = grid / np.maximum(counts, 1.0)
    if smooth > 0:
        k = np.arange(-int(3 * smooth) - 1, int(3 * smooth) + 2)
        kern = np.exp(-0.5 * (k / smooth) ** 2)
        kern /= kern.sum()
        grid = np.apply_along_axis(lambda v: np.convolve(v, kern, mode="same"), 0, grid)
        grid = np.apply_along_axis(lambda v: np.convolve(v, kern, mode="same"), 1, grid)
    grid = grid[::-1]  # image row 0 is the top: y grows upwards in the spec
    grid = np.where(grid < 1e-6 * grid.max(), 0.0, grid)
    xs = np.linspace(x0, x1, n)
    ys = np.linspace(y0, y1, n)
    spec = {"type": "grid", "x": [round(float(v), 6) for v in xs], "y": [round(float(v), 6) for v in ys],
            "values": [[float(f"{v:.5g}") for v in row] for row in grid]}
    from ..distributions import from_spec

    try:
        from_spec(spec)
    except ValueError as exc:  # pragma: no cover - guarded by the checks above
        raise InputError(f"the painting does not make a density: {exc}") from None
    return spec


def _circle_center(obj: dict) -> tuple[float, float] | None:
    try:
        left, top = float(obj.get("left", 0.0)), float(obj.get("top", 0.0))
        r = float(obj.get("radius", 0.0)) * float(obj.get("scaleX", 1.0) or 1.0)
    except (TypeError, ValueError):
        return None
    cx = left + (r if obj.get("originX", "left") == "left" else 0.0)
    cy = top + (r if obj.get("originY", "top") == "top" else 0.0)
    return (cx, cy) if math.isfinite(cx) and math.isfinite(cy) else None


def points_from_canvas(json_data: Any, width: float, height: float, box=BOX) -> dict:
    """Points clicked on a drawable canvas (fabric.js JSON, "circle" objects of point mode) ->
    an Empirical spec ``{"type": "empirical", "points": [[x, y], ...]}`` in data coordinates.

    Raises :class:`InputError` for no points, fewer than 3 (a single dot is not a cloud: every
    divergence between it and a model is about one location), or more than :data:`MAX_CLICKS`."""
    x0, x1, y0, y1 = _box(box)
    pts = []
    objs = json_data.get("objects") if isinstance(json_data, dict) else None
    for obj in objs or []:
        if isinstance(obj, dict) and obj.get("type") == "circle":
            c = _circle_center(obj)
            if c is not None:
                pts.append(c)
    if not pts:
        raise InputError("No points yet: click on the canvas to place sample points (at least 3).")
    if len(pts) < 3:
        raise InputError(f"{'A single dot' if len(pts) == 1 else 'Two points'} is not a sample cloud: click at "
                         "least 3 points.")
    if len(pts) > MAX_CLICKS:
        raise InputError(f"{len(pts)} points: at most {MAX_CLICKS}")
    arr = np.asarray(pts, dtype=float)
    xs = x0 + np.clip(arr[:, 0] / float(width), 0.0, 1.0) * (x1 - x0)
    ys = y1 - np.clip(arr[:, 1] / float(height), 0.0, 1.0) * (y1 - y0)
    if np.ptp(xs) == 0 and np.ptp(ys) == 0:
        raise InputError("All points are at the same place: spread them out.")
    return {"type": "empirical", "points": [[round(float(a), 6), round(float(b), 6)] for a, b in zip(xs, ys)]}


# ---------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------

#: 2D model families: key -> label
FAMILIES_2D = {"mvn": "2D Normal, full covariance", "diag": "2D Normal, diagonal covariance",
               "mixture": "mixture of 2D Normals"}


def sample_divergences() -> list[str]:
    """Divergences fitted from samples (work for point-cloud targets too)."""
    from ..scenario import SAMPLE_FITTABLE, _fittable

    return [k for k in _fittable() if k in SAMPLE_FITTABLE]


def density_divergences() -> list[str]:
    """Divergences fitted by quadrature or Monte Carlo (need the target's density)."""
    from ..scenario import SAMPLE_FITTABLE, _fittable

    return [k for k in _fittable() if k not in SAMPLE_FITTABLE]


def fit2d_init(family: str, loc_x: float, loc_y: float, scale: float, components: int = 2) -> dict:
    """The model's starting point from the page's three numbers: a round Normal at (loc_x, loc_y)
    with standard deviation ``scale``; a mixture puts its components, equally weighted, on a
    circle of radius ``scale`` around that point (distinct starts let them split)."""
    for name, v in (("start x", loc_x), ("start y", loc_y), ("start scale", scale)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"{name} must be a number (got {v!r})")
    if scale <= 0:
        raise InputError(f"start scale must be > 0 (got {scale:g})")
    lx, ly, s = float(loc_x), float(loc_y), float(scale)
    if family == "mvn":
        return {"loc_x": lx, "loc_y": ly, "scale_x": s, "scale_y": s, "corr": 0.0}
    if family == "diag":
        return {"loc_x": lx, "loc_y": ly, "scale_x": s, "scale_y": s}
    if family == "mixture":
        K = int(components)
        out = {f"w{k}": 1.0 / K for k in range(1, K + 1)}
        for k in range(1, K + 1):
            a = 2 * math.pi * (k - 1) / K
            out[f"loc_x{k}"] = lx + (s * math.cos(a) if K > 1 else 0.0)
        for k in range(1, K + 1):
            a = 2 * math.pi * (k - 1) / K
            out[f"loc_y{k}"] = ly + (s * math.sin(a) if K > 1 else 0.0)
        out.update({f"scale_x{k}": s for k in range(1, K + 1)})
        out.update({f"scale_y{k}": s for k in range(1, K + 1)})
        out.update({f"corr{k}": 0.0 for k in range(1, K + 1)})
        return out
    raise InputError(f"model family {family!r} is not a 2D family (allowed: {', '.join(FAMILIES_2D)})")


def build_2d_scenario(target_spec: dict, choices: Sequence[tuple[str, dict]], *, family: str, init: dict | None,
                      components: int | None = None, estimator: str = "auto", samples: int | None = None,
                      optimizer: str = "adam", lr: float = 0.1, steps: int = 150, seed: int = 0, title: str = "",
                      frames: int = 40):
    """A validated 2D :class:`~divlab.Scenario` from the Fit 2D widgets (``ValueError`` with the
    field path). ``samples`` is dropped when every fit uses quadrature."""
    from ..scenario import Scenario, SAMPLE_FITTABLE

    model: dict = {"family": family}
    if family == "mixture":
        model["components"] = int(components or 2)
    if init:
        model["init"] = {k: float(v) for k, v in init.items()}
    data = {"version": 1, "title": title, "target": target_spec, "model": model,
            "divergences": [{"key": k, "params": dict(p)} for k, p in choices], "estimator": estimator,
            "optimizer": {"name": optimizer, "lr": float(lr), "steps": int(steps)}, "seed": int(seed),
            "view": {"frames": int(frames), "show_loss": True}}
    sampled = estimator in ("mc", "samples") or (estimator == "auto" and any(k in SAMPLE_FITTABLE for k, _ in choices))
    if samples is not None and sampled:
        data["samples"] = int(samples)
    return Scenario.from_dict(data)


def main_param(key: str):
    """The divergence parameter the page lets a visitor set (the first numeric one without fixed
    choices: α, λ, ε, bandwidth ...); ``None`` when there is none. Others keep their defaults."""
    from ..divergences.registry import get

    for p in get(key).params:
        if p.kind == "number" and not p.choices:
            return p
    return None


def parse_choices(key: str, text: Any) -> list[tuple[str, dict]]:
    """(key, params) per value typed for the divergence's main parameter (comma-separated);
    :class:`InputError` naming the divergence, the parameter and the bad value."""
    from ..divergences.registry import get

    spec = get(key)
    p = main_param(key)
    if p is None:
        return [(key, {})]
    label = f"{spec.name}: {p.label or p.name}"
    parts = [t for t in str(text or "").replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    if not parts:
        raise InputError(f"{label}: enter at least one value (e.g. {float(p.default):g})")
    out = []
    for t in parts:
        try:
            v = float(t)
        except ValueError:
            raise InputError(f"{label}: {t.strip()!r} is not a number") from None
        try:
            spec.resolve_params({p.name: v})
        except ValueError as exc:
            raise InputError(f"{label}: {str(exc).split(': ', 1)[-1]}") from None
        out.append((key, {p.name: v}))
    return out


def widget_state(sc) -> dict:
    """Fit 2D widget values (session keys, prefix ``fit2d_``) that show a 2D scenario ``sc``."""
    init = dict(sc.model.init or {})
    fam = sc.model.family if sc.model.family in FAMILIES_2D else "mvn"
    lx = init.get("loc_x", init.get("loc_x1", 0.0))
    ly = init.get("loc_y", init.get("loc_y1", 0.0))
    scale = init.get("scale_x", init.get("scale_x1", 1.0))
    out = {"fit2d_family": fam, "fit2d_components": int(sc.model.components or 2), "fit2d_start_x": float(lx),
           "fit2d_start_y": float(ly), "fit2d_start_scale": float(scale), "fit2d_estimator": sc.estimator,
           "fit2d_samples": int(sc.samples or 128), "fit2d_optimizer": sc.optimizer.name,
           "fit2d_lr": float(sc.optimizer.lr), "fit2d_steps": int(sc.optimizer.steps),
           "fit2d_divs": list(dict.fromkeys(d.key for d in sc.divergences)),
           "fit2d_layout": "one panel per divergence" if len(sc.divergences) > 3 else "overlay"}
    for d in sc.divergences:
        p = main_param(d.key)
        if p is not None:
            key = f"fit2d_{d.key}_values"
            v = d.params.get(p.name, p.default)
            out[key] = (out[key] + ", " if key in out else "") + f"{float(v):g}"
    rows = table_from_spec(sc.target)
    shape = next((name for name in SHAPES if _same_shape(name, sc.target)), None)
    if shape is not None:
        out["fit2d_target_mode"] = "named shape"
        out["fit2d_shape"] = shape
        out.update({f"fit2d_shape_{shape}_{k}": float(v) for k, v in _shape_params(shape, sc.target).items()})
    elif rows is not None:
        out["fit2d_target_mode"] = "component table"
        out["fit2d_rows"] = rows
    else:
        out["fit2d_target_mode"] = "the scenario's target"
    return out


_SHAPE_KEYS = {"banana": {"curvature": "curvature", "width": "scale2"}, "ring": {"radius": "radius", "width": "width"},
               "two moons": {"noise": "noise"}}


def _shape_params(name: str, spec: dict) -> dict:
    return {k: spec[v] for k, v in _SHAPE_KEYS.get(name, {}).items()}


def _same_shape(name: str, spec: dict) -> bool:
    """Whether ``spec`` is exactly the named shape with some parameters (three-blob style mixtures
    are shown in the component table instead)."""
    if name not in _SHAPE_KEYS or not isinstance(spec, dict):
        return False
    try:
        return shape_spec(name, **_shape_params(name, spec)) == spec
    except (InputError, KeyError):
        return False


def _look_for(results) -> list[str]:
    from ..divergences.registry import get

    seen, out = set(), []
    for r in results:
        if r.divergence not in seen:
            seen.add(r.divergence)
            spec = get(r.divergence)
            direction = spec.direction.split(" (p is the target")[0]
            out.append(f"**{spec.name}** ({direction}): {spec.look_for}")
    return out


def _modes(target, results):
    from .. import app_support as sup

    if not getattr(target, "has_density", True):
        return None  # mode metrics need the target's modes (a density)
    try:
        return sup.mode_rows(target, results)
    except (ValueError, TypeError, RuntimeError):
        return None


def fit2d_view(scenario_json: str, layout: str = "overlay", callback=None) -> dict:
    """Everything Fit 2D shows after Run: the animation (target log-density contours with each
    model's 1σ/2σ ellipses over the steps, loss curves; or one panel per divergence), the final
    table (direction, parameters, value in the divergence's unit, status, estimator), mode metrics where divlab has
    them, and what to look for per divergence."""
    from .. import app_support as sup
    from ..viz.fit2d import fit2d_animation, fit2d_small_multiples
    from ..viz.shown import figure_spec

    if layout not in ("overlay", "panels"):
        raise ValueError(f"fit2d_view(layout={layout!r}): layout must be 'overlay' or 'panels'")
    sc, results = sup.run_scenario_json(scenario_json, callback)
    target = sc.build_target()
    frames = min(sc.view.frames, 60)
    if layout == "panels":
        fig = fit2d_small_multiples(target, results, n_frames=frames, cols=min(3, len(results)))
    else:
        fig = fit2d_animation(target, results, n_frames=frames, show_loss=sc.view.show_loss)
    rows = sup.fit_rows(results)  # each final value in its divergence's unit (the registry's)
    # the final models (small specs), for the transport map the page draws on request (entropic_map)
    from .entropic_map import fit2d_final_models

    return {"scenario": scenario_json, "figure": figure_spec(fig), "table": rows,
            "modes": _modes(target, results), "look_for": _look_for(results),
            "final_models": fit2d_final_models(results)}


def fit2d_downloads(scenario_json: str) -> dict:
    """The downloads of a 2D fit: offline HTML animation, GIF and PNG (Pillow) and the CSV of the
    trajectories, as bytes."""
    import os
    import tempfile

    from .. import app_support as sup
    from .. import export

    sc, results = sup.run_scenario_json(scenario_json)
    target = sc.build_target()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("html", "gif", "png", "csv"):
            path = os.path.join(tmp, f"fit.{fmt}")
            export.write(path, sc, target, results, fmt=fmt)
            with open(path, "rb") as fh:
                out[fmt] = fh.read()
    return out


def rows_key(rows) -> str:
    """A short stable key for a component table's contents (the editor is recreated when the rows
    are replaced from outside, e.g. by a lesson)."""
    import hashlib

    return hashlib.sha1(_json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:10]


def spec_json(spec: dict) -> str:
    """Canonical JSON of a spec (the cache key of the pages)."""
    return _json.dumps(spec, sort_keys=True, separators=(",", ":"))
