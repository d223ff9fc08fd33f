"""Fitting: minimize a divergence between a target and a model family."""

from .core import FAMILIES, FitBatch, FitResult, fit

__all__ = ["fit", "FitResult", "FitBatch", "FAMILIES"]
