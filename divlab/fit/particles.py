"""``dl.fit(target, family="particles", ...)``: the model is a cloud of particles moved by a flow.

The particles form the model q = (1/n) Σ δ_{x_i}; the target p stays fixed (``D(p‖q)`` as
everywhere in divlab). Which flow descends which divergence:

- ``"mmd"``: the MMD flow (``dl.flow(..., "mmd")``, Gaussian kernel by default);
- ``"energy"``: the same flow with the energy kernel −|x − y| (MMD² with that kernel is the
  energy distance);
- ``"sinkhorn"``: the Sinkhorn flow of the debiased S_ε;
- ``"reverse_kl"``: KL(q‖p), the divergence SVGD and Langevin descend (the particles are q):
  SVGD by default, unadjusted Langevin with the option ``flow="langevin"``.

Forward ``"kl"`` = KL(p‖q) is not accepted: it is +inf for a particle cloud (q has no density
where p has mass) and no flow here descends it. Every other key raises ``ValueError``.

A fit runs :func:`divlab.fit.flow.flow` with the same arguments, so it gives exactly the flow's
frames for the same seed; the result is a :class:`ParticleFit`, a
:class:`~divlab.fit.flow.FlowResult` whose ``divergence`` is the key asked for, ``flow`` the
dynamics that ran and ``status`` in :func:`~divlab.fit.core.fit`'s words.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields

import numpy as np

from ..distributions import Distribution
from ..divergences.registry import DivergenceSpec, get
from .flow import COMMON, OPTIONS, FlowResult, flow

__all__ = ["ParticleFit", "fit_particles", "PARTICLE_DIVERGENCES"]

#: divergence key -> the flow that descends it (reverse_kl: "svgd", or "langevin" by option)
PARTICLE_DIVERGENCES = {"mmd": "mmd", "energy": "mmd", "sinkhorn": "sinkhorn", "reverse_kl": "svgd"}
#: the divergence's parameters (``params=``) a flow honours, by key
FLOW_PARAMS = {"mmd": ("kernel", "bandwidth"), "energy": (), "sinkhorn": ("epsilon", "debias"), "reverse_kl": ()}
FLOW_NAMES = {"mmd": "MMD flow", "sinkhorn": "Sinkhorn flow", "svgd": "SVGD", "langevin": "Langevin"}
#: fit() arguments that have no meaning for a flow: they must keep their defaults
NOT_FOR_PARTICLES = ("estimator", "optimizer", "tol", "patience", "schedule", "callback", "restarts", "box",
                     "components", "time_budget_s")
OWNER = "fit(family='particles'"


@dataclass
class ParticleFit(FlowResult):
    """The result of ``dl.fit(target, family="particles", ...)``: a :class:`FlowResult` (frames,
    steps, losses, loss_name, particles(frame), model(frame), target_points, info) with

    - ``divergence``: the divergence key asked for ("mmd", "energy", "sinkhorn", "reverse_kl");
    - ``flow``: the flow that ran ("mmd", "sinkhorn", "svgd", "langevin");
    - ``status``: "max_steps" (the flow ran all its steps; flows have no convergence test, the
      flow's own word is "completed") or "diverged: <reason>", as :class:`FitResult` says it.
    """

    family: str = "particles"
    flow: str = ""

    @property
    def label(self) -> str:
        return f"{get(self.divergence).name} · {FLOW_NAMES.get(self.flow, self.flow)}"

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    def as_dict(self) -> dict:
        return {"family": self.family, **super().as_dict(), "flow": self.flow}


def _reject(name, value, why):
    raise ValueError(f"{OWNER}, {name}={value!r}): {why}")


def fit_particles(target, divergence, *, steps, lr, init, seed, n, params, options, **rest):
    """The ``family="particles"`` branch of :func:`divlab.fit.core.fit` (it passes every argument)."""
    from .core import FitBatch, _is_per_key, fit

    defaults = inspect.signature(fit).parameters
    for name in NOT_FOR_PARTICLES:
        value, default = rest[name], defaults[name].default
        if value is not default and not (default is not None and value == default):
            _reject(name, value, f"{name} does not apply to particle flows (keep the default {default!r}; "
                    "for several runs call fit with different seeds)")
    # rest["polish"]: nothing to polish, ignored either way
    if not isinstance(target, Distribution):
        raise ValueError(f"{OWNER}, target={target!r}): target must be a divlab distribution")
    many = isinstance(divergence, (list, tuple))
    divs = list(divergence) if many else [divergence]
    if not divs:
        _reject("divergence", divergence, "give at least one divergence")
    keys = [_key(d) for d in divs]
    opts = _split_options(options, keys)
    per_key = _is_per_key(params)
    particles = _check_init(init, n)
    results = []
    for key in keys:
        given = dict(((params or {}).get(key, {}) if per_key else params) or {})
        flow_opts = {**_flow_params(key, given), **opts.get(key, {})}
        kind = flow_opts.pop("flow", PARTICLE_DIVERGENCES[key])
        if key == "energy":
            flow_opts["kernel"] = "energy"
        try:
            fr = flow(target, kind, n=300 if n is None else n, steps=steps, lr=lr, seed=seed, particles=particles,
                      **flow_opts)
        except ValueError as exc:
            raise ValueError(f"{OWNER}, divergence={key!r}) -> {exc}") from None
        status = "max_steps" if fr.status == "completed" else fr.status
        base = {f.name: getattr(fr, f.name) for f in fields(FlowResult)}
        base.update(divergence=key, status=status, info={**fr.info, "flow_status": fr.status})
        results.append(ParticleFit(**base, flow=kind))
    return FitBatch(results) if many else results[0]


def _key(d) -> str:
    key = d.key if isinstance(d, DivergenceSpec) else d
    accepted = ", ".join(PARTICLE_DIVERGENCES)
    if key in PARTICLE_DIVERGENCES:
        return key
    if key == "kl":
        why = ("forward KL(p‖q) is +inf for a particle model (q has no density where p has mass); SVGD and Langevin "
               "descend KL(q‖p): use divergence='reverse_kl'")
    elif key in ("svgd", "langevin"):
        why = (f"{key} is a flow, not a divergence: it descends KL(q‖p), use divergence='reverse_kl'"
               + (" with options={'flow': 'langevin'}" if key == "langevin" else ""))
    else:
        why = "no particle flow descends it"
    _reject("divergence", key, f"{why} (the particles family accepts: {accepted})")


def _allowed(key) -> set:
    kind = PARTICLE_DIVERGENCES[key]
    out = set(COMMON) | {"record_every"} | set(OPTIONS[kind])
    if key == "energy":
        out -= {"kernel", "bandwidth"}
    if key == "reverse_kl":
        out |= {"flow"} | set(OPTIONS["langevin"])
    return out


def _split_options(options, keys) -> dict:
    """``options`` per divergence ``{key: {option: value}}`` (as fit takes them), or one flat
    ``{option: value}`` when a single divergence is fitted; unknown options raise."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        _reject("options", options, "options must be a dict: {option: value} or {divergence: {option: value}}")
    if options and all(isinstance(v, dict) for v in options.values()):
        per = options
        for k in per:
            if k not in keys:
                _reject("options", options, f"options for {k!r}, which is not fitted here (divergences: "
                        f"{', '.join(keys)})")
    elif len(set(keys)) == 1:
        per = {keys[0]: options}
    else:
        _reject("options", options, "with several divergences give options per divergence: {key: {option: value}}")
    for k, o in per.items():
        bad = sorted(set(o) - _allowed(k))
        if bad:
            _reject("options", options, f"unknown option {bad[0]!r} for divergence {k!r} "
                    f"({PARTICLE_DIVERGENCES[k]} flow; allowed: {', '.join(sorted(_allowed(k)))})")
        if k == "reverse_kl" and "flow" in o and o["flow"] not in ("svgd", "langevin"):
            _reject("options", options, f"flow={o['flow']!r}: the flow of reverse_kl must be 'svgd' or 'langevin'")
    return {k: dict(o) for k, o in per.items()}


def _flow_params(key, given) -> dict:
    """The divergence's parameters as flow options (only those the flow honours; the others raise).
    Parameters left out take the flow's defaults (median bandwidth, ε from the target's spread),
    not the registry's."""
    bad = sorted(set(given) - set(FLOW_PARAMS[key]))
    if bad:
        allowed = ", ".join(FLOW_PARAMS[key]) or "none"
        _reject("params", given, f"the {key} particle flow does not take the parameter {bad[0]!r} "
                f"(allowed: {allowed}; flow settings go in options)")
    out = dict(given)
    if "debias" in out:
        if out.pop("debias") is not True:
            _reject("params", given, "the Sinkhorn flow descends the debiased S_ε only (debias=True)")
    return out


def _check_init(init, n):
    """``init`` for particles: None (the flow's default start), a distribution to draw n from, or
    the starting positions (n,) / (n, 2)."""
    if init is None or isinstance(init, Distribution):
        return init
    if isinstance(init, dict):
        _reject("init", init, "init of the particles family is the starting positions (an array (n,) or (n, 2)) "
                "or a distribution to draw n particles from, not a dict of parameters")
    try:
        arr = np.asarray(init, dtype=float)
    except (TypeError, ValueError):
        _reject("init", init, "init must be an array of positions (n,) / (n, 2), a distribution or None")
    if n is not None and arr.ndim >= 1 and arr.shape[0] != n:
        _reject("n", n, f"init holds {arr.shape[0]} particles; leave n out or make them agree")
    return arr
