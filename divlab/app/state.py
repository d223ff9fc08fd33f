"""The shared state of the app layer: the session's scenario (URL, share link, upload, export), the Fit 1D component table, divergence choices, lessons, drawing a target, and formatting values. No Streamlit import."""

from __future__ import annotations

import math
from dataclasses import dataclass as _dataclass
from typing import Any, Sequence

import numpy as np

from ..distributions import Distribution, Laplace, Mixture, Normal, StudentT, Uniform
from ..divergences.registry import DivergenceSpec, Param, catalogue, get, with_unit
from ..fit import FitResult, fit
from ..scenario import Scenario, presets


COLUMNS = ("weight", "family", "loc", "scale", "df")

FAMILIES = ("normal", "student_t", "laplace", "uniform")

#: the default target: the bimodal mixture of DESIGN.md
DEFAULT_COMPONENTS = (
    {"weight": 0.5, "family": "normal", "loc": -3.0, "scale": 1.0, "df": None},
    {"weight": 0.5, "family": "normal", "loc": 3.0, "scale": 1.0, "df": None},
)

DEFAULT_DIVERGENCES = ("kl", "reverse_kl")

#: divergences the fitting page does not offer (the generic f-divergence needs a user function)
EXCLUDED = ("f_divergence",)


class ComponentError(ValueError):
    """A row of the component table is invalid; the message names the row and the column."""


def table_records(table: Any) -> list[dict]:
    """Rows of a component table as a list of dicts (accepts a DataFrame or a list of dicts)."""
    if table is None:
        return []
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return [dict(r) for r in table.to_dict(orient="records")]
    if isinstance(table, dict):
        raise ComponentError("the component table must be a list of rows, not a single dict")
    if isinstance(table, (str, bytes)) or not hasattr(table, "__iter__"):  # e.g. a tampered URL/session value
        raise ComponentError(f"the component table must be a list of rows, got {type(table).__name__}")
    rows = list(table)
    for i, r in enumerate(rows, start=1):
        if not isinstance(r, dict):
            raise ComponentError(f"row {i}: expected a row with columns {', '.join(COLUMNS)}, got {r!r}")
    return [dict(r) for r in rows]


def _is_blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    try:
        return bool(math.isnan(v))
    except TypeError:
        return False


def _number(row: int, name: str, v: Any) -> float:
    if _is_blank(v):
        raise ComponentError(f"row {row}: {name} is blank; enter a number")
    if isinstance(v, bool):
        raise ComponentError(f"row {row}: {name} must be a number, got {v!r}")
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise ComponentError(f"row {row}: {name} must be a number, got {v!r}") from None
    if math.isnan(x):
        raise ComponentError(f"row {row}: {name} must be a number, got NaN")
    if not math.isfinite(x):
        raise ComponentError(f"row {row}: {name} must be finite, got {x!r}")
    return x


def parse_components(table: Any) -> list[dict]:
    """Validate a component table; return clean rows ``{weight, family, loc, scale, df}`` (floats,
    ``df`` None except for ``student_t``). Rows left entirely blank (a row just added in the
    editor) are skipped. Raises :class:`ComponentError` on the first problem, with 1-based row
    numbers as shown in the editor."""
    rows = table_records(table)
    clean = []
    for i, raw in enumerate(rows, start=1):
        if all(_is_blank(raw.get(c)) for c in COLUMNS):
            continue
        unknown = sorted(set(raw) - set(COLUMNS) - {"_index"})
        if unknown:
            raise ComponentError(f"row {i}: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
        fam = raw.get("family")
        if _is_blank(fam):
            raise ComponentError(f"row {i}: family is blank; choose one of {', '.join(FAMILIES)}")
        fam = str(fam).strip().lower()
        if fam not in FAMILIES:
            raise ComponentError(f"row {i}: family must be one of {', '.join(FAMILIES)}, got {raw.get('family')!r}")
        weight = _number(i, "weight", raw.get("weight"))
        if weight < 0:
            raise ComponentError(f"row {i}: weight must be >= 0, got {weight!r}")
        loc = _number(i, "loc", raw.get("loc"))
        scale = _number(i, "scale", raw.get("scale"))
        if scale <= 0:
            raise ComponentError(f"row {i}: scale must be > 0, got {scale!r}")
        df = None
        if fam == "student_t":
            if _is_blank(raw.get("df")):
                raise ComponentError(f"row {i}: df (degrees of freedom) is required for student_t; enter a number > 0")
            df = _number(i, "df", raw.get("df"))
            if df <= 0:
                raise ComponentError(f"row {i}: df must be > 0, got {df!r}")
        clean.append({"weight": weight, "family": fam, "loc": loc, "scale": scale, "df": df})
    if not clean:
        raise ComponentError("the component table is empty: add at least one component")
    if sum(r["weight"] for r in clean) <= 0:
        raise ComponentError("the weights sum to 0: give at least one component a weight > 0")
    return clean


def _component(row: dict) -> Distribution:
    fam, loc, scale = row["family"], row["loc"], row["scale"]
    if fam == "normal":
        return Normal(loc, scale)
    if fam == "student_t":
        return StudentT(row["df"], loc, scale)
    if fam == "laplace":
        return Laplace(loc, scale)
    return Uniform(loc - scale, loc + scale)


def mixture_from_rows(table: Any) -> Mixture:
    """The target mixture described by a component table (validated with :func:`parse_components`)."""
    rows = parse_components(table)
    comps = []
    for i, r in enumerate(rows, start=1):
        try:
            comps.append(_component(r))
        except ValueError as exc:  # a constraint divlab checks beyond the table's own checks
            raise ComponentError(f"row {i}: {exc}") from None
    return Mixture(comps, weights=[r["weight"] for r in rows])


def fittable_specs() -> list[DivergenceSpec]:
    """Divergences the 1D fitting engine can minimize: density divergences (``from_logs``) whose
    parameters are all numbers (the generic f-divergence is left out)."""
    return [s for s in catalogue()
            if s.from_logs is not None and s.key not in EXCLUDED and all(p.kind == "number" for p in s.params)]


def slider_range(param: Param) -> tuple[float, float, float, float]:
    """(min, max, default, step) for a slider over ``param``: infinite ends are clipped to a window
    around the default, open ends are nudged one step inside, the default is clamped into range."""
    lo = param.low if math.isfinite(param.low) else min(param.default, 0.0) - 5.0
    hi = param.high if math.isfinite(param.high) else max(param.default, 0.0) + 5.0
    if param.integer:
        step = 1.0
        lo, hi = math.ceil(lo), math.floor(hi)
    else:
        step = 0.01 if hi - lo <= 5 else 0.05
    if param.low_open and math.isfinite(param.low):
        lo += step
    if param.high_open and math.isfinite(param.high):
        hi -= step
    lo, hi = round(lo, 10), round(hi, 10)
    default = min(max(float(param.default), lo), hi)
    return float(lo), float(hi), default, step


def run_fits(components: Any, choices: Sequence[tuple[str, dict]], init: dict, steps: int, lr: float,
             seed: int | None = 0) -> list[FitResult]:
    """Fit a Normal to the target table with each ``(divergence key, params)`` of ``choices``,
    all from the same ``init`` {"loc", "scale"}. Pure: the page caches it on its arguments."""
    target = mixture_from_rows(components)
    if not choices:
        raise ValueError("run_fits(choices=[]): choose at least one divergence")
    return [fit(target, family="normal", divergence=key, params=dict(params), steps=steps, lr=lr,
                init=dict(init), seed=seed) for key, params in choices]


def _reason(status: str) -> str:
    return status.split(":", 1)[1].strip() if status.startswith("diverged:") else status


def format_value(value: float, reason: str = "", *, unit: str) -> str:
    """``D(p‖q) = 0.4892 nats`` for ``unit`` "nats" (the divergence's :attr:`DivergenceSpec.unit`),
    ``D(p‖q) = 0.25`` for a dimensionless one (H², TV, χ², α, Tsallis); an infinite value reads
    ``D(p‖q) = ∞ (reason)``; NaN is never shown as a number."""
    value = float(value)
    if math.isinf(value):
        sign = "" if value > 0 else "−"
        return f"D(p‖q) = {sign}∞" + (f" ({reason})" if reason else "")
    if math.isnan(value):
        return "D(p‖q) undefined" + (f" ({reason})" if reason else "")
    return "D(p‖q) = " + with_unit(f"{value:.6g}", unit)


def format_result(r: FitResult) -> str:
    """A fit's final value with its divergence's unit and, when infinite, the reason."""
    return format_value(r.final_loss, _reason(r.status), unit=get(r.divergence).unit)


def _direction(spec: DivergenceSpec) -> str:
    """The entry's direction in words, without the reminder that every entry shares."""
    return spec.direction.replace(" (p is the target, q the model)", "").strip()


def result_rows(results: Sequence[FitResult]) -> list[dict]:
    """One row per fit for the final table: divergence with its direction in words, final loc and
    scale, the final value in the divergence's unit (∞ with the reason when infinite) and the status."""
    rows = []
    for r in results:
        spec = get(r.divergence)
        rows.append({
            "divergence": f"{r.label}: {_direction(spec)}",
            "loc": float(r.params["loc"]),
            "scale": float(r.params["scale"]),
            "final value": format_result(r),
            "status": r.status,
        })
    return rows

# =============================================================================================
# the shared scenario state (sidebar: import, export, share link; pages: read and update it)
# =============================================================================================
#
# The app keeps one canonical :class:`~divlab.scenario.Scenario` per browser session (the last
# good one). Pages read it to seed their widgets and write a new one when their widgets change.
# Everything below is plain Python: the pages pass widget values in and get scenarios, rows and
# messages back.


#: session-state keys shared by app.py and the pages
SCENARIO_KEY = "scenario"          # the current (last good) Scenario

VERSION_KEY = "scenario_version"   # bumped when a scenario is loaded from outside (URL, upload, lesson)

URL_PARAM = "s"                    # the query parameter that holds the scenario

#: page files by the short names used in lessons (``preset["page"]``) and links
PAGE_FILES = {
    "home": "pages/home.py", "fit_1d": "pages/fit_1d.py", "fit_2d": "pages/fit_2d.py", "race": "pages/race.py",
    "families": "pages/families.py", "landscape": "pages/landscape.py", "flows": "pages/flows.py",
    "calculator": "pages/calculator.py", "theory": "pages/theory.py", "discrete": "pages/discrete.py",
    "transport": "pages/transport.py",
}

PAGE_TITLES = {
    "home": "Home", "fit_1d": "Fit 1D", "fit_2d": "Fit 2D", "race": "Race", "families": "Families",
    "landscape": "Landscape", "flows": "Flows", "calculator": "Calculator", "theory": "Theory", "discrete": "Discrete",
    "transport": "Transport",
}

DEFAULT_LESSON = "two_equal_modes"


def default_scenario() -> Scenario:
    """The scenario a new session starts with: the two-equal-modes lesson (forward vs reverse KL
    on the bimodal target of DESIGN.md), or the same built by hand if the lesson is missing."""
    for p in presets():
        if p["id"] == DEFAULT_LESSON:
            return p["scenario"]
    return build_scenario(spec_from_components(DEFAULT_COMPONENTS), [(k, {}) for k in DEFAULT_DIVERGENCES],
                          {"loc": -2.0, "scale": 1.0})


def scenario_from_upload(data: Any, name: str = "uploaded file") -> Scenario:
    """A scenario from the bytes (or text) of an uploaded JSON file; ``ValueError`` with one line
    naming the file and what is wrong (size, depth, JSON syntax, field path)."""
    if data is None:
        raise ValueError(f"{name}: no file")
    try:
        return Scenario.from_json(data)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def scenario_from_url(value: Any) -> Scenario:
    """The scenario held by the ``?s=`` query parameter (a list takes its last value);
    ``ValueError`` saying the link is damaged and why."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    try:
        return Scenario.from_url_param(value)
    except ValueError as exc:
        raise ValueError(f"The shared link is damaged or was edited, so it was ignored: {exc}") from None


@_dataclass


class Resolved:
    """What app.py should do with the URL on this run: the scenario to use, whether it was just
    loaded from the URL (bump the version so pages reseed their widgets) and a message to show."""

    scenario: Scenario
    loaded: bool
    error: str | None = None


def resolve_url_state(url_value: Any, current: Scenario | None, current_param: str | None) -> Resolved:
    """Decide the session's scenario from the URL. A new session (``current`` None) opens the
    link's scenario, or the default; a link that differs from the session's own state (the user
    pasted another one) is loaded; a damaged link keeps the last good scenario (or the default)
    and returns the reason."""
    if isinstance(url_value, (list, tuple)):
        url_value = url_value[-1] if url_value else None
    base = current if current is not None else default_scenario()
    if not url_value:
        return Resolved(base, loaded=current is None)
    if current is not None and url_value == current_param:
        return Resolved(current, loaded=False)
    try:
        sc = scenario_from_url(url_value)
    except ValueError as exc:
        return Resolved(base, loaded=current is None, error=str(exc))
    return Resolved(sc, loaded=True)


def export_json(sc: Scenario) -> str:
    """The scenario as the JSON file the sidebar downloads (import reads it back exactly)."""
    return sc.to_json()


def share_query(sc: Scenario, lesson: str | None = None) -> str:
    """The query string of a share link: ``?s=<urlsafe base64 of the compressed JSON>``, and
    ``&lesson=<id>`` while a lesson is open, so the link opens the lesson view (its text and the
    chart first) and not only its scenario."""
    q = f"?{URL_PARAM}={sc.to_url_param()}"
    return q + (f"&{LESSON_PARAM}={lesson}" if lesson else "")

#: the query parameter naming the open lesson
LESSON_PARAM = "lesson"


def lesson_from_url(lesson_id, sc: Scenario) -> dict | None:
    """The lesson card a link names (``?lesson=<id>``), when it is a known lesson whose target is
    the link's scenario's target (a link edited to another target is no longer that lesson)."""
    if isinstance(lesson_id, (list, tuple)):
        lesson_id = lesson_id[-1] if lesson_id else None
    if not isinstance(lesson_id, str) or not lesson_id or len(lesson_id) > 100:
        return None
    for card in lesson_cards():
        if card["id"] == lesson_id and card["scenario"].target == sc.target:
            return card
    return None


def scenario_dict(sc: Scenario) -> dict:
    return sc.to_dict()


def init_of(sc: Scenario) -> dict:
    """The model's starting parameters as a plain dict (empty when the scenario leaves it out)."""
    init = sc.model.init
    if init is None:
        return {}
    if hasattr(init, "model_dump"):
        return dict(init.model_dump())
    return dict(init)


def build_scenario(target_spec: dict, divergences: Sequence[tuple[str, dict]], init: dict | None, *,
                   family: str = "normal", steps: int = 300, lr: float = 0.05, optimizer: str = "adam",
                   estimator: str = "quadrature", seed: int = 0, title: str = "", frames: int = 60,
                   base: Scenario | None = None) -> Scenario:
    """A validated scenario from page widget values (``ValueError`` with the field path).
    Fields the page does not edit (view, samples, mixture components) come from ``base``."""
    data = base.to_dict() if base is not None else {}
    model = {"family": family}
    if init:
        model["init"] = {k: float(v) for k, v in init.items()}
    if base is not None and family == base.model.family and getattr(base.model, "components", None) is not None:
        model["components"] = base.model.components
    data.update({
        "version": 1, "title": title if title or base is None else base.title, "target": target_spec, "model": model,
        "divergences": [{"key": k, "params": dict(p)} for k, p in divergences],
        "estimator": estimator, "optimizer": {"name": optimizer, "lr": float(lr), "steps": int(steps)},
        "seed": int(seed),
    })
    data.setdefault("view", {"frames": frames, "show_loss": True})
    from .. import scenario as _scenario

    sampled = set(getattr(_scenario, "SAMPLE_FITTABLE", ()))
    if estimator == "quadrature" or (estimator == "auto" and not any(k in sampled for k, _ in divergences)):
        data.pop("samples", None)  # only the mc and samples estimators use it
    return Scenario.from_dict(data)

# -- component table <-> distribution spec ------------------------------------------------------


def spec_from_components(table: Any) -> dict:
    """The JSON spec of the target described by a component table (validated)."""
    return mixture_from_rows(table).to_spec()


def _row_from_spec(spec: dict) -> dict | None:
    t = spec.get("type")
    if t == "normal":
        return {"weight": 1.0, "family": "normal", "loc": float(spec["loc"]), "scale": float(spec["scale"]), "df": None}
    if t == "laplace":
        return {"weight": 1.0, "family": "laplace", "loc": float(spec["loc"]), "scale": float(spec["scale"]), "df": None}
    if t == "student_t":
        return {"weight": 1.0, "family": "student_t", "loc": float(spec.get("loc", 0.0)),
                "scale": float(spec.get("scale", 1.0)), "df": float(spec["df"])}
    if t == "uniform":
        lo, hi = spec.get("low"), spec.get("high")
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            return {"weight": 1.0, "family": "uniform", "loc": (lo + hi) / 2, "scale": (hi - lo) / 2, "df": None}
    return None


def components_from_spec(spec: dict) -> list[dict] | None:
    """Component-table rows for a 1D target spec, or None when the target is not a mixture of
    table families (a drawn grid density, a 2D shape, a point cloud)."""
    if not isinstance(spec, dict):
        return None
    if spec.get("type") == "mixture":
        comps, weights = spec.get("components") or [], spec.get("weights")
        rows = []
        for i, c in enumerate(comps):
            r = _row_from_spec(c) if isinstance(c, dict) else None
            if r is None:
                return None
            r["weight"] = float(weights[i]) if weights is not None else 1.0
            rows.append(r)
        return rows or None
    r = _row_from_spec(spec)
    return [r] if r is not None else None


def target_kind(spec: dict) -> str:
    """How a page can show a target: "table" (1D mixture of table families), "drawn" (1D grid
    density), "1d" (another 1D target), "2d"."""
    from ..distributions import from_spec

    if components_from_spec(spec) is not None:
        return "table"
    d = from_spec(spec)
    if d.dim != 1:
        return "2d"
    return "drawn" if spec.get("type") == "grid" else "1d"

# -- divergence choices as text ("0.1, 0.5, 0.9") -------------------------------------------------


def format_param_values(values: Sequence[float]) -> str:
    return ", ".join(f"{float(v):g}" for v in values)


def parse_param_values(spec: DivergenceSpec, param: Param, text: Any) -> list[float]:
    """The values typed for a divergence parameter (comma- or space-separated), each checked
    against the registry; ``ValueError`` naming the divergence, the parameter and the bad value."""
    label = f"{spec.name}: {param.label or param.name}"
    if text is None or not str(text).strip():
        raise ValueError(f"{label}: enter at least one value (e.g. {param.default:g})")
    parts = [t for t in str(text).replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    out = []
    for t in parts:
        try:
            v = float(t)
        except ValueError:
            raise ValueError(f"{label}: {t.strip()!r} is not a number") from None
        if not math.isfinite(v):
            raise ValueError(f"{label}: {t.strip()!r} is not a finite number")
        try:
            spec.resolve_params({param.name: v})
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        out.append(v)
    return out


def expand_choices(spec: DivergenceSpec, values: dict[str, list[float]]) -> list[tuple[str, dict]]:
    """One (key, params) per value of the divergence's single parameter (the registry's
    fittable divergences have at most one); no parameter: one choice with defaults."""
    if not spec.params:
        return [(spec.key, {})]
    p = spec.params[0]
    vals = values.get(p.name) or [float(p.default)]
    return [(spec.key, {p.name: float(v)}) for v in vals]


def choices_by_key(sc: Scenario) -> dict[str, dict[str, list[float]]]:
    """The scenario's divergence choices grouped by key: {key: {param: [values...]}} (order kept)."""
    out: dict[str, dict[str, list[float]]] = {}
    for d in sc.divergences:
        entry = out.setdefault(d.key, {})
        for name, v in d.params.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                entry.setdefault(name, []).append(float(v))
    return out

# -- lessons -------------------------------------------------------------------------------------

#: lessons that also teach on another page than the one they name: {lesson id: page}
LESSON_ALSO = {
    "alpha_continuum": "families", "renyi_order": "families", "gradient_weights": "theory",
    "separated_modes": "landscape", "two_equal_modes": "landscape", "symmetric_divergences": "race",
    "distillation_failure_modes": "race", "disjoint_supports": "calculator", "heavy_tails": "calculator",
    "unequal_weights": "theory",
}


def lesson_cards(available: Sequence[str] | None = None) -> list[dict]:
    """The lesson gallery: id, title, one sentence (the first of ``look_for``), the page it opens
    on (a key of :data:`PAGE_FILES`; None when that page is not in ``available``), a second
    page where it also teaches (``also``, or None), its dimension and its scenario."""
    avail = set(PAGE_FILES if available is None else available)
    out = []
    for p in presets():
        page = p["page"] if p["page"] in PAGE_FILES else "fit_1d"
        also = LESSON_ALSO.get(p["id"])
        out.append({"id": p["id"], "title": p["title"], "sentence": first_sentence(p["look_for"]),
                    "look_for": p["look_for"], "page": page if page in avail else None,
                    "wanted_page": page, "also": also if also in avail else None,
                    "dim": scenario_dim(p["scenario"]), "scenario": p["scenario"]})
    return out


def scenario_dim(sc: Scenario) -> int:
    """The dimension of a scenario's target (1 or 2)."""
    dim = getattr(sc, "dim", None)
    return int(dim) if isinstance(dim, int) else int(sc.build_target().dim)


def first_sentence(text: str, limit: int = 220) -> str:
    """The first sentence of a paragraph (cut at ``limit`` characters with an ellipsis)."""
    text = " ".join(str(text).split())
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " ") and i > 10:
            text = text[: i + 1]
            break
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

# =============================================================================================
# drawing a 1D target: a freehand curve on a canvas -> a smoothed, normalized GridDensity
# =============================================================================================


class DrawingError(ValueError):
    """The drawing cannot be turned into a density; the message says what to draw instead."""

#: smallest horizontal extent of a drawing, as a fraction of the canvas width
MIN_SPAN = 0.03

#: largest fraction of the canvas that may be inked before the drawing counts as "filled"
MAX_INK = 0.5


def canvas_points(json_data: Any) -> list[list[tuple[float, float]]]:
    """The strokes of a drawable-canvas result (fabric.js JSON) as lists of (x, y) pixels, in
    drawing order. Path commands (M, L, Q, C) give their end points; lines and other shapes are
    ignored except "line" (its two ends)."""
    strokes = []
    if not isinstance(json_data, dict) or not isinstance(json_data.get("objects") or [], list):
        return strokes  # a tampered component value: nothing drawn
    for obj in json_data.get("objects") or []:
        if not isinstance(obj, dict):
            continue
        pts: list[tuple[float, float]] = []
        if obj.get("type") == "path":
            path = obj.get("path")
            for cmd in path if isinstance(path, list) else []:  # a tampered value may be any JSON
                nums = [c for c in cmd[1:] if isinstance(c, (int, float))] if isinstance(cmd, list) else []
                if len(nums) >= 2 and all(math.isfinite(v) for v in nums[-2:]):
                    pts.append((float(nums[-2]), float(nums[-1])))
        elif obj.get("type") == "line":
            left, top = obj.get("left", 0.0), obj.get("top", 0.0)
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (left, top)):
                continue
            left, top = float(left), float(top)
            for a, b in (("x1", "y1"), ("x2", "y2")):
                if isinstance(obj.get(a), (int, float)) and isinstance(obj.get(b), (int, float)):
                    pts.append((left + float(obj[a]), top + float(obj[b])))
        if pts:
            strokes.append(pts)
    return strokes


def ink_fraction(image: Any, background_threshold: float = 128.0) -> float:
    """Fraction of canvas pixels that are inked (dark on the white background) in an RGBA image
    array of shape (H, W, 4); 0 for no image."""
    if image is None:
        return 0.0
    arr = np.asarray(image, dtype=float)
    if arr.ndim != 3 or arr.shape[2] < 3 or arr.size == 0:
        return 0.0
    dark = arr[:, :, :3].mean(axis=2) < background_threshold
    if arr.shape[2] == 4:
        dark &= arr[:, :, 3] > 0
    return float(dark.mean())


def _densify(pts: list[tuple[float, float]], step: float = 1.0) -> np.ndarray:
    out = [pts[0]]
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        k = max(1, int(math.ceil(max(abs(x1 - x0), abs(y1 - y0)) / step)))
        for j in range(1, k + 1):
            t = j / k
            out.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    return np.asarray(out, dtype=float)

#: a drawn target's tails: the weight of a broad Normal under the drawing (default), so every
#: divergence is finite (reverse KL, χ²(q‖p) and α < 0 are +∞ when the target p is 0 where q is not)
DEFAULT_TAILS = 0.02


def with_tails(spec: dict, weight: float = DEFAULT_TAILS) -> dict:
    """A drawn (or painted) density spec with tails: (1 − w)·drawing + w·(a broad Normal centred on
    the drawing's box with half its width as scale, in 2D per axis). A drawing is 0 outside its
    box, where every model has mass, so reverse KL was +∞ at every step and its curve never moved;
    with w > 0 it is finite and the fit moves. ``weight`` 0 returns the drawing unchanged."""
    w = float(weight)
    if not (math.isfinite(w) and 0.0 <= w < 1.0):
        raise ValueError(f"with_tails(weight={weight!r}): the tail weight must be in [0, 1)")
    if w == 0.0:
        return spec
    if spec.get("type") != "grid":
        raise ValueError(f"with_tails(spec type={spec.get('type')!r}): only drawn densities (grid) get tails")
    x = spec["x"]
    if "y" in spec or isinstance(x[0], (list, tuple)):  # 2D: x and y axes
        xs, ys = (spec["x"], spec["y"]) if "y" in spec else x
        c = [0.5 * (xs[0] + xs[-1]), 0.5 * (ys[0] + ys[-1])]
        sx, sy = 0.5 * (xs[-1] - xs[0]), 0.5 * (ys[-1] - ys[0])
        broad = {"type": "mvn", "mean": c, "cov": [[sx * sx, 0.0], [0.0, sy * sy]]}
    else:
        broad = {"type": "normal", "loc": 0.5 * (x[0] + x[-1]), "scale": 0.5 * (x[-1] - x[0])}
    return {"type": "mixture", "weights": [1.0 - w, w], "components": [spec, broad]}


def density_from_strokes(strokes: Sequence[Sequence[tuple[float, float]]], width: float, height: float,
                         x_range: tuple[float, float] = (-6.0, 6.0), *, n: int = 201, smooth: float = 0.02,
                         ink: float = 0.0) -> dict:
    """Turn a freehand drawing into a 1D GridDensity spec ``{"type": "grid", "x", "values"}``.

    The height of the drawing above the canvas's bottom edge at each horizontal pixel (the
    highest stroke point there; straight segments between recorded points) is the density up to
    a constant; columns with no stroke are 0. It is smoothed with a Gaussian of width
    ``smooth`` × the canvas width, mapped to ``x_range`` on ``n`` points and normalized by
    GridDensity. Raises :class:`DrawingError` for an empty canvas, a single dot (narrower than
    :data:`MIN_SPAN` of the width), a curve lying on the bottom edge, or a canvas more than
    :data:`MAX_INK` inked (``ink``, from :func:`ink_fraction`)."""
    try:
        width, height = float(width), float(height)
        lo, hi = float(x_range[0]), float(x_range[1])
    except (TypeError, ValueError, IndexError):
        raise DrawingError(f"x range must be two numbers, got {x_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise DrawingError(f"x range: the right end must be larger than the left end (got {lo:g} .. {hi:g})")
    if width <= 0 or height <= 0:
        raise DrawingError(f"canvas size must be positive (got {width:g} × {height:g})")
    if ink > MAX_INK:
        raise DrawingError(f"The canvas is {100 * ink:.0f}% filled: a density is one curve, not a painted area. "
                           "Clear it (bin icon) and draw a single curve from left to right.")
    # only points on the canvas count: a tampered stroke far outside it must not be densified
    # into billions of points
    strokes = [[(min(max(float(x), 0.0), width), min(max(float(y), 0.0), height)) for x, y in s
                if math.isfinite(x) and math.isfinite(y)] for s in strokes]
    strokes = [s for s in strokes if len(s)]
    if not strokes:
        raise DrawingError("The canvas is empty: draw the target density as one curve from left to right.")
    pts = np.concatenate([_densify(list(s), step=0.25) for s in strokes])  # several points per pixel column
    pts = pts[np.isfinite(pts).all(axis=1)]
    xs = np.clip(pts[:, 0], 0.0, width)
    hs = np.clip((height - pts[:, 1]) / height, 0.0, 1.0)
    if xs.max() - xs.min() < MIN_SPAN * width:
        raise DrawingError("That is a single dot: draw a curve across the canvas (its height is the density).")
    cols = int(math.ceil(width))
    col = np.minimum((xs / width * cols).astype(int), cols - 1)
    prof = np.zeros(cols)
    np.maximum.at(prof, col, hs)
    if prof.max() <= 0.01:
        raise DrawingError("The curve lies on the bottom edge, where the density is 0: draw it higher.")
    sigma = max(smooth * cols, 0.0)
    if sigma > 0:
        k = np.arange(-int(3 * sigma) - 1, int(3 * sigma) + 2)
        kern = np.exp(-0.5 * (k / sigma) ** 2)
        prof = np.convolve(prof, kern / kern.sum(), mode="same")
    centers = (np.arange(cols) + 0.5) / cols
    x = np.linspace(lo, hi, int(n))
    vals = np.interp((x - lo) / (hi - lo), centers, prof, left=prof[0], right=prof[-1])
    vals = np.clip(vals, 0.0, None)
    total = float(np.trapezoid(vals, x)) if hasattr(np, "trapezoid") else float(np.trapz(vals, x))
    if not total > 0:
        raise DrawingError("The curve lies on the bottom edge, where the density is 0: draw it higher.")
    vals = vals / total
    return {"type": "grid", "x": [round(float(v), 6) for v in x], "values": [float(f"{v:.6g}") for v in vals]}

# -- session helpers (the session state is any mutable mapping: st.session_state or a dict) -----

#: widget-key prefixes of the pages; their values are kept across page switches
PERSIST_PREFIXES = ("fit1d_", "race_", "fam_", "land_", "calc_", "theory_", "home_", "fit2d_", "flows_", "disc_",
                    "transport_")

#: widget kinds that cannot be assigned through session state (buttons, editors, uploads, canvas)
NO_PERSIST_SUFFIXES = ("_btn", "_table", "_upload", "_canvas", "_editor")


def persist_key(key: Any) -> bool:
    """Whether app.py re-assigns this session key on every run to keep a page's widget value
    when the user switches pages (buttons, data editors, uploads and canvases cannot be)."""
    return (isinstance(key, str) and key.startswith(PERSIST_PREFIXES) and not key.endswith(NO_PERSIST_SUFFIXES)
            and "_table_" not in key and "_canvas_" not in key)


def set_scenario(state, sc: Scenario, source: str = "default") -> None:
    """Make ``sc`` the session's scenario, loaded from outside (``source``: "url", "upload",
    "lesson", or "default" for a new session): the version counter moves on so every page reseeds
    its widgets from it, and pages run it at once unless it is the default."""
    state[SCENARIO_KEY] = sc
    state["scenario_source"] = source
    state[VERSION_KEY] = int(state.get(VERSION_KEY, 0)) + 1


def update_scenario(state, sc: Scenario) -> None:
    """Record the scenario a page built from its own widgets (no reseeding)."""
    state[SCENARIO_KEY] = sc


def needs_seed(state, page: str) -> bool:
    """True once per scenario version for ``page`` (then it copies the scenario into its widgets)."""
    ver = int(state.get(VERSION_KEY, 0))
    key = f"_seeded_{page}"
    if state.get(key) != ver:
        state[key] = ver
        return True
    return False


def export_name(sc: Scenario) -> str:
    """A file name for the exported scenario, from its title."""
    slug = "".join(c if c.isalnum() else "_" for c in (sc.title or "scenario").lower()).strip("_")
    while "__" in slug:
        slug = slug.replace("__", "_")
    return f"divlab_{slug[:60] or 'scenario'}.json"

# =============================================================================================
# Race, Families, Landscape, Calculator, Theory pages
# =============================================================================================


def target_1d(sc: Scenario) -> Distribution:
    """The scenario's target, which these pages need in 1D (``ValueError`` saying where to go)."""
    d = sc.build_target()
    if getattr(d, "is_discrete", False):
        raise ValueError("This page works on densities; the current scenario's target is a Categorical over "
                         f"{d.K} outcomes (open the Discrete page for it, or a 1D lesson from Home).")
    if d.dim != 1:
        raise ValueError(f"This page works on 1D targets; the current scenario's target is {d.dim}D "
                         "(open Fit 2D or Flows for it, or a 1D lesson from Home).")
    if not getattr(d, "has_density", True):
        raise ValueError(f"This page works on densities; the current scenario's target is a point cloud of {d.n} "
                         "points without one (open Fit 1D, which fits it with a sample divergence such as MMD or "
                         "Sinkhorn, or a 1D lesson from Home).")
    return d


def cannot_show(st, state, message: str, page: str) -> None:
    """A scenario this page cannot show: the reason (``st.error``, saying where it belongs) and a
    way back, a button that loads the default 1D lesson (the scenario stays as it is until then,
    so the other pages keep it). ``st`` is the page's streamlit module (divlab never imports it)."""
    st.error(message)
    if st.button("Load the default 1D lesson here", key=f"{page}_way_back_btn",
                 help="Replaces the current scenario with the two-equal-modes lesson (the share link changes too)."):
        set_scenario(state, default_scenario(), "lesson")
        st.rerun()


def _discard(state, key: str) -> None:
    if key in state:
        del state[key]


def apply_upload(state, data: Any, name: str, file_id: Any) -> bool:
    """Handle an uploaded scenario file once per upload (``file_id``): a valid file becomes the
    session's scenario (source "upload") and clears earlier link/upload errors; an invalid one
    leaves the scenario as it was and records the one-line reason in ``state["upload_error"]``.
    Returns True when the scenario changed."""
    if state.get("upload_done") == file_id:
        return False
    state["upload_done"] = file_id
    try:
        sc = scenario_from_upload(data, name)
    except ValueError as exc:
        state["upload_error"] = str(exc)
        _discard(state, "upload_ok")
        return False
    set_scenario(state, sc, "upload")
    _discard(state, "upload_error")
    _discard(state, "url_error")
    state["upload_ok"] = f"Loaded {name}."
    return True


def sample_fit_specs() -> list[DivergenceSpec]:
    """Sample divergences a scenario can fit from model samples (``estimator`` samples/auto):
    sinkhorn, mmd, energy. Their parameters (kernels, ε) are kept as the scenario sets them."""
    from .. import scenario as _scenario

    return [get(k) for k in getattr(_scenario, "SAMPLE_FITTABLE", ())]


def page_fit_specs() -> dict[str, DivergenceSpec]:
    """Every divergence the fitting pages offer: density divergences, then sample ones."""
    return {s.key: s for s in list(fittable_specs()) + sample_fit_specs()}


def fixed_choices(sc: Scenario, key: str) -> list[tuple[str, dict]]:
    """The scenario's own entries for ``key`` (parameters as they are), or one with defaults."""
    got = [(d.key, dict(d.params)) for d in sc.divergences if d.key == key]
    return got or [(key, {})]


def page_from_url(url: Any, url_paths: Sequence[str]) -> str | None:
    """The page a URL names (its first path segment, if it is one of ``url_paths``), else None:
    ``http://host/race?s=..`` -> "race"."""
    from urllib.parse import urlparse

    if not url:
        return None
    seg = urlparse(str(url)).path.strip("/").split("/")[-1]
    return seg if seg and seg in set(url_paths) else None

from .streamlit_adapter import rerun_pending  # noqa: E402  (Streamlit's private request state, pinned)
