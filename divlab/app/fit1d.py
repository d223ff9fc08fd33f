"""The Fit 1D page: its widget state, runs, the animation with each divergence's optima, live mode."""

from __future__ import annotations

import math
import json as _json
from typing import Sequence

from ..distributions import Distribution
from ..divergences.registry import get
from ..fit import FitResult
from ..scenario import Scenario
from .state import (  # noqa: F401
    COLUMNS,
    _direction,
    choices_by_key,
    components_from_spec,
    fittable_specs,
    format_param_values,
    format_result,
    init_of,
    page_fit_specs,
    target_kind,
)


# =============================================================================================
# Fit 1D page
# =============================================================================================

#: most fits one page run may ask for (the scenario's limit on divergence entries)
MAX_FITS = 6

#: draw mode defaults
DRAW_RANGE = (-6.0, 6.0)

DRAW_SMOOTH = 0.02


def _literal_args(model, field: str, fallback: tuple) -> tuple:
    import typing

    try:
        args = typing.get_args(model.model_fields[field].annotation)
    except (AttributeError, KeyError):
        return fallback
    return tuple(a for a in args if isinstance(a, str)) or fallback


def estimator_choices() -> list[str]:
    """Estimators a scenario may name (from the Scenario schema)."""
    return list(_literal_args(Scenario, "estimator", ("quadrature",)))


def optimizer_choices() -> list[str]:
    from ..scenario import OptimizerSpec

    return list(_literal_args(OptimizerSpec, "name", ("adam", "sgd")))


def fit1d_families() -> list[str]:
    """1D model families both the fitter (``divlab.fit.core.FAMILIES``) and the scenario schema
    accept, among those the Fit 1D page can start from (loc, scale): normal, student_t."""
    from ..fit.core import FAMILIES as FIT_FAMILIES
    from ..scenario import ModelSpec

    schema = _literal_args(ModelSpec, "family", ("normal",))
    return [f for f in ("normal", "student_t") if f in FIT_FAMILIES and f in schema]


def rows_key(rows: Sequence[dict]) -> str:
    """A short stable key for a component table's contents (the editor is recreated when the rows
    are replaced from outside, e.g. by a lesson)."""
    import hashlib

    text = _json.dumps([{k: r.get(k) for k in COLUMNS} for r in rows], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def fit1d_widget_state(sc: Scenario) -> dict:
    """Fit 1D widget values (session keys) that show scenario ``sc``."""
    kind = target_kind(sc.target)
    init = init_of(sc)
    out = {
        "fit1d_family": sc.model.family if sc.model.family in fit1d_families() else "normal",
        "fit1d_estimator": sc.estimator if sc.estimator in estimator_choices() else estimator_choices()[0],
        "fit1d_optimizer": sc.optimizer.name,
        "fit1d_init_loc": float(init.get("loc", 0.0)), "fit1d_init_scale": float(init.get("scale", 1.0)),
        "fit1d_steps": int(sc.optimizer.steps), "fit1d_lr": float(sc.optimizer.lr),
        "fit1d_draw_lo": DRAW_RANGE[0], "fit1d_draw_hi": DRAW_RANGE[1], "fit1d_draw_smooth": DRAW_SMOOTH,
    }
    fittable = set(page_fit_specs())
    grouped = choices_by_key(sc)
    out["fit1d_divs"] = [k for k in grouped if k in fittable]
    for key, params in grouped.items():
        for name, vals in params.items():
            out[f"fit1d_{key}_{name}_values"] = format_param_values(vals)
    if kind == "table":
        out["fit1d_target_mode"] = "component table"
        out["fit1d_components"] = components_from_spec(sc.target)
    elif kind == "drawn":
        out["fit1d_target_mode"] = "drawing"
        out["fit1d_drawn"] = sc.target
        xs = sc.target.get("x") or list(DRAW_RANGE)
        out["fit1d_draw_lo"], out["fit1d_draw_hi"] = float(xs[0]), float(xs[-1])
    return out


def lesson_for(state, sc: Scenario) -> dict | None:
    """The lesson the session opened, while its scenario's target is still the one on screen."""
    card = state.get("lesson")
    if isinstance(card, dict) and card.get("scenario") is not None and card["scenario"].target == sc.target:
        return card
    return None


def _direction_label(r: FitResult) -> str:
    return f"{r.label}: {_direction(get(r.divergence))}"


def mode_rows(target: Distribution, results: Sequence[FitResult]) -> list[dict] | None:
    """Mode metrics per fit (``divlab.mode_metrics``: modes covered, coverage, precision), or
    None where divlab does not provide them."""
    import divlab

    fn = getattr(divlab, "mode_metrics", None)
    if fn is None:
        return None
    rows = []
    for r in results:
        m = fn(target, r.model())
        rows.append({"divergence": r.label, "modes covered": f"{m['modes_covered']} of {m['modes']}",
                     "coverage (p in q's 95% region)": float(m["coverage"]),
                     "precision (q in p's 95% region)": float(m["precision"])})
    return rows


def params_text(params: dict) -> str:
    """Final model parameters as ``loc=-2.98, scale=1.02`` (any family)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k}={v}"
                     for k, v in params.items())


def fit_rows(results: Sequence[FitResult]) -> list[dict]:
    """The final table for any family: divergence with direction, parameters, value, status."""
    rows = []
    for r in results:
        row = {"divergence": _direction_label(r)}
        if set(r.params) == {"loc", "scale"}:
            row.update({"loc": float(r.params["loc"]), "scale": float(r.params["scale"])})
        else:
            row["model q parameters"] = params_text(r.params)
        row.update({"final value": format_result(r), "status": r.status,
                    "estimator": r.estimator})
        rows.append(row)
    return rows


def run_scenario_json(scenario_json: str, callback=None) -> tuple[Scenario, list[FitResult]]:
    """Parse and run a scenario (the pages cache this on the JSON text). ``callback``: e.g. a
    :class:`divlab.limits.RunGuard` (wall-clock budget and Stop), whose ``relabel`` then names
    why fits stopped."""
    from ..scenario import run_scenario

    sc = Scenario.from_json(scenario_json)
    results = run_scenario(sc, callback=callback)
    if hasattr(callback, "relabel"):
        callback.relabel(results)
    return sc, results


def fit1d_view(scenario_json: str, callback=None, with_optima: bool = False) -> dict:
    """Everything Fit 1D shows after Run: the animation (target, each model over the steps, loss
    curves), the final table, mode metrics, and what to look for per divergence. ``callback``:
    see :func:`run_scenario_json`. ``with_optima``: also each divergence's global and local optima
    over the Normal family (dashed in the figure, a column of the table, and a note for a fit that
    ended at a local one); the page draws the view first and adds them in a second step
    (:func:`fit1d_optima_view`), so Run → drawn does not wait for the extra fits."""
    from .. import viz

    sc, results = run_scenario_json(scenario_json, callback)
    target = sc.build_target()
    note = ""
    optima, optima_notes = fit_optima(target, results) if with_optima else (None, [])
    if all(set(r.trajectory) >= {"loc", "scale"} for r in results):
        figure = viz.fit_animation_spec(target, results, n_frames=sc.view.frames, optima=optima)
    else:
        figure = viz.race_animation_spec(target, results, n_frames=sc.view.frames, cols=len(results))
        note = "Each panel shows one fit (models of this family are drawn panel by panel)."
    seen, look = set(), []
    for r in results:
        if r.divergence not in seen:
            seen.add(r.divergence)
            spec = get(r.divergence)
            look.append(f"**{spec.name}** ({_direction(spec)}): {spec.look_for}")
    table = fit_rows(results)
    if optima is not None:
        for row, r, opt in zip(table, results, optima):
            row["optimum"] = optimum_text(r, opt)
    return {"scenario": scenario_json, "figure": figure, "table": table,
            "modes": mode_rows(target, results),
            "look_for": look, "note": note, "optima_notes": optima_notes, "with_optima": with_optima,
            "optima_apply": with_optima or all(r.family == "normal" for r in results)}

#: live mode (Fit 1D refits on every edit, no Run) only for scenarios this cheap
LIVE_MAX_STEPS = 600

LIVE_MAX_FITS = 3


def live_ok(sc: Scenario) -> bool:
    """Whether Fit 1D may refit ``sc`` on every edit: a Normal model, quadrature (or auto), at most
    :data:`LIVE_MAX_FITS` fits of at most :data:`LIVE_MAX_STEPS` steps (a few tenths of a second)."""
    try:
        return (sc.model.family == "normal" and len(sc.divergences) <= LIVE_MAX_FITS
                and int(sc.optimizer.steps) <= LIVE_MAX_STEPS and getattr(sc, "estimator", "auto") in ("auto", "quadrature")
                and all(d.key in {s.key for s in fittable_specs()} for d in sc.divergences))
    except (AttributeError, TypeError, ValueError):
        return False


def fit1d_optima_view(scenario_json: str) -> dict:
    """:func:`fit1d_view` with the optima. It runs the scenario's fits again (deterministic: the
    same trajectories as the view already drawn) and the optima's batch; the page caches it."""
    return fit1d_view(scenario_json, with_optima=True)


def fit_optima(target, results) -> tuple[list | None, list[str]]:
    """Each fit's divergence's optima over the Normal family (``divlab.fit.explore.optima_of``: 12
    starts, one batch) and a sentence for every fit that ended at a local, not the global, optimum;
    (None, []) where that does not apply (not a 1D Normal-family fit of a density target)."""
    from ..fit.explore import optima_of

    if (target.dim != 1 or not getattr(target, "has_density", True) or getattr(target, "is_discrete", False)
            or not results or any(r.family != "normal" for r in results)):
        return None, []
    choices = []
    density = {s.key for s in fittable_specs()}
    for r in results:
        c = (r.divergence, dict(r.divergence_params))
        if c not in choices and r.divergence in density:  # sample divergences (Sinkhorn, MMD): 12 sampled
            choices.append(c)  # fits each would take minutes on a busy CPU, so they get no optima marks
    if not choices:
        return None, []
    try:
        found = optima_of(target, choices)
    except (ValueError, RuntimeError):
        return None, []
    by = {(k, tuple(sorted(p.items()))): o for (k, p), o in zip(choices, found)}
    from ..fit.explore import Optima

    optima = [by.get((r.divergence, tuple(sorted(r.divergence_params.items()))), Optima()) for r in results]
    notes = []
    for r, opt in zip(results, optima):
        text = optimum_text(r, opt)
        if text.startswith("local"):
            g = opt[0]
            notes.append(f"{r.label} ended at a **local** optimum ({format_result(r)}): from this start it cannot reach "
                         f"its global optimum (loc {g.params['loc']:.3g}, scale {g.params['scale']:.3g}, "
                         f"{get(r.divergence).with_unit(f'{g.value:.4g}')}), drawn dashed. The start decides.")
    return optima, notes


def optimum_text(r: FitResult, opt) -> str:
    """'global optimum', 'local optimum (global: 0.689 nats)', or '' (no optimum found near it)."""
    from ..fit.explore import _distance

    if not opt or not math.isfinite(r.final_loss):
        return ""
    for o in opt:
        if _distance(r.params, o.params) <= 1e-2:
            if o.is_global:
                return "global optimum"
            return f"local optimum (global: {get(r.divergence).with_unit(f'{opt[0].value:.4g}')})"
    return ""


def fit1d_downloads(scenario_json: str) -> dict:
    """The downloads of a fit: offline HTML animation, GIF (Pillow) and CSV trajectories, as bytes."""
    import os
    import tempfile

    from .. import export

    sc, results = run_scenario_json(scenario_json)
    target = sc.build_target()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("html", "gif", "csv"):
            path = os.path.join(tmp, f"fit.{fmt}")
            export.write(path, sc, target, results, fmt=fmt)
            with open(path, "rb") as fh:
                out[fmt] = fh.read()
    return out


def fit1d_init(family: str, loc: float, scale: float) -> dict:
    """The starting point of the Fit 1D model: loc and scale (a Student-t also starts at df = 5)."""
    init = {"loc": float(loc), "scale": float(scale)}
    if family == "student_t":
        init["df"] = 5.0
    return init
