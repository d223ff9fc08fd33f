"""The Calculator's estimator error explorer, re-exported from :mod:`divlab.app.estimators`. No Streamlit import."""

from __future__ import annotations

from .app.estimators import (  # noqa: F401
    DEFAULTS,
    LESSON,
    gaussian_pair,
    estimator_error_table,
)
from .estimators.samples import SAMPLE_ESTIMATORS  # noqa: F401
