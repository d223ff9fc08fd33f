"""divlab distributions: torch-native, device- and dtype-aware, with JSON specs."""

from .base import Distribution
from .categorical import Categorical
from .empirical import Empirical
from .grid import GridDensity
from .mixture import Mixture
from .parametric import Laplace, MultivariateNormal, Normal, StudentT, Uniform
from .shapes import Banana, Ring, TwoMoons
from .spec import SPEC_TYPES, from_spec

__all__ = [
    "Distribution", "Normal", "MultivariateNormal", "StudentT", "Laplace", "Uniform", "Mixture",
    "GridDensity", "Empirical", "Banana", "Ring", "TwoMoons", "from_spec", "SPEC_TYPES",
]
__all__ += ["Categorical"]
