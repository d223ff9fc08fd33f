"""divlab: an explorer of divergence geometry — distributions, divergences, fits, figures.

    import divlab as dl
    p = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])
    q = dl.Normal(0.0, 2.0)
    dl.divergence(p, q, "kl")                 # forward KL(p‖q), nats
    dl.fit(p, family="normal", divergence="reverse_kl", init={"loc": -2.0, "scale": 1.0})

Conventions: p is the target, q the model; natural logs; see each divergence's entry in
``dl.catalogue()``. divlab never imports Streamlit.
"""

from .device import get_device, get_dtype
from .distributions import (
    Banana,
    Categorical,
    Distribution,
    Empirical,
    GridDensity,
    Laplace,
    Mixture,
    MultivariateNormal,
    Normal,
    Ring,
    StudentT,
    TwoMoons,
    Uniform,
    from_spec,
)
from .divergences import (
    catalogue,
    closed_form_table,
    divergence,
    estimate,
    gradient_weight,
    register,
    register_closed_form,
)
from .estimators import Estimate, make_grid
from .fit import FitBatch, FitResult, fit, landscape, local_optima, sweep
from .fit.flow import FlowResult, flow
from .fit.metrics import mode_metrics, mode_metrics_along
from .fit.continuation import continuation, phase_diagram
from .scenario import Scenario, load_preset, presets
from .noise_path import de_bruijn, noise_path, ou_push
from .alignment import best_of_n, frontier, kl_estimators, policy_stats, regularized_optimum, tilt
from .divergences.maps import EntropicMap, entropic_map, monge_gap

__version__ = "0.1.0"

__all__ = [
    "Distribution", "Normal", "MultivariateNormal", "StudentT", "Laplace", "Uniform", "Mixture", "GridDensity", "Empirical",
    "Banana", "Ring", "TwoMoons", "from_spec", "divergence", "estimate", "catalogue", "gradient_weight",
    "register", "register_closed_form", "closed_form_table", "Estimate", "make_grid", "fit", "FitResult", "FitBatch",
    "local_optima", "landscape", "sweep",
    "get_device", "get_dtype", "Scenario", "load_preset", "presets", "__version__",
]
__all__ += ["flow", "FlowResult"]
__all__ += ["entropic_map", "monge_gap", "EntropicMap"]
__all__ += ["mode_metrics", "mode_metrics_along"]
__all__ += ["continuation", "phase_diagram"]
__all__ += ["Categorical"]
__all__ += ["tilt", "regularized_optimum", "best_of_n", "policy_stats", "frontier", "kl_estimators"]
__all__ += ["noise_path", "de_bruijn", "ou_push"]
