"""Continuation in a target parameter, and the phase diagram of covering versus mode-seeking.

:func:`continuation` follows every optimum of D(p_v‖q) over a model family as a scalar
parameter v of the target varies (e.g. the separation d of 0.5·N(−d, 1) + 0.5·N(d, 1)):

1. at each value every live branch is continued by one :func:`dl.fit` started from the branch's
   optimum at the previous value (a warm start, so a branch is followed for as long as it
   exists);
2. :func:`dl.local_optima` (many starts, one batch) discovers optima that no branch reached:
   each starts a new branch;
3. a branch whose warm-started fit lands on another branch's optimum has vanished there (a
   saddle-node / fold: its basin closed) and ends with that reason; so does one whose fit
   diverges.

The global optimum at each value is the branch with the lowest value. Where a different branch
becomes global, the switch value is refined (both branches continued to the estimated
crossing by warm-started fits; Illinois regula falsi on their value difference), so the
critical parameter is found to about ``refine_tol`` rather than to the spacing of ``values``.

:func:`phase_diagram` runs this for several divergences over separations of a two-mode target
(by default the symmetric 0.5·N(−d, 1) + 0.5·N(d, 1)) and says for each whether the best fit
*covers* both modes or *sits on one*: the global optimum is "covering" while it is centred on
the target's mean (|μ − E_p X| ≤ ``centre_tol``·σ: the symmetric, mass-covering solution) and
"mode-seeking" once it has moved off it onto one mode. It also reports the mode metrics
(:func:`dl.mode_metrics`) of the global optimum at every separation, and the critical
separation where the global optimum switches (None when it never does: forward KL matches the
moments μ = 0, σ² = 1 + d² at every d).

For reverse KL on the symmetric target the switch is first-order: the off-centre branches are
born at a fold before they become global, and the centred branch survives as a local optimum
after (at d = 3: value 0.8406 against 0.6888), so the critical separation is where their values
cross, not where a branch appears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..distributions import Distribution, Mixture, Normal
from .core import fit
from .explore import local_optima

__all__ = ["Branch", "Continuation", "continuation", "PhaseDiagram", "phase_diagram", "two_modes"]


def two_modes(d: float) -> Mixture:
    """0.5·N(−d, 1) + 0.5·N(d, 1): two unit modes at separation 2d (bimodal for d > 1)."""
    return Mixture([Normal(-float(d), 1.0), Normal(float(d), 1.0)], weights=[0.5, 0.5])


@dataclass
class Branch:
    """One optimum followed along the parameter: ``index[i]`` is the position in
    ``Continuation.values`` of its i-th point; ``params[i]`` and ``losses[i]`` the optimum there."""

    id: int
    index: list = field(default_factory=list)
    params: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    status: str = "alive"

    def at(self, k: int):
        """(params, loss) at value index k, or None when the branch does not exist there."""
        if k in self.index:
            i = self.index.index(k)
            return self.params[i], self.losses[i]
        return None

    def as_dict(self, values) -> dict:
        return {"id": self.id, "values": [float(values[k]) for k in self.index], "params": self.params,
                "losses": self.losses, "status": self.status}


@dataclass
class Continuation:
    """All branches of optima over ``values`` (see :func:`continuation`).

    ``global_branch[k]``: the id of the branch with the lowest value at ``values[k]`` (ties
    within ``tol``, e.g. mirror-image optima, go to the lower id); ``switches``: the refined
    parameter values where the global branch changes, as dicts {value, from, to, bracket}.
    """

    divergence: str
    divergence_params: dict
    family: str
    values: np.ndarray
    branches: list
    global_branch: list
    switches: list
    info: dict = field(default_factory=dict)

    def branch(self, bid: int) -> Branch:
        return next(b for b in self.branches if b.id == bid)

    def best(self, k: int) -> dict:
        """The global optimum at ``values[k]``: params, value and branch id (no branch alive there,
        e.g. every fit ended where the divergence is +∞: empty params, value +∞, branch None)."""
        bid = self.global_branch[k] if k < len(self.global_branch) else None
        if bid is None or not any(b.id == bid for b in self.branches):
            return {"params": {}, "value": math.inf, "branch": None}
        b = self.branch(bid)
        p, v = b.at(k)
        return {"params": dict(p), "value": v, "branch": b.id}

    def as_dict(self) -> dict:
        return {"divergence": self.divergence, "divergence_params": self.divergence_params, "family": self.family,
                "values": self.values.tolist(), "branches": [b.as_dict(self.values) for b in self.branches],
                "global_branch": self.global_branch, "switches": self.switches}


def _distance(a: dict, b: dict) -> float:
    """Scale-free distance between two parameter dicts: location-like entries in units of the
    scale, scale-like entries as log ratios, others relative."""
    sc = [v for k, v in b.items() if "scale" in k and v > 0]
    scale = math.exp(float(np.mean(np.log(sc)))) if sc else 1.0
    out = 0.0
    for k, vb in b.items():
        va = a.get(k, vb)
        if "scale" in k or k == "df":
            out = max(out, abs(math.log(max(va, 1e-300)) - math.log(max(vb, 1e-300))))
        elif k.startswith("loc"):
            out = max(out, abs(va - vb) / scale)
        else:
            out = max(out, abs(va - vb) / (1.0 + abs(vb)))
    return out


def _check_values(owner, values):
    try:
        vals = np.asarray([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}(values={values!r}): values must be a list of numbers") from None
    if vals.size < 2 or not np.isfinite(vals).all():
        raise ValueError(f"{owner}(values={values!r}): give at least two finite values")
    d = np.diff(vals)
    if not ((d > 0).all() or (d < 0).all()):
        raise ValueError(f"{owner}(values={values!r}): values must be strictly monotone")
    return vals


def _check_int(owner, name, v, low):
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{owner}({name}={v!r}): {name} must be an integer >= {low}")
    return v


def continuation(make_target, values, divergence="reverse_kl", family: str = "normal", *, params: dict | None = None,
                 restarts: int = 16, steps: int = 300, lr: float = 0.05, seed: int | None = 0, tol: float = 0.02,
                 refine_tol: float | None = 1e-3, value_tol: float = 1e-7) -> Continuation:
    """Follow every optimum branch of ``divergence``(make_target(v)‖model) as v runs over ``values``.

    - ``make_target``: v -> a divlab distribution (e.g. :func:`two_modes`).
    - ``values``: strictly monotone parameter values (at least two).
    - ``restarts``, ``seed``: the :func:`dl.local_optima` search at each value (discovery);
      ``steps``, ``lr``: each fit; ``params``: the divergence's parameters.
    - ``tol``: two optima are the same when their scale-free distance (locations in units of the
      scale, log-scale differences) is below it.
    - ``refine_tol``: refine each switch of the global branch until its step in v is below this (None: no
      refinement; the switch is then placed by linear interpolation of the value difference).
    - ``value_tol``: values closer than this count as tied (mirror-image optima).
    """
    owner = "continuation"
    if not callable(make_target):
        raise ValueError(f"{owner}(make_target={make_target!r}): make_target must be a function of the parameter")
    vals = _check_values(owner, values)
    restarts = _check_int(owner, "restarts", restarts, 1)
    steps = _check_int(owner, "steps", steps, 1)
    for name, v in (("tol", tol), ("lr", lr), ("value_tol", value_tol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{owner}({name}={v!r}): {name} must be a finite number > 0")
    if refine_tol is not None and (isinstance(refine_tol, bool) or not isinstance(refine_tol, (int, float))
                                   or not refine_tol > 0):
        raise ValueError(f"{owner}(refine_tol={refine_tol!r}): refine_tol must be > 0 or None")
    kw = dict(steps=steps, lr=lr, params=params, seed=seed)

    def target_at(v):
        t = make_target(float(v))
        if not isinstance(t, Distribution):
            raise ValueError(f"{owner}(make_target): make_target({v:g}) returned {type(t).__name__}, "
                             "not a divlab distribution")
        return t

    branches: list[Branch] = []
    fits = 0
    key, dparams = getattr(divergence, "key", divergence), {}
    for k, v in enumerate(vals):
        target = target_at(v)
        # 1. continue the live branches from their previous optimum
        live = [b for b in branches if b.status == "alive"]
        for b in live:
            r = fit(target, family, divergence, init=dict(b.params[-1]), **kw)
            fits += 1
            key, dparams = r.divergence, r.divergence_params
            if r.diverged or not math.isfinite(r.final_loss):
                b.status = f"ended at {v:g}: the warm-started fit {r.status}"
                continue
            b.index.append(k)
            b.params.append(dict(r.params))
            b.losses.append(float(r.final_loss))
        # a branch that fell onto an older branch's optimum has vanished (its basin closed)
        here = [b for b in live if b.status == "alive" and b.index and b.index[-1] == k]
        for i, b in enumerate(here):
            for a in here[:i]:
                if a.status == "alive" and _distance(b.params[-1], a.params[-1]) <= tol:
                    b.status = f"ended at {v:g}: joined branch {a.id} (its optimum vanished)"
                    b.index.pop(), b.params.pop(), b.losses.pop()
                    break
        # 2. discover optima no branch reached
        opt = local_optima(target, family, divergence, restarts=restarts, seed=seed, steps=steps, lr=lr,
                           params=params)
        fits += restarts
        here = [b for b in branches if b.status == "alive" and b.index and b.index[-1] == k]
        for o in opt:
            if all(_distance(o.params, b.params[-1]) > tol for b in here):
                nb = Branch(id=len(branches), index=[k], params=[dict(o.params)], losses=[float(o.value)])
                branches.append(nb)
                here.append(nb)
    # global branch per value
    glob = []
    for k in range(vals.size):
        cands = [(b.at(k)[1], b.id) for b in branches if b.at(k) is not None]
        if not cands:
            glob.append(-1)
            continue
        best = min(c[0] for c in cands)
        glob.append(min(bid for val, bid in cands if val <= best + value_tol * (1 + abs(best))))
    # switches of the global branch, refined by bisection with warm-started fits
    switches = []
    by_id = {b.id: b for b in branches}
    for k in range(1, vals.size):
        a_id, b_id = glob[k - 1], glob[k]
        if a_id == b_id or a_id < 0 or b_id < 0:
            continue
        A, B = by_id[a_id], by_id[b_id]
        sw = {"from": a_id, "to": b_id, "bracket": [float(vals[k - 1]), float(vals[k])]}
        pa0, pb1 = A.at(k - 1), B.at(k)
        pa1, pb0 = A.at(k), B.at(k - 1)
        lo, hi = float(vals[k - 1]), float(vals[k])
        if pa1 is not None and pb0 is not None:
            # both branches exist on both sides: the switch is where their values cross
            d0, d1 = pb0[1] - pa0[1], pb1[1] - pa1[1]  # B − A: > 0 before, <= 0 after
            x = lo + (hi - lo) * d0 / (d0 - d1) if d0 != d1 else hi
            if refine_tol is not None:
                # Illinois (regula falsi) on the value difference B − A, each side continued by a
                # warm-started fit from its nearest optimum; stops when the step is < refine_tol
                ia, ib = dict(pa0[0]), dict(pb1[0])
                fl, fh, side = d0, d1, 0
                for _ in range(30):
                    t = target_at(x)
                    ra = fit(t, family, divergence, init=ia, **kw)
                    rb = fit(t, family, divergence, init=ib, **kw)
                    fits += 2
                    if _distance(ra.params, rb.params) <= tol:  # one branch is gone here: no crossing
                        break
                    fx = rb.final_loss - ra.final_loss
                    if fx > 0:
                        lo, fl, ia = x, fx, dict(ra.params)
                        fh = fh / 2 if side == -1 else fh
                        side = -1
                    else:
                        hi, fh, ib = x, fx, dict(rb.params)
                        fl = fl / 2 if side == 1 else fl
                        side = 1
                    x_new = lo + (hi - lo) * fl / (fl - fh) if fl != fh else 0.5 * (lo + hi)
                    done = abs(x_new - x) < refine_tol or fx == 0
                    x = x_new
                    if done:
                        break
            sw.update(value=float(x), kind="values cross (first-order switch)")
        else:
            # the old global branch ended (or the new one was born) inside the bracket
            sw.update(value=0.5 * (lo + hi), kind="branch ended or appeared (located to the bracket)")
        switches.append(sw)
    info = {"fits": fits, "restarts": restarts, "steps": steps, "tol": tol}
    return Continuation(divergence=str(key), divergence_params=dparams, family=family, values=vals,
                        branches=branches, global_branch=glob, switches=switches, info=info)


@dataclass
class PhaseDiagram:
    """Covering versus mode-seeking for each divergence (rows) and separation (columns).

    ``covers[i, j]``: the global optimum is centred (covers both modes); ``loc``, ``scale``,
    ``value``: the global optimum; ``modes``, ``modes_covered``, ``coverage``, ``precision``:
    its mode metrics; ``critical[key]``: the separation where the global optimum switches from
    covering to mode-seeking (None if it never does in the range); ``runs``: the continuations.
    """

    divergences: list
    separations: np.ndarray
    covers: np.ndarray
    loc: np.ndarray
    scale: np.ndarray
    value: np.ndarray
    modes: np.ndarray
    modes_covered: np.ndarray
    coverage: np.ndarray
    precision: np.ndarray
    critical: dict
    runs: dict

    def as_dict(self) -> dict:
        return {"divergences": self.divergences, "separations": self.separations.tolist(),
                "covers": self.covers.tolist(), "loc": self.loc.tolist(), "scale": self.scale.tolist(),
                "value": self.value.tolist(), "modes": self.modes.tolist(),
                "modes_covered": self.modes_covered.tolist(),
                "coverage": self.coverage.tolist(), "precision": self.precision.tolist(), "critical": self.critical}


def phase_diagram(divergences, separations, make_target=None, *, family: str = "normal", params: dict | None = None,
                  centre_tol: float = 0.05, restarts: int = 16, steps: int = 300, lr: float = 0.05,
                  seed: int | None = 0, refine_tol: float | None = 1e-3, metrics: bool = True) -> PhaseDiagram:
    """Where does the best fit switch from covering both modes to sitting on one?

    - ``divergences``: registry keys (or one key); ``params``: their parameters, one dict for all
      or ``{key: {...}}``.
    - ``separations``: increasing values of the target's parameter; ``make_target`` (default
      :func:`two_modes`: 0.5·N(−d, 1) + 0.5·N(d, 1)).
    - "covers" = the global optimum is centred on the target's mean, |μ − E_p X| ≤
      ``centre_tol``·σ (see the module docstring); ``critical[key]`` = the refined switch
      separation of the first covering → mode-seeking change, or None.
    - ``metrics``: also compute :func:`dl.mode_metrics` of each global optimum.
    """
    from .metrics import mode_metrics

    owner = "phase_diagram"
    divs = [divergences] if isinstance(divergences, str) else list(divergences)
    if not divs:
        raise ValueError(f"{owner}(divergences=[]): give at least one divergence")
    seps = _check_values(owner, separations)
    if not (np.diff(seps) > 0).all():
        raise ValueError(f"{owner}(separations={list(separations)!r}): separations must be increasing")
    if isinstance(centre_tol, bool) or not isinstance(centre_tol, (int, float)) or not centre_tol > 0:
        raise ValueError(f"{owner}(centre_tol={centre_tol!r}): centre_tol must be > 0")
    make_target = make_target or two_modes
    per_key = isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values())
    D, S = len(divs), seps.size
    arr = {name: np.full((D, S), np.nan) for name in ("loc", "scale", "value", "coverage", "precision")}
    ints = {name: np.zeros((D, S), dtype=int) for name in ("modes", "modes_covered")}
    covers = np.zeros((D, S), dtype=bool)
    critical, runs = {}, {}
    means = []
    for d in seps:
        t = make_target(float(d))
        m = getattr(t, "mean", None)
        means.append(float(m) if m is not None and getattr(m, "numel", lambda: 1)() == 1 else 0.0)
    for i, key in enumerate(divs):
        p = (params or {}).get(key, {}) if per_key else params
        run = continuation(make_target, seps, key, family, params=p, restarts=restarts, steps=steps, lr=lr,
                           seed=seed, refine_tol=refine_tol)
        runs[key] = run
        for j in range(S):
            best = run.best(j)
            loc, scale = best["params"].get("loc", np.nan), best["params"].get("scale", np.nan)
            arr["loc"][i, j], arr["scale"][i, j], arr["value"][i, j] = loc, scale, best["value"]
            covers[i, j] = bool(abs(loc - means[j]) <= centre_tol * scale)
            if metrics and best["branch"] is not None:
                mm = mode_metrics(make_target(float(seps[j])), Normal(float(loc), float(scale)))
                ints["modes"][i, j], ints["modes_covered"][i, j] = mm["modes"], mm["modes_covered"]
                arr["coverage"][i, j], arr["precision"][i, j] = mm["coverage"], mm["precision"]
        crit = None
        for j in range(1, S):
            if covers[i, j - 1] and not covers[i, j]:
                sw = [s for s in run.switches if s["bracket"] == [float(seps[j - 1]), float(seps[j])]]
                crit = sw[0]["value"] if sw else 0.5 * (seps[j - 1] + seps[j])
                break
        critical[key] = crit
    return PhaseDiagram(divergences=divs, separations=seps, covers=covers, loc=arr["loc"], scale=arr["scale"],
                        value=arr["value"], modes=ints["modes"], modes_covered=ints["modes_covered"],
                        coverage=arr["coverage"], precision=arr["precision"], critical=critical, runs=runs)
