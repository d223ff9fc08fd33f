"""Non-widget logic of the Streamlit pages, kept here so it is plain Python and unit-testable.

No Streamlit import: pages call these functions with widget values and render what comes back.

- :func:`parse_components` turns the rows of the Fit 1D component table (a list of dicts or a
  DataFrame with columns weight, family, loc, scale, df) into clean rows, or raises
  :class:`ComponentError` naming the row, the column and the value
  (``row 2: scale must be > 0, got 0.0``).
- :func:`mixture_from_rows` builds the target ``dl.Mixture``; a ``uniform`` row with (loc, scale)
  is Uniform(loc − scale, loc + scale); ``df`` is used by ``student_t`` rows only.
- :func:`fittable_specs`, :func:`slider_range`: which divergences the Fit 1D page offers and the
  slider range of each parameter (infinite ends clipped, open ends nudged inside).
- :func:`run_fits`, :func:`result_rows`, :func:`format_value`: run every chosen divergence from the
  same start and present the outcome (infinite values as "∞" with the reason, never NaN).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .distributions import Distribution, Laplace, Mixture, Normal, StudentT, Uniform
from .divergences.registry import DivergenceSpec, Param, catalogue, get
from .fit import FitResult, fit

__all__ = [
    "COLUMNS", "FAMILIES", "DEFAULT_COMPONENTS", "DEFAULT_DIVERGENCES", "ComponentError", "table_records",
    "parse_components", "mixture_from_rows", "fittable_specs", "slider_range", "run_fits", "format_value",
    "result_rows",
]

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


def format_value(value: float, reason: str = "") -> str:
    """``D(p‖q) = 0.4892 nats``; an infinite value reads ``D(p‖q) = ∞ (reason)``; NaN is never
    shown as a number."""
    value = float(value)
    if math.isinf(value):
        sign = "" if value > 0 else "−"
        return f"D(p‖q) = {sign}∞" + (f" ({reason})" if reason else "")
    if math.isnan(value):
        return "D(p‖q) undefined" + (f" ({reason})" if reason else "")
    return f"D(p‖q) = {value:.6g} nats"


def _direction(spec: DivergenceSpec) -> str:
    """The entry's direction in words, without the reminder that every entry shares."""
    return spec.direction.replace(" (p is the target, q the model)", "").strip()


def result_rows(results: Sequence[FitResult]) -> list[dict]:
    """One row per fit for the final table: divergence with its direction in words, final loc and
    scale, the final value in nats (∞ with the reason when infinite) and the status."""
    rows = []
    for r in results:
        spec = get(r.divergence)
        rows.append({
            "divergence": f"{r.label}: {_direction(spec)}",
            "loc": float(r.params["loc"]),
            "scale": float(r.params["scale"]),
            "final value": format_value(r.final_loss, _reason(r.status)),
            "status": r.status,
        })
    return rows
