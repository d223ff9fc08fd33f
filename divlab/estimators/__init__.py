"""Estimators: quadrature grids, the shared result type, Monte Carlo and sample estimators."""

from .quadrature import Grid, make_grid
from .result import Estimate

__all__ = ["Grid", "make_grid", "Estimate"]
