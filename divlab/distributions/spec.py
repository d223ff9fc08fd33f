"""JSON specs: ``dist.to_spec()`` -> dict, ``from_spec(dict)`` -> distribution."""

from __future__ import annotations

from .base import Distribution
from .categorical import Categorical
from .empirical import Empirical
from .grid import GridDensity
from .mixture import Mixture
from .parametric import Laplace, MultivariateNormal, Normal, StudentT, Uniform
from .shapes import Banana, Ring, TwoMoons

__all__ = ["from_spec", "SPEC_TYPES"]

SPEC_TYPES: dict[str, type[Distribution]] = {
    cls.spec_type: cls
    for cls in (Normal, MultivariateNormal, StudentT, Laplace, Uniform, Mixture, GridDensity, Banana, Ring, TwoMoons, Empirical,
                Categorical)
}
MAX_DEPTH = 8


def from_spec(spec: dict, *, device=None, dtype=None, _depth: int = 0) -> Distribution:
    """Build a distribution from its JSON spec (the inverse of ``to_spec``).

    Unknown types and unknown or missing keys raise ``ValueError`` naming them.
    """
    if _depth > MAX_DEPTH:
        raise ValueError(f"distribution spec: nested deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, dict):
        raise ValueError(f"distribution spec: expected an object with a 'type', got {type(spec).__name__}")
    typ = spec.get("type")
    if not isinstance(typ, str) or typ not in SPEC_TYPES:  # a list or dict "type" is unhashable: check str first
        raise ValueError(f"distribution spec: type={typ!r} is unknown (allowed: {', '.join(sorted(SPEC_TYPES))})")
    cls = SPEC_TYPES[typ]
    allowed = set(cls.spec_keys) | {"type"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(
            f"{typ} spec: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed - {'type'}))})"
        )
    if cls is Mixture:
        comps = spec.get("components")
        if not isinstance(comps, list) or not comps:
            raise ValueError("mixture spec: components must be a non-empty list of distribution specs")
        built = [from_spec(c, device=device, dtype=dtype, _depth=_depth + 1) for c in comps]
        return Mixture(built, spec.get("weights"), device=device, dtype=dtype)
    required = [k for k in cls.spec_keys if k not in ("y",)]
    if cls in (Normal, MultivariateNormal, StudentT, Laplace, Uniform, GridDensity):
        missing = [k for k in required if k not in spec]
        if missing:
            raise ValueError(f"{typ} spec: missing key {missing[0]!r}")
    return cls.from_spec_args(spec, device=device, dtype=dtype)
