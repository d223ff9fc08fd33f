"""The Discrete page's logic, re-exported from :mod:`divlab.app.discrete`. No Streamlit import."""

from __future__ import annotations

from .app.discrete import (  # noqa: F401
    MAX_EDIT,
    DEFAULT_NS,
    DISCRETE_DIVERGENCES,
    DISCRETE_LESSONS,
    REGULARIZER_LABELS,
    InputError,
    _WORDS,
    _zipf,
    _next_token,
    TARGET_PRESETS,
    preset_target,
    parse_numbers,
    parse_labels,
    target_from_text,
    is_discrete,
    default_reward,
    parse_reward,
    discrete_scenario,
    fit_view,
    alignment_view,
    estimator_view,
)
from .scenario import CATEGORICAL_FAMILIES  # noqa: F401
