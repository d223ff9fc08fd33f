"""Fitting: minimize a divergence between a target and a model family."""

from .core import FAMILIES, FitBatch, FitResult, fit
from .flow import FLOWS, FlowResult, flow
from .metrics import mode_metrics, mode_metrics_along
from .continuation import Continuation, PhaseDiagram, continuation, phase_diagram, two_modes
from .explore import Landscape, Optima, Optimum, landscape, local_optima, sweep

__all__ = ["fit", "FitResult", "FitBatch", "FAMILIES", "local_optima", "landscape", "sweep", "Optimum", "Optima", "Landscape"]
__all__ += ["flow", "FlowResult", "FLOWS"]
__all__ += ["mode_metrics", "mode_metrics_along"]
__all__ += ["continuation", "phase_diagram", "Continuation", "PhaseDiagram", "two_modes"]
