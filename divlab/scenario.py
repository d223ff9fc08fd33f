"""A whole scenario as one validated object: target, model, divergences, optimizer, view.

A :class:`Scenario` is what the URL holds, what JSON exports and imports, and what a lesson
(preset) ships. The same scenario with the same seed gives the same numbers
(:func:`run_scenario`).

    sc = Scenario.from_json(text)          # size and nesting checked before parsing
    sc.to_json()                           # canonical JSON (sorted keys)
    s = sc.to_url_param()                  # urlsafe base64 of zlib(canonical JSON), no padding
    Scenario.from_url_param(s) == sc
    results = run_scenario(sc)             # one FitResult per divergence, same start

Every error is a ``ValueError`` with one line naming the field path
(``target.components[1].scale``, ``optimizer.lr``) and what is allowed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import zlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["Scenario", "ModelSpec", "DivergenceChoice", "OptimizerSpec", "ViewSpec", "run_scenario", "fit_groups",
           "init_names", "presets", "load_preset", "check_json_text", "MAX_BYTES", "MAX_DEPTH", "PRESET_DIR",
           "FAMILIES", "ESTIMATORS", "SAMPLE_FITTABLE", "CATEGORICAL_FAMILIES"]

#: largest scenario (or preset) file accepted, in bytes of UTF-8
MAX_BYTES = 1_000_000
#: deepest nesting of JSON objects/arrays accepted (checked before parsing)
MAX_DEPTH = 20
#: lessons shipped with divlab (package data: installed with the package, editable or not)
PRESET_DIR = Path(__file__).resolve().parent / "presets"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def check_json_text(text, what: str = "scenario") -> str:
    """Size and nesting-depth limits, checked on the raw text before any JSON parsing, so a huge
    or deeply nested file is rejected fast. Returns the text (decoded if bytes)."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_BYTES:
            raise ValueError(f"{what}: {len(text)} bytes is too large (at most {MAX_BYTES} bytes)")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what}: not UTF-8 text (byte {exc.start})") from None
    if not isinstance(text, str):
        raise ValueError(f"{what}: expected JSON text, got {type(text).__name__}")
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ValueError(f"{what}: {len(text.encode('utf-8', 'surrogatepass'))} bytes is too large "
                         f"(at most {MAX_BYTES} bytes)")
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"{what}: JSON nested deeper than {MAX_DEPTH} levels (at character {m.start()})")
        else:
            depth -= 1
    return text


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed (numbers must be finite)")


def _parse_json(text, what: str = "scenario"):
    text = check_json_text(text, what)
    if not text.strip():
        raise ValueError(f"{what}: the file is empty (expected a JSON object)")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise ValueError(f"{what}: malformed JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------
# the target: a distribution spec, validated by building it
# ---------------------------------------------------------------------------------------------

_PARAM_IN_MSG = re.compile(r"^[A-Za-z_]\w*\((\w+)=")


def _check_spec(spec, path: str) -> None:
    """Build ``spec`` with ``dl.from_spec``; a failure names the field path inside the spec."""
    from .distributions import from_spec

    if isinstance(spec, dict) and spec.get("type") == "mixture":
        comps = spec.get("components")
        if isinstance(comps, list):
            for i, c in enumerate(comps):
                _check_spec(c, f"{path}.components[{i}]")
    try:
        from_spec(spec)
    except ValueError as exc:
        msg = str(exc)
        m = _PARAM_IN_MSG.match(msg)
        if m and isinstance(spec, dict) and m.group(1) in spec:
            path = f"{path}.{m.group(1)}"
        raise ValueError(f"{path}: {msg}") from None
    except (TypeError, IndexError, RuntimeError) as exc:  # torch's complaints about shapes and types
        raise ValueError(f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def _json_value_ok(v, depth=0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if v is None or isinstance(v, (bool, str, int)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_json_value_ok(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_value_ok(x, depth + 1) for k, x in v.items())
    return False


# ---------------------------------------------------------------------------------------------
# the schema
# ---------------------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


#: model families a scenario can fit, with the target dimension each accepts (``None``: the
#: target's own dimension)
FAMILIES = {"normal": 1, "student_t": 1, "mvn": 2, "diag": 2, "mixture": None, "categorical": 1, "categorical_topk": 1}
#: the families of a softmax student over a Categorical target's outcomes (divlab.fit.categorical):
#: exact sums, estimator "auto", no init (a uniform start), ``topk`` for the top-k student
CATEGORICAL_FAMILIES = ("categorical", "categorical_topk")
#: the sample divergences with an exact sum between Categoricals
CATEGORICAL_SAMPLE = ("wasserstein", "mmd", "energy")
#: largest number of components of the mixture family
MAX_COMPONENTS = 5  # as divlab.fit.families.MAX_COMPONENTS
#: estimators a scenario can name; "auto" picks per divergence: quadrature for a density
#: divergence, samples for a sample divergence (so a lesson can race KL against Sinkhorn)
ESTIMATORS = ("auto", "quadrature", "mc", "samples")
#: divergences fitted from samples (``estimator="samples"``)
SAMPLE_FITTABLE = ("sinkhorn", "mmd", "energy", "wasserstein", "sliced_wasserstein")

_LIMIT = 1e6
#: the smallest scale a distribution accepts (divlab.distributions.base.MIN_SCALE)
_MIN_SCALE = 1e-9
#: ... and the smallest relative to the location's distance from 0 (base.REL_SCALE)
_REL_SCALE = 1e-10
_RANGES = {  # flat parameter name (without its component index) -> (low, high, low_open, high_open)
    "loc": (-_LIMIT, _LIMIT, False, False), "loc_x": (-_LIMIT, _LIMIT, False, False),
    "loc_y": (-_LIMIT, _LIMIT, False, False), "scale": (_MIN_SCALE, _LIMIT, False, False),
    "scale_x": (_MIN_SCALE, _LIMIT, False, False), "scale_y": (_MIN_SCALE, _LIMIT, False, False),
    "corr": (-1.0, 1.0, True, True), "df": (1e-3, 1000.0, False, False), "w": (0.0, _LIMIT, True, False),
}


def init_names(family: str, dim: int, components: int | None = None) -> list[str]:
    """The flat parameter names of a model family (the keys of ``init`` and of
    ``FitResult.trajectory``): normal loc, scale; student_t loc, scale, df; mvn loc_x, loc_y,
    scale_x, scale_y, corr; diag the same without corr; mixture w1..wK then loc1..locK, scale1..
    scaleK in 1D, loc_x1.., loc_y1.., scale_x1.., scale_y1.., corr1.. in 2D."""
    if family == "normal":
        return ["loc", "scale"]
    if family == "student_t":
        return ["loc", "scale", "df"]
    if family == "mvn":
        return ["loc_x", "loc_y", "scale_x", "scale_y", "corr"]
    if family == "diag":
        return ["loc_x", "loc_y", "scale_x", "scale_y"]
    if family in CATEGORICAL_FAMILIES:
        return []
    if family == "mixture":
        parts = ["w", "loc", "scale"] if dim == 1 else ["w", "loc_x", "loc_y", "scale_x", "scale_y", "corr"]
        return [f"{b}{k}" for b in parts for k in range(1, (components or 1) + 1)]
    raise ValueError(f"init_names(family={family!r}): family must be one of {', '.join(FAMILIES)}")


def _base_name(name: str) -> str:
    return re.sub(r"\d+$", "", name)


class ModelSpec(BaseModel):
    """The fitted model q: its family, the number of components (mixture only) and the starting
    point as flat parameter names (see :func:`init_names`; absent: the fit's default start)."""

    model_config = _STRICT
    family: Literal["normal", "student_t", "mvn", "diag", "mixture", "categorical", "categorical_topk"] = "normal"
    components: int | None = Field(default=None, ge=1, le=MAX_COMPONENTS)
    init: dict[str, float] | None = None
    #: the top-k student's number of free outcomes (family "categorical_topk" only)
    topk: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _init_ok(self) -> "ModelSpec":
        if self.family == "mixture" and self.components is None:
            raise ValueError(f".components: the mixture family needs components (1..{MAX_COMPONENTS})")
        if self.family != "mixture" and self.components is not None:
            raise ValueError(f".components: only the mixture family has components (family is {self.family!r})")
        if (self.family == "categorical_topk") != (self.topk is not None):
            raise ValueError(".topk: the categorical_topk family needs topk (its free outcomes), and only it has one")
        if self.family in CATEGORICAL_FAMILIES and self.init is not None:
            raise ValueError(f".init: the {self.family} student starts uniform; leave init out")
        if self.init is None:
            if self.family in ("normal",):
                raise ValueError(".init: required field is missing (the normal family starts at loc, scale)")
            return self
        for name, value in self.init.items():
            base = _base_name(name)
            if base not in _RANGES:
                continue  # reported below with the list of allowed names
            lo, hi, lo_open, hi_open = _RANGES[base]
            if not math.isfinite(value) or (value <= lo if lo_open else value < lo) or (value >= hi if hi_open else value > hi):
                rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
                raise ValueError(f".init.{name}: must be in {rng} (got {value!r})")
        for name, value in self.init.items():  # the distributions' relative rule: scale >= 1e-10·|loc|
            loc = self.init.get(name.replace("scale", "loc", 1)) if name.startswith("scale") else None
            if isinstance(loc, (int, float)) and value < _REL_SCALE * abs(loc):
                raise ValueError(f".init.{name}: must be >= 1e-10·|{name.replace('scale', 'loc', 1)}| = "
                                 f"{_REL_SCALE * abs(loc):g} here (float64 cannot resolve a narrower bump this far "
                                 f"from 0; got {value!r})")
        return self

    def check_names(self, dim: int) -> None:
        """Init names against the family and the target's dimension (a one-line error naming the field)."""
        if self.init is None:
            return
        allowed = init_names(self.family, dim, self.components)
        for name in self.init:
            if name not in allowed:
                raise ValueError(f".model.init.{name}: unknown parameter of the {dim}D {self.family} family "
                                 f"(allowed: {', '.join(allowed)})")
        missing = [n for n in allowed if n not in self.init]
        if missing:
            raise ValueError(f".model.init.{missing[0]}: missing (give every parameter of the {dim}D "
                             f"{self.family} family: {', '.join(allowed)}, or no init at all)")


def _fittable() -> list[str]:
    from .divergences.registry import catalogue

    dens = [s.key for s in catalogue() if s.from_logs is not None and all(p.kind == "number" for p in s.params)]
    return dens + [k for k in SAMPLE_FITTABLE if k not in dens]


def _is_sample_divergence(key: str) -> bool:
    return key in SAMPLE_FITTABLE


def _estimators_of(key: str) -> tuple[str, ...]:
    """The estimators a fit of divergence ``key`` can use."""
    from .divergences.registry import get

    if _is_sample_divergence(key):
        return ("samples",)
    return ("quadrature",) + (("mc",) if "mc" in get(key).estimators else ())


class DivergenceChoice(BaseModel):
    """One divergence to minimize: a registry key and its parameters (defaults where absent)."""

    model_config = _STRICT
    key: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _known(cls, v: str) -> str:
        allowed = _fittable()
        if v not in allowed:
            raise ValueError(f"{v!r} is not a divergence that can be fitted here (allowed: {', '.join(allowed)})")
        return v

    @model_validator(mode="after")
    def _params_ok(self) -> "DivergenceChoice":
        from .divergences.registry import get

        spec = get(self.key)
        names = [p.name for p in spec.params]
        for name, value in self.params.items():
            if name not in names:
                raise ValueError(f".params.{name}: unknown parameter of {self.key!r} "
                                 f"(allowed: {', '.join(names) or 'none'})")
            par = spec.param(name)
            if isinstance(value, bool) and not par.choices:
                raise ValueError(f".params.{name}: must be a number {par.allowed()} (got {value!r})")
            if par.choices and any(type(value) is not type(c) for c in par.choices[:1]):
                raise ValueError(f".params.{name}: must be {par.allowed()} (got {value!r})")
            if not _json_value_ok(value):
                raise ValueError(f".params.{name}: must be a finite number or a string (got {value!r})")
            try:
                par.check(self.key, value)
            except ValueError as exc:
                msg = str(exc).split("): ", 1)[-1]
                raise ValueError(f".params.{name}: {msg} (got {value!r})") from None
        return self

    def resolved(self) -> dict:
        """The parameters with defaults filled in."""
        from .divergences.registry import get

        return get(self.key).resolve_params(dict(self.params), owner=f"divergence {self.key!r}")


class OptimizerSpec(BaseModel):
    model_config = _STRICT
    name: Literal["adam", "sgd", "lbfgs"] = "adam"
    lr: float = Field(default=0.05, gt=0, le=10)
    #: at most this server's limit (``DIVLAB_MAX_STEPS``, read when a scenario is validated), so a
    #: link or a file never asks for more than the steps control can
    steps: int = Field(default=300, ge=1)

    @field_validator("steps")
    @classmethod
    def _steps_within_limit(cls, v: int) -> int:
        from . import limits

        cap = limits.value("steps")
        if v > cap:
            raise ValueError(f"must be <= {cap} (this server's limit, {limits.LIMITS['steps'].env}; got {v})")
        return v


class ViewSpec(BaseModel):
    model_config = _STRICT
    frames: int = Field(default=60, ge=10, le=200)
    show_loss: bool = True


#: largest point cloud (empirical target) a scenario may hold
MAX_POINTS = 20_000


class Scenario(BaseModel):
    """A whole fitting scenario, 1D or 2D (see the module docstring).

    ``estimator``: "quadrature" (grid), "mc" (reparameterized Monte Carlo, KL/reverse KL/α),
    "samples" (sample divergences: sinkhorn, mmd, energy), or "auto" (quadrature for each
    density divergence, samples for each sample divergence). ``samples``: the number of model
    samples per step for "mc"/"samples" (absent: the fit's default)."""

    model_config = _STRICT
    version: Literal[1] = 1
    title: str = Field(default="", max_length=200)
    target: dict[str, Any]
    model: ModelSpec
    divergences: list[DivergenceChoice] = Field(min_length=1, max_length=6)
    estimator: Literal["auto", "quadrature", "mc", "samples"] = "quadrature"
    samples: int | None = Field(default=None, ge=16, le=4096)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    view: ViewSpec = Field(default_factory=ViewSpec)

    @field_validator("target")
    @classmethod
    def _buildable(cls, v: dict) -> dict:
        if not _json_value_ok(v):
            raise ValueError(f": must be a JSON distribution spec with finite numbers, nested at most {MAX_DEPTH} levels")
        if v.get("type") == "empirical" and isinstance(v.get("points"), list) and len(v["points"]) > MAX_POINTS:
            raise ValueError(f".points: {len(v['points'])} points is too many (at most {MAX_POINTS})")
        _check_spec(v, "")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        d = self.build_target()
        if self.model.family in CATEGORICAL_FAMILIES or d.spec_type == "categorical":
            return self._categorical_ok(d)
        want = FAMILIES[self.model.family]
        if want is not None and d.dim != want:
            raise ValueError(f".target: the {self.model.family} model family is {want}D but this target is {d.dim}D")
        self.model.check_names(d.dim)
        dens = getattr(d, "has_density", True)
        for i, choice in enumerate(self.divergences):
            est = self.estimator_for(choice.key)
            if est not in _estimators_of(choice.key):
                raise ValueError(f".divergences[{i}].key: {choice.key!r} cannot be fitted with estimator "
                                 f"{self.estimator!r} (it allows: {', '.join(_estimators_of(choice.key))}; "
                                 "or use estimator 'auto')")
            if est != "samples" and not dens:
                raise ValueError(f".divergences[{i}].key: {choice.key!r} needs the target's density, but a "
                                 f"{d.spec_type} target is a point cloud without one (use {', '.join(SAMPLE_FITTABLE)})")
        if self.samples is not None and all(self.estimator_for(c.key) == "quadrature" for c in self.divergences):
            raise ValueError(".samples: only used by the mc and samples estimators (this scenario uses quadrature)")
        return self

    def _categorical_ok(self, d) -> "Scenario":
        """A Categorical target with a categorical student, fitted on exact sums."""
        if d.spec_type != "categorical":
            raise ValueError(f".target: the {self.model.family} student needs a categorical target (got {d.spec_type})")
        if self.model.family not in CATEGORICAL_FAMILIES:
            raise ValueError(f".model.family: a categorical target is fitted by the {' or '.join(CATEGORICAL_FAMILIES)} "
                             f"family (got {self.model.family!r})")
        if self.model.topk is not None and not self.model.topk < d.K:
            raise ValueError(f".model.topk: must be < {d.K} (the target's number of outcomes)")
        if self.estimator != "auto":
            raise ValueError(f".estimator: a categorical student is fitted on exact sums; use 'auto' (got {self.estimator!r})")
        if self.samples is not None:
            raise ValueError(".samples: not used by a categorical fit (the sums are exact)")
        for i, choice in enumerate(self.divergences):
            if _is_sample_divergence(choice.key) and choice.key not in CATEGORICAL_SAMPLE:
                raise ValueError(f".divergences[{i}].key: {choice.key!r} has no exact sum between Categoricals (use a "
                                 f"density divergence or {', '.join(CATEGORICAL_SAMPLE)})")
            if choice.key == "wasserstein" and choice.resolved().get("order") != 1:
                raise ValueError(f".divergences[{i}].params.order: a categorical student is fitted with W_1 (order 1)")
        return self

    def estimator_for(self, key: str) -> str:
        """The estimator the fit of divergence ``key`` uses (resolving "auto"; "exact" for a
        categorical student)."""
        if self.model.family in CATEGORICAL_FAMILIES:
            return "exact"
        if self.estimator != "auto":
            return self.estimator
        return "samples" if _is_sample_divergence(key) else "quadrature"

    @property
    def dim(self) -> int:
        """The dimension of the target (1 or 2)."""
        return self.build_target().dim

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data) -> "Scenario":
        if not isinstance(data, dict):
            raise ValueError(f"scenario: expected a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(_one_line(exc)) from None

    @classmethod
    def from_json(cls, text) -> "Scenario":
        return cls.from_dict(_parse_json(text))

    @classmethod
    def from_file(cls, path) -> "Scenario":
        return cls.from_json(_read_limited(path))

    @classmethod
    def from_url_param(cls, s: str) -> "Scenario":
        """Strict inverse of :meth:`to_url_param`: only the urlsafe base64 alphabet, no padding,
        at most 1 MB once decompressed."""
        if not isinstance(s, str) or not s:
            raise ValueError("scenario URL parameter: expected a non-empty string")
        if len(s) > MAX_BYTES:
            raise ValueError(f"scenario URL parameter: {len(s)} characters is too long (at most {MAX_BYTES})")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", s):
            bad = next(c for c in s if not (c.isascii() and (c.isalnum() or c in "_-")))
            raise ValueError(f"scenario URL parameter: character {bad!r} is not allowed (urlsafe base64 without padding)")
        if len(s) % 4 == 1:
            raise ValueError("scenario URL parameter: truncated (invalid base64 length)")
        try:
            raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("scenario URL parameter: invalid base64") from None
        d = zlib.decompressobj()
        try:
            text = d.decompress(raw, MAX_BYTES + 1)
        except zlib.error:
            raise ValueError("scenario URL parameter: not zlib-compressed data (truncated or corrupted)") from None
        if len(text) > MAX_BYTES or d.unconsumed_tail:
            raise ValueError(f"scenario URL parameter: decompresses to more than {MAX_BYTES} bytes")
        if not d.eof:
            raise ValueError("scenario URL parameter: truncated (the compressed data is incomplete)")
        if d.unused_data:
            raise ValueError("scenario URL parameter: trailing data after the compressed scenario")
        return cls.from_json(text)

    # -- export -------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON data; optional fields that are absent (``None``) are left out, so
        ``Scenario.from_dict(sc.to_dict()) == sc`` and a 1D scenario keeps its compact form."""
        data = self.model_dump(mode="json")
        for parent, key in ((data, "samples"), (data["model"], "components"), (data["model"], "init"),
                            (data["model"], "topk")):
            if parent.get(key) is None:
                parent.pop(key, None)
        return data

    def to_json(self, indent: int | None = 2) -> str:
        """Canonical JSON (sorted keys); ``indent=None`` for the compact form."""
        sep = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent, separators=sep, ensure_ascii=False,
                          allow_nan=False)

    def to_url_param(self) -> str:
        raw = zlib.compress(self.to_json(indent=None).encode("utf-8"), 9)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def with_overrides(self, *, divergences: list[str] | None = None, steps: int | None = None) -> "Scenario":
        """A copy with other divergences (default parameters) and/or another step count, validated."""
        data = self.to_dict()
        if divergences is not None:
            data["divergences"] = [{"key": k, "params": {}} for k in divergences]
            if data["estimator"] != "auto" and any(
                    data["estimator"] not in _estimators_of(k) for k in divergences if k in _fittable()):
                data["estimator"] = "auto"  # e.g. --divergence kl,sinkhorn on a quadrature lesson
            if data["estimator"] == "quadrature" or (data["estimator"] == "auto"
                                                     and not any(_is_sample_divergence(k) for k in divergences)):
                data.pop("samples", None)  # nothing samples any more (e.g. --divergence kl on a Sinkhorn lesson)
        if steps is not None:
            data["optimizer"]["steps"] = steps
        return Scenario.from_dict(data)

    # -- use ----------------------------------------------------------------------------------

    def build_target(self):
        from .distributions import from_spec

        return from_spec(self.target)


def _loc_path(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part)
            if not name.isidentifier():  # a key such as "\n" or "a b" from an uploaded file: quoted, one line
                out += f"[{name!r}]"
                continue
            out += ("." if out else "") + name
    return out


_FIELDS = {
    "": Scenario, "model": ModelSpec, "optimizer": OptimizerSpec, "view": ViewSpec,
}


def _one_line(exc: ValidationError) -> str:
    """The first pydantic error as one line: ``scenario.<path>: <what is wrong> (got <value>)``."""
    err = exc.errors(include_url=False)[0]
    loc = list(err.get("loc", ()))
    typ, msg, got = err.get("type", ""), err.get("msg", ""), err.get("input")
    if typ == "value_error":
        msg = msg.removeprefix("Value error, ")
        if msg[:1] in ".:[":
            head = "scenario." + _loc_path(loc) if loc else "scenario"
            msg = msg[1:].lstrip() if msg[0] == ":" else msg
            return f"{head}{'' if msg[:1] in '.[' else ': '}{msg}"
        return f"scenario.{_loc_path(loc)}: {msg}"
    path = _loc_path(loc)
    if typ == "extra_forbidden":
        parent = _loc_path(loc[:-1])
        model = _FIELDS.get(parent)
        allowed = f" (allowed: {', '.join(model.model_fields)})" if model else ""
        return f"scenario.{path}: unknown field{allowed}"
    if typ == "missing":
        return f"scenario.{path}: required field is missing"
    got_s = repr(got)
    if len(got_s) > 60:
        got_s = got_s[:57] + "..."
    return f"scenario.{path}: {msg} (got {got_s})"


def _read_limited(path, what: str | None = None) -> bytes:
    path = Path(path)
    what = what or str(path)
    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"{what}: file is too large (more than {MAX_BYTES} bytes)")
    return data


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------

def fit_groups(sc: Scenario) -> list[list[int]]:
    """How :func:`run_scenario` splits the divergences into fit calls: indices of
    ``sc.divergences`` per call. Divergences with the same estimator and distinct keys share one
    batched call; a repeated key (e.g. α at several values) gets a call of its own."""
    groups: list[list[int]] = []
    by_est: dict[str, list[int]] = {}
    for i, d in enumerate(sc.divergences):
        by_est.setdefault(sc.estimator_for(d.key), []).append(i)
    for idx in by_est.values():
        keys = [sc.divergences[i].key for i in idx]
        if len(set(keys)) == len(keys):
            groups.append(idx)
        else:
            groups.extend([i] for i in idx)
    return groups


def run_scenario(sc: Scenario, callback=None) -> list:
    """Fit the model to the target once per divergence, each from the scenario's starting point,
    with the scenario's optimizer and seed. Returns one :class:`~divlab.fit.FitResult` per entry of
    ``sc.divergences``, in order. Deterministic: the same scenario gives identical trajectories.

    ``callback(i, step, params, loss)`` is called per step of fit call ``i`` (see
    :func:`fit_groups`; for progress bars)."""
    from .fit import fit

    target = sc.build_target()
    common = dict(family=sc.model.family, steps=sc.optimizer.steps, lr=sc.optimizer.lr,
                  optimizer=sc.optimizer.name, seed=sc.seed)
    if sc.model.init is not None:
        common["init"] = dict(sc.model.init)
    if sc.model.components is not None:
        common["components"] = sc.model.components
    if sc.model.topk is not None:
        common["topk"] = sc.model.topk
    out: list = [None] * len(sc.divergences)
    for g, idx in enumerate(fit_groups(sc)):
        est = sc.estimator_for(sc.divergences[idx[0]].key)
        kw = dict(common, estimator=est)
        if est not in ("quadrature", "exact") and sc.samples is not None:
            kw["n"] = sc.samples
        cb = None if callback is None else (lambda step, params, loss, _g=g: callback(_g, step, params, loss))
        if len(idx) == 1:
            d = sc.divergences[idx[0]]
            out[idx[0]] = fit(target, divergence=d.key, params=d.resolved(), callback=cb, **kw)
        else:
            # distinct keys: one batch (each member follows the path it would follow alone)
            divs = [sc.divergences[i] for i in idx]
            res = fit(target, divergence=[d.key for d in divs], params={d.key: d.resolved() for d in divs},
                      callback=cb, **kw)
            for i, r in zip(idx, res):
                out[i] = r
    return out


# ---------------------------------------------------------------------------------------------
# presets (lessons)
# ---------------------------------------------------------------------------------------------

_PRESET_KEYS = {"id", "title", "look_for", "page", "scenario"}


def _load_preset_file(path: Path) -> dict:
    data = _parse_json(_read_limited(path, f"preset {path.name}"), f"preset {path.name}")
    if not isinstance(data, dict):
        raise ValueError(f"preset {path.name}: expected a JSON object")
    keys = set(data)
    if keys != _PRESET_KEYS:
        extra, missing = sorted(keys - _PRESET_KEYS), sorted(_PRESET_KEYS - keys)
        raise ValueError(f"preset {path.name}: " + (f"unknown key {extra[0]!r}" if extra else f"missing key {missing[0]!r}"))
    for k in ("id", "title", "look_for", "page"):
        if not isinstance(data[k], str) or not data[k]:
            raise ValueError(f"preset {path.name}: {k} must be a non-empty string")
    try:
        data["scenario"] = Scenario.from_dict(data["scenario"])
    except ValueError as exc:
        raise ValueError(f"preset {data['id']!r}: {exc}") from None
    return data


@functools.lru_cache(maxsize=256)
def _load_preset_cached(path: str, mtime_ns: int, size: int) -> dict:
    return _load_preset_file(Path(path))


def presets() -> list[dict]:
    """Every lesson shipped with divlab, sorted by id: dicts with ``id``, ``title``, ``look_for``
    (a paragraph on what to watch), ``page`` and a validated ``scenario`` (:class:`Scenario`).
    Files are parsed once per version (path, modification time, size); each call returns new dicts."""
    out = []
    for p in sorted(PRESET_DIR.glob("*.json")):
        st = p.stat()
        out.append(dict(_load_preset_cached(str(p), st.st_mtime_ns, st.st_size)))
    return sorted(out, key=lambda d: d["id"])


def load_preset(preset_id: str) -> dict:
    """The lesson with this id (see :func:`presets`); an unknown id raises ``ValueError`` listing them."""
    all_ = presets()
    for p in all_:
        if p["id"] == preset_id:
            return p
    raise ValueError(f"preset {preset_id!r} is unknown (allowed: {', '.join(p['id'] for p in all_)})")
