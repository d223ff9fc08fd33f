"""Fitting: minimize a divergence between a target and a model family."""

from .core import FAMILIES, FitResult, fit

__all__ = ["fit", "FitResult", "FAMILIES"]
