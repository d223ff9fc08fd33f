"""The pages' logic, re-exported from :mod:`divlab.app` (one module per page plus the shared state):

- :mod:`divlab.app.state`: the session's scenario (URL, share link with its lesson, upload,
  export), the component table, divergence choices, lessons, drawing a target (with tails),
  formatting values in their unit;
- :mod:`divlab.app.fit1d`, :mod:`~divlab.app.race`, :mod:`~divlab.app.families`,
  :mod:`~divlab.app.landscape`, :mod:`~divlab.app.calculator`, :mod:`~divlab.app.theory`,
  :mod:`~divlab.app.fit2d`, :mod:`~divlab.app.flows`, :mod:`~divlab.app.discrete`: one per page;
- :mod:`divlab.app.run`: a guarded run (wall-clock budget, Stop, the partial result);
- :mod:`divlab.app.streamlit_adapter`: every use of Streamlit's private APIs, pinned by a test.

This module keeps the names the pages and tests import as ``from divlab import app_support as sup``;
a person changing the Race page opens divlab/app/race.py. No Streamlit import here.
"""

from __future__ import annotations

from .app.state import (  # noqa: F401
    COLUMNS,
    ComponentError,
    DEFAULT_COMPONENTS,
    DEFAULT_DIVERGENCES,
    DEFAULT_LESSON,
    DEFAULT_TAILS,
    DrawingError,
    EXCLUDED,
    FAMILIES,
    LESSON_ALSO,
    LESSON_PARAM,
    MAX_INK,
    MIN_SPAN,
    NO_PERSIST_SUFFIXES,
    PAGE_FILES,
    PAGE_TITLES,
    PERSIST_PREFIXES,
    Resolved,
    SCENARIO_KEY,
    URL_PARAM,
    VERSION_KEY,
    _component,
    _densify,
    _direction,
    _discard,
    _is_blank,
    _number,
    _reason,
    _row_from_spec,
    apply_upload,
    build_scenario,
    cannot_show,
    canvas_points,
    choices_by_key,
    components_from_spec,
    default_scenario,
    density_from_strokes,
    expand_choices,
    export_json,
    export_name,
    first_sentence,
    fittable_specs,
    fixed_choices,
    format_param_values,
    format_result,
    format_value,
    init_of,
    ink_fraction,
    lesson_cards,
    lesson_from_url,
    mixture_from_rows,
    needs_seed,
    page_fit_specs,
    page_from_url,
    parse_components,
    parse_param_values,
    persist_key,
    rerun_pending,
    resolve_url_state,
    result_rows,
    run_fits,
    sample_fit_specs,
    scenario_dict,
    scenario_dim,
    scenario_from_upload,
    scenario_from_url,
    set_scenario,
    share_query,
    slider_range,
    spec_from_components,
    table_records,
    target_1d,
    target_kind,
    update_scenario,
    with_tails,
)
from .app.fit1d import (  # noqa: F401
    DRAW_RANGE,
    DRAW_SMOOTH,
    LIVE_MAX_FITS,
    LIVE_MAX_STEPS,
    MAX_FITS,
    _direction_label,
    _literal_args,
    estimator_choices,
    fit1d_downloads,
    fit1d_families,
    fit1d_init,
    fit1d_optima_view,
    fit1d_view,
    fit1d_widget_state,
    fit_optima,
    fit_rows,
    lesson_for,
    live_ok,
    mode_rows,
    optimizer_choices,
    optimum_text,
    params_text,
    rows_key,
    run_scenario_json,
)
from .app.race import (  # noqa: F401
    race_view,
)
from .app.families import (  # noqa: F401
    FAMILY_SWEEPS,
    PHASE_SEPARATIONS,
    family_sweep,
    phase_rows,
    phase_view,
    sweep_rows,
    two_modes_spec,
)
from .app.landscape import (  # noqa: F401
    landscape_view,
)
from .app.calculator import (  # noqa: F401
    CALC_SAMPLES,
    CALC_SKIP,
    CALC_SLOW,
    _closed_form_check,
    _value_text,
    calculator_rows,
    mc_error_curve,
    mc_keys,
    simple_spec,
    unit_of,
)
from .app.theory import (  # noqa: F401
    f_divergence_keys,
    f_h_curves,
    h_along_x,
)
from .app.run import (  # noqa: F401
    STOP_WAIT_S,
    keep_stopped_run,
    run_guarded,
    stop_help,
)
from .app.streamlit_adapter import rerun_pending  # noqa: F401
from .divergences.registry import get  # noqa: F401  (pages read a divergence's entry as sup.get(key))
from .scenario import presets  # noqa: F401
