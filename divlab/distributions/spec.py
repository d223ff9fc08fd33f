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

#: the shape each parameter of a spec must have: () a number, (2,) a 2-vector, (2, 2) a matrix;
#: a spec (a file, a scenario, a link) never carries a batch of distributions
_SHAPES: dict[str, dict[str, tuple]] = {
    "normal": {"loc": ((),), "scale": ((),)},
    "student_t": {"df": ((),), "loc": ((),), "scale": ((),)},
    "laplace": {"loc": ((),), "scale": ((),)},
    "uniform": {"low": ((), (2,)), "high": ((), (2,))},
    "mvn": {"mean": ((2,),), "cov": ((2, 2),)},
    "banana": {"curvature": ((),), "scale1": ((),), "scale2": ((),)},
    "ring": {"radius": ((),), "width": ((),), "center": ((2,),)},
    "two_moons": {"noise": ((),)},
}
_SHAPE_WORDS = {(): "a single number", (2,): "a 2-vector of numbers", (2, 2): "a 2x2 matrix of numbers"}


def _shape_word(shape: tuple) -> str:
    return _SHAPE_WORDS.get(shape) or f"a list of {shape[0]} numbers"


def _json_shape(v, depth: int = 0):
    """Shape of a JSON number or (rectangular) nested list of numbers; None if it is not one."""
    if isinstance(v, bool) or depth > MAX_DEPTH:
        return None
    if isinstance(v, (int, float)):
        return ()
    if isinstance(v, list):
        if not v:
            return (0,)
        inner = [_json_shape(x, depth + 1) for x in v]
        if any(i is None for i in inner) or len(set(inner)) != 1:
            return None
        return (len(v),) + inner[0]
    return None


def _check_shapes(cls, typ: str, spec: dict) -> None:
    """Every parameter of ``spec`` has the shape its type allows (see ``_SHAPES``)."""
    shapes = dict(_SHAPES.get(typ, {}))
    if typ == "mixture" and spec.get("weights") is not None and isinstance(spec.get("components"), list):
        shapes["weights"] = ((len(spec["components"]),),)
    owner = cls.__name__
    for key, allowed in shapes.items():
        if key not in spec:
            continue
        v = spec[key]
        got = _json_shape(v)
        if got != () or allowed != ((),):
            shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
        else:
            shown = repr(v)
        if got is None:
            raise ValueError(f"{owner}({key}={shown}): {key} must be "
                             + " or ".join(_shape_word(a) for a in allowed))
        if got not in allowed:
            words = " or ".join(_shape_word(a) for a in allowed)
            raise ValueError(f"{owner}({key}={shown}): {key} must be {words} (got shape {got}; a spec never "
                             "holds a batch of distributions)")
    if typ == "uniform" and "low" in spec and "high" in spec and _json_shape(spec["low"]) != _json_shape(spec["high"]):
        raise ValueError(f"Uniform(low={spec['low']!r:.40}, high={spec['high']!r:.40}): low and high must have the "
                         "same shape (numbers in 1D, 2-vectors for a 2D box)")


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
    _check_shapes(cls, typ, spec)
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
