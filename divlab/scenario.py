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
import json
import math
import re
import zlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["Scenario", "ModelSpec", "DivergenceChoice", "OptimizerSpec", "ViewSpec", "run_scenario",
           "presets", "load_preset", "check_json_text", "MAX_BYTES", "MAX_DEPTH", "PRESET_DIR"]

#: largest scenario (or preset) file accepted, in bytes of UTF-8
MAX_BYTES = 1_000_000
#: deepest nesting of JSON objects/arrays accepted (checked before parsing)
MAX_DEPTH = 20
#: lessons shipped with divlab
PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"

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


class InitSpec(BaseModel):
    """Starting parameters of the normal model."""

    model_config = _STRICT
    loc: float = Field(ge=-1e6, le=1e6)
    scale: float = Field(gt=0, le=1e6)


class ModelSpec(BaseModel):
    """The fitted model q: its family and starting point."""

    model_config = _STRICT
    family: Literal["normal"] = "normal"
    init: InitSpec


def _fittable() -> list[str]:
    from .divergences.registry import catalogue

    return [s.key for s in catalogue() if s.from_logs is not None and all(p.kind == "number" for p in s.params)]


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
    name: Literal["adam", "sgd"] = "adam"
    lr: float = Field(default=0.05, gt=0, le=10)
    steps: int = Field(default=300, ge=1, le=5000)


class ViewSpec(BaseModel):
    model_config = _STRICT
    frames: int = Field(default=60, ge=10, le=200)
    show_loss: bool = True


class Scenario(BaseModel):
    """A whole 1D fitting scenario (see the module docstring)."""

    model_config = _STRICT
    version: Literal[1] = 1
    title: str = Field(default="", max_length=200)
    target: dict[str, Any]
    model: ModelSpec
    divergences: list[DivergenceChoice] = Field(min_length=1, max_length=6)
    estimator: Literal["quadrature"] = "quadrature"
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    view: ViewSpec = Field(default_factory=ViewSpec)

    @field_validator("target")
    @classmethod
    def _buildable(cls, v: dict) -> dict:
        if not _json_value_ok(v):
            raise ValueError(f": must be a JSON distribution spec with finite numbers, nested at most {MAX_DEPTH} levels")
        _check_spec(v, "")
        from .distributions import from_spec

        d = from_spec(v)
        if d.dim != 1:
            raise ValueError(f": the normal model family is 1D but this target is {d.dim}D")
        if not getattr(d, "has_density", True):
            raise ValueError(f": type {v.get('type')!r} has no density; fitting by quadrature needs one")
        return v

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
        return self.model_dump(mode="json")

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
            out += ("." if out else "") + str(part)
    return out


_FIELDS = {
    "": Scenario, "model": ModelSpec, "model.init": InitSpec, "optimizer": OptimizerSpec, "view": ViewSpec,
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

def run_scenario(sc: Scenario, callback=None) -> list:
    """Fit the model to the target once per divergence, each from the scenario's starting point,
    with the scenario's optimizer and seed. Returns one :class:`~divlab.fit.FitResult` per entry of
    ``sc.divergences``, in order. Deterministic: the same scenario gives identical trajectories.

    ``callback(i, step, params, loss)`` is called per step of fit ``i`` (for progress bars)."""
    from .fit import fit

    target = sc.build_target()
    init = {"loc": sc.model.init.loc, "scale": sc.model.init.scale}
    common = dict(family=sc.model.family, steps=sc.optimizer.steps, lr=sc.optimizer.lr,
                  optimizer=sc.optimizer.name, init=init, seed=sc.seed, estimator=sc.estimator)
    keys = [d.key for d in sc.divergences]
    if len(set(keys)) == len(keys):
        # distinct keys: one batch (each member follows the path it would follow alone)
        cb = None if callback is None else (lambda step, params, loss: callback(0, step, params, loss))
        res = fit(target, divergence=keys, params={d.key: d.resolved() for d in sc.divergences}, callback=cb,
                  **common)
        return list(res)
    out = []
    for i, d in enumerate(sc.divergences):
        cb = None if callback is None else (lambda step, params, loss, _i=i: callback(_i, step, params, loss))
        out.append(fit(target, divergence=d.key, params=d.resolved(), callback=cb, **common))
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


def presets() -> list[dict]:
    """Every lesson shipped with divlab, sorted by id: dicts with ``id``, ``title``, ``look_for``
    (a paragraph on what to watch), ``page`` and a validated ``scenario`` (:class:`Scenario`)."""
    out = [_load_preset_file(p) for p in sorted(PRESET_DIR.glob("*.json"))]
    return sorted(out, key=lambda d: d["id"])


def load_preset(preset_id: str) -> dict:
    """The lesson with this id (see :func:`presets`); an unknown id raises ``ValueError`` listing them."""
    all_ = presets()
    for p in all_:
        if p["id"] == preset_id:
            return p
    raise ValueError(f"preset {preset_id!r} is unknown (allowed: {', '.join(p['id'] for p in all_)})")
