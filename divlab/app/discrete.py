"""The Discrete page's app layer: target editing, cached views (fits, frontier, estimator zoo).

Plain functions (no Streamlit): the page reads widgets, calls these (cached on their arguments)
and draws the figures they return. Bad input raises :class:`InputError` with one line meant to be
shown next to the widget that caused it.
"""

from __future__ import annotations

import json
import math

import numpy as np

from ..distributions.categorical import Categorical
from ..scenario import CATEGORICAL_FAMILIES, Scenario


__all__ = ["InputError", "TARGET_PRESETS", "preset_target", "parse_numbers", "parse_labels", "target_from_text",
           "default_reward", "parse_reward", "discrete_scenario", "fit_view", "alignment_view", "estimator_view",
           "is_discrete", "DISCRETE_DIVERGENCES", "MAX_EDIT", "DEFAULT_NS", "DISCRETE_LESSONS"]

#: most outcomes the page's text editor takes (a larger target comes from a lesson, a file or the API)
MAX_EDIT = 2000
DEFAULT_NS = (1, 2, 4, 8, 16, 32, 64, 128)
#: divergences the page offers for distillation (density divergences with numeric parameters + exact W1/energy)
DISCRETE_DIVERGENCES = ("kl", "reverse_kl", "js", "skew_kl", "alpha", "hellinger", "tv", "jeffreys", "renyi",
                        "pearson", "energy")
#: lessons of this page, and the section each one is about
DISCRETE_LESSONS = {"distilling_long_tailed_teacher": "distill", "best_of_n_formula": "align",
                    "which_kl_estimator_descends": "estimators"}


#: the regularizers of the alignment table, in words (p = π_ref the reference, q = π the policy)
REGULARIZER_LABELS = {"reverse_kl": "KL(π‖π_ref), reverse (its optimum is the tilt)",
                      "kl": "KL(π_ref‖π), forward", "js": "JS(π_ref, π)", "alpha": "Amari α-divergence, α = 0.5"}


class InputError(ValueError):
    """A user's input the page cannot use; the message names the field and what is allowed."""


_WORDS = ["mat", "floor", "sofa", "bed", "chair", "rug", "couch", "table", "carpet", "roof", "fence", "bench",
          "step", "pillow", "blanket", "desk", "shelf", "box", "stool", "porch"]


def _zipf(K: int, s: float) -> np.ndarray:
    z = 1.0 / np.arange(1, K + 1) ** s
    return z / z.sum()


def _next_token() -> tuple[list[float], list]:
    head = np.array([0.3, 0.15, 0.1, 0.07, 0.06])
    tail = 1.0 / np.arange(6, 21) ** 2.0
    tail = tail / tail.sum() * (1 - head.sum())
    return np.round(np.concatenate([head, tail]), 6).tolist(), list(_WORDS)


#: target presets of the editor: name -> (weights, labels)
TARGET_PRESETS = {
    "next token (long tail)": _next_token,
    "answers, reward = label": lambda: ([0.1, 0.1, 0.15, 0.1, 0.1, 0.1, 0.1, 0.05, 0.2], list(range(9))),
    "two peaks": lambda: (np.round(np.exp(-0.5 * (np.arange(12) - 2.5) ** 2) + 0.6 * np.exp(-0.5 * (np.arange(12) - 8.5) ** 2)
                                   + 0.01, 4).tolist(), list(range(12))),
    "Zipf, 12 outcomes": lambda: (np.round(_zipf(12, 1.1), 5).tolist(), list(range(12))),
    "uniform, 8 outcomes": lambda: ([1.0] * 8, list(range(8))),
}


def preset_target(name: str) -> tuple[str, str]:
    """(weights text, labels text) of a preset, for the editor."""
    if name not in TARGET_PRESETS:
        raise InputError(f"preset {name!r} is unknown (allowed: {', '.join(TARGET_PRESETS)})")
    w, labels = TARGET_PRESETS[name]()
    return ", ".join(f"{x:g}" for x in w), ", ".join(str(x) for x in labels)


def parse_numbers(text: str, what: str) -> list[float]:
    """Comma-, space- or newline-separated finite numbers (``InputError`` naming the bad entry)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{what}: type numbers separated by commas, e.g. 0.5, 0.3, 0.2")
    parts = [t for t in text.replace("\n", ",").replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    out = []
    for i, t in enumerate(parts):
        try:
            v = float(t)
        except ValueError:
            raise InputError(f"{what}: entry {i + 1} ({t.strip()!r}) is not a number") from None
        if not math.isfinite(v):
            raise InputError(f"{what}: entry {i + 1} ({t.strip()!r}) must be finite")
        out.append(v)
    if len(out) > MAX_EDIT:
        raise InputError(f"{what}: {len(out)} entries; the editor takes at most {MAX_EDIT}")
    return out


def parse_labels(text: str, K: int) -> list | None:
    """Labels from comma-separated text (numbers stay numbers); empty text: None (indices)."""
    if not isinstance(text, str) or not text.strip():
        return None
    parts = [t.strip() for t in text.split(",")]
    if len(parts) != K:
        raise InputError(f"labels: {len(parts)} labels for {K} weights; give one label per outcome, or none")
    out = []
    for t in parts:
        try:
            v = float(t)
            out.append(int(v) if v.is_integer() and "." not in t else v)
        except ValueError:
            out.append(t)
    if len(set(map(str, out))) != K:
        raise InputError("labels: every label must be different")
    return out


def target_from_text(weights_text: str, labels_text: str = "") -> Categorical:
    """The target from the editor: weights ≥ 0 (normalized here, so they need not sum to 1) and
    optional labels."""
    w = np.asarray(parse_numbers(weights_text, "weights"), dtype=float)
    if w.size < 2:
        raise InputError("weights: give at least 2 outcomes")
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise InputError(f"weights: entry {i + 1} ({w[i]:g}) is negative; weights must be >= 0")
    if not w.sum() > 0:
        raise InputError("weights: at least one weight must be > 0")
    labels = parse_labels(labels_text, w.size)
    try:
        return Categorical(probs=w / w.sum(), labels=labels)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def is_discrete(sc: Scenario) -> bool:
    return isinstance(sc.target, dict) and sc.target.get("type") == "categorical"


def default_reward(target: Categorical) -> list[float]:
    """An outcome's reward by default: its label when the labels are increasing numbers, else its
    index scaled to [0, 1] (the first outcome 0, the last 1)."""
    pos = target.positions().tolist()
    if target.labels is not None and [float(x) for x in target.labels] == pos if all(
            isinstance(x, (int, float)) for x in target.labels or []) else False:
        return [float(x) for x in pos]
    K = max(target.K - 1, 1)
    return [round(i / K, 6) for i in range(target.K)]


def parse_reward(text: str, K: int) -> list[float]:
    r = parse_numbers(text, "reward")
    if len(r) != K:
        raise InputError(f"reward: {len(r)} numbers for {K} outcomes; give one reward per outcome")
    return r


def discrete_scenario(target: Categorical, divergences, family: str = "categorical_topk", topk: int | None = 5,
                      steps: int = 300, lr: float = 0.1, seed: int = 0, title: str = "", base: Scenario | None = None
                      ) -> Scenario:
    """A validated scenario of a categorical student (``InputError`` with the field on failure)."""
    if family not in CATEGORICAL_FAMILIES:
        raise InputError(f"student: {family!r} is not a categorical family ({', '.join(CATEGORICAL_FAMILIES)})")
    if not divergences:
        raise InputError("divergences: choose at least one")
    data = {"version": 1, "title": title or (base.title if base is not None else "") or "Discrete distillation",
            "target": target.to_spec(), "model": {"family": family, **({"topk": int(topk)} if family == "categorical_topk" else {})},
            "divergences": [{"key": k, "params": dict(p)} for k, p in divergences], "estimator": "auto",
            "optimizer": {"name": "adam", "lr": float(lr), "steps": int(steps)}, "seed": int(seed)}
    if base is not None:
        data["view"] = base.view.model_dump()
    try:
        return Scenario.from_dict(data)
    except ValueError as exc:
        raise InputError(str(exc)) from None


# --------------------------------------------------------------------------- cached views


def fit_view(scenario_json: str) -> dict:
    """The distillation: every divergence's student (one batched exact fit) with a table of the
    final values, and the animated figure."""
    from ..scenario import run_scenario
    from ..viz.discrete import students_figure, students_loss_figure

    sc = Scenario.from_json(scenario_json)
    target = sc.build_target()
    results = run_scenario(sc)
    p = target.probs.numpy()
    top = int(np.argmax(p))
    rows = []
    for r in results:
        q = np.asarray(r.probs)
        rows.append({"divergence": r.label, "D(p‖q) at the fit": r.final_loss, "status": r.status,
                     f"q({target.label_list()[top]}) (p = {p[top]:.3g})": float(q[top]),
                     "mass on the teacher's top 5": float(np.sort(q)[::-1][:5].sum()) if q.size > 5 else 1.0,
                     "tail mass (top-k student)": r.info.get("tail_mass"),
                     "entropy H(q) [nats]": float(-(q[q > 0] * np.log(q[q > 0])).sum())})
    return {"results": results, "rows": rows, "figure": students_figure(target, results),
            "loss_figure": students_loss_figure(results),
            "teacher_entropy": float(target.entropy()), "teacher_tail": float(1 - np.sort(p)[::-1][:5].sum())}


def alignment_view(target_json: str, reward: tuple, beta: float, ns: tuple = DEFAULT_NS) -> dict:
    """Tilt at β and best-of-n over ``ns``: the frontier figure and the table beside it."""
    from .. import alignment as al
    from ..distributions import from_spec
    from ..viz.discrete import frontier_figure

    ref = from_spec(json.loads(target_json))
    r = np.asarray(reward, dtype=float)
    fr = al.frontier(ref, r, ns=ns)
    rows = []
    for n, ke, kf, rw, ta in zip(fr.ns, fr.bon_kl, fr.bon_formula, fr.bon_reward, fr.tilt_reward_at_bon_kl):
        st = al.policy_stats(al.best_of_n(ref, r, int(n)), ref, r, k=(1,))
        rows.append({"n": int(n), "KL exact [nats]": ke, "log n − (n−1)/n [nats]": kf, "formula − exact": kf - ke,
                     "E[r] best-of-n": rw, "E[r] tilt at the same KL": ta, "win rate vs π_ref": st["win_rate"]})
    tq = al.tilt(ref, r, beta)
    st = al.policy_stats(tq, ref, r, k=(1, 4, 16))
    opt = {}
    for key in ("reverse_kl", "kl", "js", "alpha"):
        pi = al.regularized_optimum(ref, r, beta, key, alpha=0.5)
        s = al.policy_stats(pi, ref, r, k=())
        opt[key] = {"probs": pi.probs.numpy(), "kl": s["kl"], "reward": s["reward"], "label": REGULARIZER_LABELS[key]}
    return {"frontier": fr, "figure": frontier_figure(fr), "rows": rows, "tilt": tq, "tilt_stats": st, "optima": opt}


def estimator_view(pi_json: str, ref_json: str, n: int, seed: int = 0) -> dict:
    """The k1/k2/k3 zoo between π and π_ref: table and figure."""
    from .. import alignment as al
    from ..distributions import from_spec
    from ..viz.discrete import estimator_figure

    pi, ref = from_spec(json.loads(pi_json)), from_spec(json.loads(ref_json))
    z = al.kl_estimators(pi, ref, n=n, seed=seed)
    rows = []
    for k in al.ESTIMATOR_KEYS:
        err = np.abs(z.mc_grad[k] - z.grad[k])
        rows.append({"estimator": k, "exact mean [nats]": z.mean[k], "bias [nats]": z.bias[k],
                     "variance": z.var[k], "simulated mean": z.mc_mean[k], "± 2 s.e.": 2 * z.mc_se[k],
                     "simulated variance": z.mc_var[k], "expected gradient equals": z.grad_target[k],
                     "gradient: max |sim − exact|": float(err.max()),
                     "gradient: max 2 s.e.": float(2 * np.max(z.mc_grad_se[k]))})
    return {"zoo": z, "rows": rows, "figure": estimator_figure(z, labels=ref.label_list())}
