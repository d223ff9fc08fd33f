"""The transport map shown on Fit 2D and Flows (issue 17): where the model's mass would have to
move to become the target.

Fit 2D: n = :data:`MAP_N` samples x_i of the fitted model q (seed 0) and n samples y_j of the
target p (seed 1; a clicked point cloud is used as it is when it has at most n points); the
entropic OT map T_ε from the x's to the y's (:func:`divlab.entropic_map`, cost |x − y|²) sends
each x_i to the barycentre of the target points the entropic plan gives it. Flows: the same with
the particles of the last recorded frame as the x's: where the particles still have to go.

**ε** = :data:`MAP_EPS_REL` × s̄², s̄² the target sample's variance averaged over the two axes
(ε is in squared units of x, like |x − y|²). The entropic blur √ε is then about a fifth of
the target's spread (0.22 s̄): small enough that T_ε is close to the optimal (Brenier) map,
whose arrows a student can read (for two Gaussians of equal spread T_ε shrinks the
displacement's spread by about ε/(2s̄²) = 2.5% and keeps the mean move exactly), large enough
that Sinkhorn converges in a few hundred iterations at n = 400 (a fraction of a second). The
solver stops at a row-marginal L1 error of :data:`MAP_TOL` (each arrow's head is then off by
about that fraction of a typical distance, far below a pixel).

The number shown beside the arrows is the **mean squared displacement** (1/n) Σ_i |x_i − T_ε(x_i)|²
over all n points, in squared units of x, in the direction q → p (model to target). It
estimates W₂²(q, p): the barycentric map's cost is at most the entropic plan's (Jensen), and
with n = 400 samples in 2D the sampling error is of order 10% of W₂² for well-separated
distributions; for q = p it is not 0 but the small blur-and-sampling floor (a few percent of s̄²).
"""

from __future__ import annotations

import json
import math
from typing import Sequence

import numpy as np
import torch

__all__ = ["MAP_N", "MAP_EPS_REL", "MAP_TOL", "MAP_ARROWS", "MAP_TOGGLE", "MSD_LABEL", "map_epsilon",
           "transport_map", "fit2d_final_models", "fit2d_maps", "fit2d_shared_panel", "fit2d_map_figure",
           "flows_final_particles", "flows_maps", "flows_map_figure", "map_rows", "map_caption", "maps_key"]

#: samples of q and of p the map is computed on (Fit 2D) / target samples (Flows)
MAP_N = 400
#: ε = MAP_EPS_REL × (the target sample's variance averaged over the axes)
MAP_EPS_REL = 0.05
#: Sinkhorn's stopping rule: row-marginal L1 error
MAP_TOL = 1e-4
MAP_MAX_ITER = 5000
#: arrows drawn per map (of the n points)
MAP_ARROWS = 80
#: the pages' toggle
MAP_TOGGLE = f"Show the transport map (entropic OT, ε = {MAP_EPS_REL:g} × the target's variance)"
#: the displacement column's label (direction and unit)
MSD_LABEL = "mean squared displacement E|x − T_ε(x)|², q → p [squared units of x]"


def _target_cloud(target, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Target points (m, 2) and their weights (None: uniform): a point cloud with at most n
    points as it is, else n samples."""
    from ..distributions import Empirical

    if isinstance(target, Empirical):
        x, w = target.cloud()
        if x.shape[0] <= n:
            return x.to(torch.float64), w.to(torch.float64)
    return torch.as_tensor(target.sample(n, seed=seed), dtype=torch.float64), None


def map_epsilon(y, weights=None, rel: float = MAP_EPS_REL) -> float:
    """ε = ``rel`` × the (weighted) sample variance of ``y`` (m, d) averaged over the d axes, in
    squared units of x; a degenerate sample (all points equal) gets ``rel`` × 1."""
    y = torch.as_tensor(y, dtype=torch.float64)
    w = torch.full((y.shape[0],), 1.0 / y.shape[0], dtype=y.dtype) if weights is None else \
        torch.as_tensor(weights, dtype=y.dtype) / float(torch.as_tensor(weights).sum())
    mean = (w[:, None] * y).sum(0)
    var = float((w[:, None] * (y - mean) ** 2).sum(0).mean())
    if not math.isfinite(var) or var <= 1e-12:
        var = 1.0
    return float(rel) * var


def transport_map(source, target, *, n: int = MAP_N, seed: int = 0, eps_rel: float = MAP_EPS_REL) -> dict:
    """The entropic map from ``source`` to ``target`` on samples (see the module docstring).

    ``source``: a 2D divlab distribution (``n`` samples drawn with ``seed``) or points (k, 2)
    (e.g. particles; non-finite rows are left out). ``target``: a 2D divlab distribution (``n``
    samples with ``seed + 1``, or its point cloud). Returns ``x`` (k, 2) and ``Tx`` (k, 2) as
    arrays, ``epsilon`` (squared units of x), ``msd`` = mean |x − T_ε(x)|² (squared units of
    x), ``rms`` = √msd (units of x), the sample sizes and the solver's ``status``/``iterations``."""
    from ..distributions import Distribution
    from ..divergences.maps import entropic_map

    if isinstance(source, Distribution):
        x = torch.as_tensor(source.sample(n, seed=seed), dtype=torch.float64)
    else:
        x = torch.as_tensor(np.asarray(source, dtype=float), dtype=torch.float64)
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"transport_map(source with shape {tuple(x.shape)}): needs 2D points (k, 2)")
    x = x[torch.isfinite(x).all(1)]
    if x.shape[0] < 1:
        raise ValueError("transport_map: no finite source points")
    y, wy = _target_cloud(target, n, seed + 1)
    eps = map_epsilon(y, wy, eps_rel)
    # one intra-op thread for these small matrices, as the fitting engine does: on a busy 2-core
    # machine the thread pool's hand-off made 4 maps of 150 × 400 points take 1.5-26 s instead of 0.3
    from ..fit.engine import _threads_for

    with _threads_for(x.shape[0] * y.shape[0], x.device):
        m = entropic_map(x, y, eps, target_weights=wy, tol=MAP_TOL, max_iter=MAP_MAX_ITER)
    Tx = m.images.detach().numpy()
    xn = x.numpy()
    msd = float(((xn - Tx) ** 2).sum(1).mean())
    return {"x": xn, "Tx": Tx, "epsilon": eps, "msd": msd, "rms": math.sqrt(msd), "n_source": int(x.shape[0]),
            "n_target": int(y.shape[0]), "status": str(m.info["status"]), "iterations": int(m.info["iterations"])}


def _public(mp: dict, label: str, max_arrows: int = MAP_ARROWS) -> dict:
    """A map for the page: the drawn arrows only (lists, small to cache) and the numbers."""
    from ..viz.arrows import arrow_segments

    idx = arrow_segments(mp["x"], mp["Tx"], max_arrows)["index"]
    out = {k: v for k, v in mp.items() if k not in ("x", "Tx")}
    out.update(label=label, x=mp["x"][idx].tolist(), Tx=mp["Tx"][idx].tolist())
    return out


# ---------------------------------------------------------------------------------------------
# Fit 2D
# ---------------------------------------------------------------------------------------------

def fit2d_final_models(results) -> list[dict]:
    """Each fit's label and final model as a spec (``None`` where it left the finite numbers):
    what :func:`fit2d_maps` needs, small enough to keep in a cached view."""
    out = []
    for r in results:
        try:
            spec = r.model(len(r.losses) - 1).to_spec()
        except (ValueError, TypeError):
            spec = None
        out.append({"label": r.label, "model": spec})
    return out


def fit2d_maps(view: dict, *, n: int = MAP_N, seed: int = 0) -> list[dict]:
    """The entropic map from each fitted model q (its final step) to the target p of a Fit 2D view
    (:func:`divlab.app.fit2d.fit2d_view`): one dict per fit (see :func:`transport_map`, with the
    drawn arrows' ``x``/``Tx`` as lists and the fit's ``label``); a fit without a finite model
    gets ``{"label", "error"}``."""
    from ..distributions import from_spec
    from ..scenario import Scenario

    target = Scenario.from_json(view["scenario"]).build_target()
    out = []
    for fm in view.get("final_models") or []:
        if fm.get("model") is None:
            out.append({"label": fm["label"], "error": "the fitted model is not finite"})
            continue
        out.append(_public(transport_map(from_spec(fm["model"]), target, n=n, seed=seed), fm["label"]))
    return out


def _axes_of(spec: dict, name: str, prefer_mode: str | None = None) -> tuple[str, str]:
    """The axes ("x2", "y2") of the first trace named ``name`` (with ``mode`` containing
    ``prefer_mode`` if given); ("x", "y") when there is none."""
    for d in spec["data"]:
        if d.get("name") == name and (prefer_mode is None or prefer_mode in str(d.get("mode", ""))):
            return d.get("xaxis", "x"), d.get("yaxis", "y")
    return "x", "y"


def _above_target(spec: dict, xa: str, ya: str) -> int | None:
    """The position just above the target drawn on axes (xa, ya): arrows there are over the
    target and under the model / the particles. None (on top) when there is no target trace."""
    for i, d in enumerate(spec["data"]):
        if str(d.get("name", "")).startswith("target p") and (d.get("xaxis", "x"), d.get("yaxis", "y")) == (xa, ya):
            return i + 1
    return None


def _with_arrows(spec: dict, placed: Sequence[tuple[dict, tuple[str, str]]]) -> dict:
    from ..viz.arrows import add_map_arrows_to_spec, make_legend_room, open_at_frame

    out = spec
    for k, (mp, (xa, ya)) in enumerate(placed):
        out = add_map_arrows_to_spec(out, mp["x"], mp["Tx"], xaxis=xa, yaxis=ya, max_arrows=MAP_ARROWS,
                                     showlegend=k == 0, index=_above_target(out, xa, ya))
    before = [d["name"] for d in spec["data"] if d.get("showlegend", True) is not False and d.get("name")]
    return open_at_frame(make_legend_room(out, before), -1)


def fit2d_shared_panel(view: dict) -> bool:
    """Whether the view's figure draws several fits in one panel (the overlay layout)."""
    spec = view["figure"]
    targets = {(d.get("xaxis", "x"), d.get("yaxis", "y")) for d in spec["data"]
               if str(d.get("name", "")).startswith("target p")}
    return len(targets) <= 1 and len(view.get("final_models") or []) > 1


def fit2d_map_figure(view: dict, maps: Sequence[dict], which: int | None = None) -> dict:
    """The view's figure with the arrows of the maps: each fit's on its own panel (one panel per
    divergence), or the arrows of fit ``which`` (default the first) on the overlay, whose panel
    holds every fit (arrows of several maps in one colour would not say whose they are). The
    figure opens at the last step (the maps are of the final models); Play replays the fit and
    draws the arrows again at the end. Returns a new figure dict."""
    spec = view["figure"]
    ok = [(i, mp) for i, mp in enumerate(maps) if "error" not in mp]
    names = [str(d.get("name")) for d in spec["data"]]
    if fit2d_shared_panel(view):
        i = 0 if which is None else int(which)
        ok = [(j, mp) for j, mp in ok if j == i]
    placed = [(mp, _axes_of(spec, mp["label"]) if mp["label"] in names else ("x", "y")) for _, mp in ok]
    return _with_arrows(spec, placed)


# ---------------------------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------------------------

def flows_final_particles(results) -> list[dict]:
    """Each flow's label and its particles at the last recorded frame (lists)."""
    from ..viz.flow import flow_label

    return [{"label": flow_label(fr), "points": np.asarray(fr.frames[-1], dtype=float).tolist()} for fr in results]


def flows_maps(view: dict, *, n: int = MAP_N, seed: int = 0) -> list[dict]:
    """The entropic map from each flow's last particles to ``n`` samples of the target (a Flows
    view, :func:`divlab.app.flows.flows_view`): where the particles still have to go."""
    from ..distributions import from_spec
    from ..scenario import _parse_json

    target = from_spec(_parse_json(view["target"], "target"))
    out = []
    for fp in view.get("final_particles") or []:
        pts = np.asarray(fp["points"], dtype=float).reshape(-1, 2)
        if not np.isfinite(pts).all(1).any():
            out.append({"label": fp["label"], "error": "no finite particles"})
            continue
        # the target sample uses seed + 1 as on Fit 2D; the particles are given
        out.append(_public(transport_map(pts, target, n=n, seed=seed), fp["label"]))
    return out


def flows_map_figure(view: dict, maps: Sequence[dict]) -> dict:
    """The Flows figure with each flow's arrows on its panel, opened at the last frame."""
    spec = view["figure"]
    placed = [(mp, _axes_of(spec, mp["label"], "markers")) for mp in maps if "error" not in mp]
    return _with_arrows(spec, placed)


def map_rows(maps: Sequence[dict], what: str = "model q") -> list[dict]:
    """One table row per map: whose, the mean squared displacement (q → p, squared units of x)
    and its root (units of x), ε and the solver's status (the sample sizes are in the caption)."""
    rows = []
    for mp in maps:
        if "error" in mp:
            rows.append({what: mp["label"], MSD_LABEL: "—", "root [units of x]": "—",
                         "ε [squared units of x]": "—", "Sinkhorn (iterations)": mp["error"]})
            continue
        rows.append({what: mp["label"], MSD_LABEL: f"{mp['msd']:.4g}", "root [units of x]": f"{mp['rms']:.3g}",
                     "ε [squared units of x]": f"{mp['epsilon']:.3g}",
                     "Sinkhorn (iterations)": f"{mp['status']} ({mp['iterations']})"})
    return rows


def map_caption(maps: Sequence[dict], page: str = "fit2d") -> str:
    """What the arrows and the number are, with the ε and sample sizes of ``maps`` (``page``:
    "fit2d" or "flows")."""
    ok = [mp for mp in maps if "error" not in mp]
    if not ok:
        return "No transport map: no fit has a finite final model."
    mp = ok[0]
    eps, n_t = f"{mp['epsilon']:.3g}", mp["n_target"]
    how = (f"the barycentre of the {n_t} target points that entropic optimal transport (cost |x − y|², "
           f"ε = {eps} squared units of x, {MAP_EPS_REL:g} × the target's variance) sends x to")
    if page == "flows":
        return (f"Where the particles still have to go: up to {MAP_ARROWS} particles x at the last step, each "
                f"drawn to T_ε(x), {how}. The chart opens at the last step; Play replays the flows and draws "
                "the arrows at the end. The mean squared displacement (particles → p) estimates W₂² between "
                "the particles and p.")
    return (f"Where the model's mass would have to move to become p: {MAP_ARROWS} of {mp['n_source']} samples x "
            f"of the final model q, each drawn to T_ε(x), {how}. The chart opens at the last step; Play "
            "replays the fit and draws the arrows at the end. The mean squared displacement estimates "
            "W₂²(q, p): large when q misses part of p, near 0 (a small sampling floor) when q is p.")


def maps_key(items: Sequence[dict]) -> str:
    """Canonical JSON of final models / particles (a cache key)."""
    return json.dumps(list(items), sort_keys=True, separators=(",", ":"))
