"""divlab divergences: one registry, closed forms per type pair, estimators behind one API."""

from . import builtin  # noqa: F401  (registers the density divergences)
from . import transport  # noqa: F401  (wasserstein, sinkhorn, sliced_wasserstein)
from . import kernel  # noqa: F401  (mmd, energy)
from . import stein  # noqa: F401  (ksd, fisher)
from ..estimators.mc import register as _register_mc
from .api import divergence, estimate, gradient_weight
from .closed_form import closed_form_table, find_closed_form, register_closed_form
from .fdiv import FDIVS, FDivergence, generic_fdivergence
from .registry import DivergenceSpec, Param, catalogue, get, keys, register

# closed forms of the sample-based divergences (Bures W2; MMD/energy between Gaussian mixtures)
transport.register_closed_forms()
kernel.register_closed_forms()
from . import discrete  # noqa: E402,F401  (exact sums between Categoricals)
from .discrete import discrete_reason  # noqa: E402

_register_mc()  # "mc" estimators for kl, reverse_kl, alpha
from ..estimators.samples import register as _register_samples  # noqa: E402

_register_samples()  # "knn", "nn_ratio", "kde" (kl, renyi), "dv", "nwj" (kl): estimators from samples alone

__all__ = [
    "divergence", "estimate", "gradient_weight", "catalogue", "get", "keys", "register", "DivergenceSpec",
    "Param", "register_closed_form", "find_closed_form", "closed_form_table", "FDIVS", "FDivergence",
    "generic_fdivergence",
]
__all__ += ["discrete_reason"]
