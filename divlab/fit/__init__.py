"""Fitting: minimize a divergence between a target and a model family."""

from .core import FAMILIES, FitBatch, FitResult, fit
from .explore import Landscape, Optima, Optimum, landscape, local_optima, sweep

__all__ = ["fit", "FitResult", "FitBatch", "FAMILIES", "local_optima", "landscape", "sweep", "Optimum", "Optima", "Landscape"]
