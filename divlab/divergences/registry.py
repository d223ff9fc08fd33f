"""The one registry of divergences, shared by the library, the CLI and every page.

Adding a divergence means adding one :class:`DivergenceSpec` (via :func:`register`) and its
tests. An entry says what the divergence is (key, name, LaTeX, family, parameters with ranges
and defaults, symmetry, behaviour, direction in words), what it needs (densities, samples,
scores) and how it can be estimated: ``from_logs`` for grid quadrature (and for the fitting
engine), and any number of named estimators (``"mc"``, ``"samples"``, ...) as callables.
Closed forms are registered separately, per pair of distribution types
(:mod:`divlab.divergences.closed_form`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Param", "DivergenceSpec", "register", "get", "catalogue", "keys", "BEHAVIOURS", "FAMILIES", "UNITS",
           "DIMENSIONLESS", "NATS", "unit_suffix", "unit_label", "with_unit"]

BEHAVIOURS = ("mode-seeking", "mass-covering", "balanced", "depends on parameter")
FAMILIES = ("f-divergence", "renyi", "cauchy-schwarz", "bhattacharyya", "transport", "kernel", "stein")
NEEDS = ("densities", "samples", "scores")

#: the unit of a log-based divergence (natural logarithms)
NATS = "nats"
#: a pure number: H², TV, χ², the Amari α-divergence, Tsallis (no logarithm, no length)
DIMENSIONLESS = "dimensionless"
#: every unit a registry entry may have (:attr:`DivergenceSpec.unit`)
UNITS = (
    NATS,
    DIMENSIONLESS,
    "units of x",           # Wasserstein W_p, sliced W_p, energy distance: a length
    "squared units of x",   # Sinkhorn S_ε with cost |x − y|²
    "kernel units",         # MMD², KSD²: the units of the kernel (times scores² for KSD)
    "squared score units",  # Fisher: E|∇log p − ∇log q|², (1 / units of x)²
)


def unit_suffix(unit: str) -> str:
    """What follows a number of this unit: ``" nats"``, ``" units of x"``; nothing when dimensionless."""
    return "" if unit == DIMENSIONLESS else f" {unit}"


def with_unit(text: str, unit: str) -> str:
    """``text`` (a formatted number) followed by its unit: ``0.49 nats``, ``0.25`` (dimensionless)."""
    return f"{text}{unit_suffix(unit)}"


def unit_label(units) -> str:
    """A unit (or several, joined by '; ') for a bracket in an axis or column title, e.g.
    ``D(p‖q) [nats]``; "" when every one is dimensionless (the caller then writes no bracket)."""
    if isinstance(units, str):
        units = [units]
    named = list(dict.fromkeys(u for u in units if u != DIMENSIONLESS))
    if named and len(named) < len(set(units)):
        named.append("no unit")
    return "; ".join(named)


@dataclass(frozen=True)
class Param:
    """A divergence parameter with its allowed range (closed or open ends) and default."""

    name: str
    default: float
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    label: str = ""
    description: str = ""
    integer: bool = False
    choices: tuple = ()
    #: "number" (default) or "callable" (e.g. the user's f of the generic f-divergence)
    kind: str = "number"

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        return f"in {lo}{self.low:g}, {self.high:g}{hi}"

    def check(self, owner: str, value: Any):
        if self.kind == "callable":
            if not callable(value):
                raise ValueError(f"{owner}({self.name}={value!r}): {self.name} must be a callable ({self.description})")
            return value
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{owner}({self.name}={value!r}): {self.name} must be {self.allowed()}")
            return value
        try:
            import torch

            if isinstance(value, torch.Tensor):
                v = value.detach()
                ok_lo = (v > self.low).all() if self.low_open else (v >= self.low).all()
                ok_hi = (v < self.high).all() if self.high_open else (v <= self.high).all()
                if not (bool(torch.isfinite(v).all()) or math.isinf(self.high)) or not (ok_lo and ok_hi):
                    raise ValueError(f"{owner}({self.name}={v.tolist()!r}): {self.name} must be {self.allowed()}")
                return value
            x = float(value)
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith(owner):
                raise
            raise ValueError(f"{owner}({self.name}={value!r}): {self.name} must be a number {self.allowed()}") from None
        if math.isnan(x):
            raise ValueError(f"{owner}({self.name}=nan): {self.name} must be a number {self.allowed()}")
        ok_lo = x > self.low if self.low_open else x >= self.low
        ok_hi = x < self.high if self.high_open else x <= self.high
        if not (ok_lo and ok_hi):
            raise ValueError(f"{owner}({self.name}={value!r}): {self.name} must be {self.allowed()}")
        if self.integer:
            if x != int(x):
                raise ValueError(f"{owner}({self.name}={value!r}): {self.name} must be an integer")
            return int(x)
        return x

    def as_dict(self) -> dict:
        d = {"name": self.name, "default": self.default, "low": self.low, "high": self.high,
             "low_open": self.low_open, "high_open": self.high_open, "label": self.label or self.name,
             "description": self.description}
        if self.choices:
            d["choices"] = list(self.choices)
        if self.integer:
            d["integer"] = True
        return d


@dataclass(frozen=True)
class DivergenceSpec:
    """One registry entry. See the module docstring."""

    key: str
    name: str
    latex: str
    family: str
    behaviour: str
    symmetric: bool
    direction: str
    description: str
    #: the unit of the value, one of :data:`UNITS`: "nats" for log-based divergences,
    #: "dimensionless" for H², TV, χ², α, Tsallis, lengths for transport, ... (required)
    unit: str = ""
    params: tuple[Param, ...] = ()
    needs: tuple[str, ...] = ("densities",)
    #: (low, high) range of values, for bounds checks and the UI (None = unbounded above)
    value_range: tuple[float, float | None] = (0.0, None)
    #: quadrature formula: (lp, lq, w, **params) -> value; lp, lq are log-densities normalized on
    #: the grid, shape (N, *batch); w are quadrature weights, shape (N,). None if not a density divergence.
    from_logs: Callable | None = None
    #: the same in the fitting engine's hot loop, with its derivative:
    #: (lp, lq, p, q, w, **params) -> (value (B,), ∂value/∂lq_i / w_i (B, N)) for finite
    #: log-densities in grid-last layout (B, N), p = exp(lp), q = exp(lq) given, parameters
    #: scalars or (B, 1) tensors. None: the engine differentiates ``from_logs`` by autograd
    #: (f-divergences take theirs from ``fdiv.grad``, see :attr:`grad_rule`).
    grad_from_logs: Callable | None = None
    #: extra estimators by name -> callable(p, q, **options_and_params) -> Estimate
    estimator_fns: dict = field(default_factory=dict)
    #: for f-divergences: the FDivergence object (f, h, limits); None otherwise
    fdiv: Any = None
    #: a short teaching note for the UI ("what to look for")
    look_for: str = ""
    #: the differentiable surrogate used for fitting when it differs from the value
    reference: str = ""

    @property
    def estimators(self) -> tuple[str, ...]:
        from .closed_form import supported_pairs

        out = []
        if supported_pairs(self.key):
            out.append("closed_form")
        if self.from_logs is not None:
            out.append("quadrature")
        out.extend(k for k in self.estimator_fns if k not in out)
        return tuple(out)

    @property
    def grad_rule(self) -> Callable | None:
        """The engine's analytic (value, derivative) rule: ``grad_from_logs``, else one built
        from the f-divergence's ``fdiv.grad``, else None (autograd)."""
        if self.grad_from_logs is not None:
            return self.grad_from_logs
        if self.fdiv is not None and self.fdiv.grad is not None:
            from functools import partial

            from .fdiv import f_grad_from_logs

            return partial(f_grad_from_logs, self.fdiv)
        return None

    @property
    def is_f_divergence(self) -> bool:
        return self.fdiv is not None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def resolve_params(self, given: dict, owner: str | None = None) -> dict:
        """Validate keyword parameters against the entry: unknown names and out-of-range values
        raise ``ValueError``; missing ones take their defaults."""
        owner = owner or f"divergence {self.key!r}"
        names = {p.name for p in self.params}
        unknown = sorted(set(given) - names)
        if unknown:
            allowed = ", ".join(sorted(names)) if names else "none"
            raise ValueError(f"{owner}: unknown parameter {unknown[0]!r} (allowed: {allowed})")
        out = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.check(owner, given[p.name])
            elif p.default is None:
                raise ValueError(f"{owner}: parameter {p.name!r} is required ({p.description})")
            else:
                out[p.name] = p.default
        return out

    def label(self, **params) -> str:
        """Short display label with parameter values, e.g. 'α-divergence (α=0.5)'."""
        if not params:
            return self.name
        inner = ", ".join(f"{(self.param(k).label or k)}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                          for k, v in params.items())
        return f"{self.name} ({inner})"

    def as_dict(self) -> dict:
        return {
            "key": self.key, "name": self.name, "latex": self.latex, "family": self.family,
            "params": [p.as_dict() for p in self.params], "symmetric": self.symmetric,
            "behaviour": self.behaviour, "needs": list(self.needs), "estimators": list(self.estimators),
            "direction": self.direction, "description": self.description,
            "value_range": list(self.value_range), "look_for": self.look_for, "unit": self.unit,
        }

    def with_unit(self, text: str) -> str:
        """A formatted value of this divergence followed by its unit (none when dimensionless)."""
        return with_unit(text, self.unit)


_REGISTRY: dict[str, DivergenceSpec] = {}


def register(spec: DivergenceSpec) -> DivergenceSpec:
    if spec.key in _REGISTRY:
        raise ValueError(f"register({spec.key!r}): a divergence with this key is already registered")
    if spec.behaviour not in BEHAVIOURS:
        raise ValueError(f"register({spec.key!r}): behaviour={spec.behaviour!r} must be one of {BEHAVIOURS}")
    if spec.family not in FAMILIES:
        raise ValueError(f"register({spec.key!r}): family={spec.family!r} must be one of {FAMILIES}")
    if spec.unit not in UNITS:
        raise ValueError(f"register({spec.key!r}): unit={spec.unit!r} must be one of {UNITS}")
    bad = [n for n in spec.needs if n not in NEEDS]
    if bad:
        raise ValueError(f"register({spec.key!r}): needs={bad!r} must be among {NEEDS}")
    _REGISTRY[spec.key] = spec
    return spec


def get(key: str) -> DivergenceSpec:
    """The registry entry for ``key``; an unknown key raises ``ValueError`` listing the known ones."""
    if not isinstance(key, str) or key not in _REGISTRY:
        raise ValueError(f"divergence={key!r} is unknown (allowed: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[key]


def keys() -> list[str]:
    return list(_REGISTRY)


def catalogue() -> list[DivergenceSpec]:
    """Every registered divergence, in registration order."""
    return list(_REGISTRY.values())
