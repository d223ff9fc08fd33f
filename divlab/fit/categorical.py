"""Fitting a student over discrete outcomes: the ``categorical`` and ``categorical_topk`` families.

The target is a :class:`~divlab.distributions.Categorical` teacher p over K outcomes. The student
q is a softmax of logits, and every divergence is the exact sum over outcomes (the registry
entry's ``from_logs`` with unit weights, as :mod:`divlab.divergences.discrete` evaluates it), so
there is no estimator error: the losses are the divergences themselves.

================== ============================================ ==============================
family             the student                                  unconstrained parameters
================== ============================================ ==============================
categorical        q = softmax(z) over the support              one logit per outcome (K)
categorical_topk   free logits on the teacher's ``topk`` most   topk logits + 1 shared tail
                   probable outcomes; every other outcome       logit (topk + 1)
                   shares one logit (a uniform tail)
================== ============================================ ==============================

The top-k student is the usual top-k distillation of a long-tailed teacher: it can copy the head
but only spread a flat floor over the tail. Over that tail the divergences disagree: forward
KL(p‖q) gives the tail exactly its mass p(tail) (mass-covering), reverse KL(q‖p) gives it
m·geomean(p_tail) relative to the head, which is much less for a long tail (mode-seeking), and
both copy the head's proportions.

``support`` (the student's outcomes): ``None`` (the teacher's), an integer K' ≥ K (outcomes
K..K'−1 have p = 0: a student with a larger vocabulary), or a list of labels (the teacher's
labels in any order, plus new ones with p = 0). Every fit of a call runs in one batch: a
(members, K) tensor of logits, one optimizer, each member with its own divergence.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..distributions.categorical import Categorical
from ..divergences.discrete import discrete_reason
from ..divergences.registry import DivergenceSpec, get
from .core import FitBatch, FitResult
from .engine import _threads_for

__all__ = ["CATEGORICAL_FAMILIES", "CategoricalFit", "fit_categorical", "align_support", "tail_mass"]

CATEGORICAL_FAMILIES = ("categorical", "categorical_topk")
#: recorded frames of the probabilities (trajectory) by default; fewer for very large K
FRAMES = 60
#: outcomes named in ``params`` (the rest are summed into "q[rest]")
PARAMS_SHOWN = 5
#: the sample divergences with an exact sum between Categoricals (fit by their closed forms)
EXACT_SAMPLE = ("wasserstein", "mmd", "energy")
#: most outcomes of an MMD fit (its K × K kernel matrix is computed once and kept: 128 MB at 4 000)
MMD_FIT_MAX = 4_000
#: Newton polish (``polish=True``) for students with at most this many parameters
POLISH_MAX_PARAMS = 400
POLISH_ITERS = 30


@dataclass
class CategoricalFit(FitResult):
    """A :class:`~divlab.fit.FitResult` whose model is a Categorical student.

    ``probs``: the fitted probabilities over the support (numpy, length K');
    ``labels``: the support's labels; ``trajectory["probs"]``: (frames, K') probabilities at the
    steps ``trajectory["step"]``; ``params``: a summary, q of the teacher's most probable outcomes by
    label (all of them when K' ≤ 8) and "q[rest]" (the rest's mass); ``losses``: every step."""

    probs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    labels: list = field(default_factory=list)

    def model(self, step: int = -1) -> Categorical:
        """The student at recorded frame ``step`` (default: the fitted one) as a Categorical."""
        pr = self.probs if step == -1 else self.trajectory["probs"][step]
        return Categorical(probs=np.asarray(pr, dtype=float) / float(np.sum(pr)), labels=list(self.labels))

    def as_dict(self) -> dict:
        d = super().as_dict()
        d["probs"] = self.probs.tolist()
        d["labels"] = list(self.labels)
        return d


def _check_int(owner, name, v, low, high=None):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low or (high is not None and v > high):
        rng = f">= {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"{owner}({name}={v!r}): {name} must be an integer {rng}")
    return int(v)


def align_support(target: Categorical, support) -> tuple[torch.Tensor, list]:
    """(the teacher's probabilities over the student's outcomes, their labels)."""
    owner = "fit"
    labels = target.label_list()
    p = target.probs.detach()
    if support is None:
        return p, labels
    if isinstance(support, (int, np.integer)) and not isinstance(support, bool):
        k = _check_int(owner, "support", support, target.K, 100_000)
        if k == target.K:
            return p, labels
        extra = [x for x in range(target.K, 10 * k) if x not in set(labels)][: k - target.K]
        return torch.cat([p, p.new_zeros(k - target.K)]), labels + extra
    if isinstance(support, (list, tuple)) and support:
        sup = list(support)
        if len(set(sup)) != len(sup):
            raise ValueError(f"fit(support=...): the support's labels must be distinct")
        pos = {x: i for i, x in enumerate(labels)}
        missing = [x for x in labels if x not in set(sup) and float(p[pos[x]]) > 0]
        if missing:
            x = missing[0]
            raise ValueError(f"fit(support=...): the teacher gives outcome {x!r} probability {float(p[pos[x]]):.4g} "
                             "but it is not in the student's support (list every outcome the teacher uses)")
        out = p.new_zeros(len(sup))
        for j, x in enumerate(sup):
            if x in pos:
                out[j] = p[pos[x]]
        return out, sup
    raise ValueError(f"fit(support={support!r}): support must be None, the number of outcomes (>= {target.K}) "
                     "or a list of labels")


def tail_mass(probs, free) -> float:
    """Mass of ``probs`` outside the outcomes ``free`` (indices)."""
    pr = np.asarray(probs, dtype=float)
    mask = np.ones(pr.shape[-1], dtype=bool)
    mask[list(free)] = False
    return float(pr[..., mask].sum(-1))


class _Family:
    """θ (B, P) unconstrained -> full logits (B, K')."""

    def __init__(self, family: str, p: torch.Tensor, topk: int | None):
        self.family, self.K = family, int(p.shape[0])
        if family == "categorical":
            self.free = torch.arange(self.K)
            self.n_raw = self.K
        else:
            k = self.K - 1 if topk is None else topk
            if not 1 <= k < self.K:
                raise ValueError(f"fit(topk={topk!r}): the top-k student needs 1 <= topk < {self.K} (the number of "
                                 "outcomes; topk = K is the full categorical family)")
            order = torch.argsort(-p, stable=True)
            self.free = order[:k].sort().values
            self.n_raw = k + 1
            self.tail = torch.ones(self.K, dtype=torch.bool)
            self.tail[self.free] = False

    def logits(self, theta: torch.Tensor) -> torch.Tensor:
        if self.family == "categorical":
            return theta
        B = theta.shape[0]
        full = theta[:, -1:].expand(B, self.K).clone()
        full[:, self.free] = theta[:, :-1]
        return full

    def raw_from_probs(self, probs: np.ndarray) -> np.ndarray:
        """Unconstrained parameters of the student nearest to ``probs`` (tail: its mean log)."""
        lp = np.log(np.clip(probs, 1e-300, None))
        if self.family == "categorical":
            return lp
        tail = self.tail.numpy()
        return np.concatenate([lp[self.free.numpy()], [np.log(max(probs[tail].mean(), 1e-300))]])


def _init_rows(fam: _Family, init, restarts: int, seed, dtype) -> list[np.ndarray]:
    rows = []
    if init is None:
        rows.append(np.zeros(fam.n_raw))
    else:
        if not isinstance(init, dict) or len(init) != 1 or next(iter(init)) not in ("probs", "logits"):
            raise ValueError(f"fit(init={init!r}): init of a categorical student is {{'probs': [...]}} or "
                             "{'logits': [...]} over the support")
        (name, v), = init.items()
        c = Categorical(**{name: v}, dtype=torch.float64)
        if c.K != fam.K:
            raise ValueError(f"fit(init={{{name!r}: ...}}): {c.K} entries, the support has {fam.K} outcomes")
        if (c.probs <= 0).any():
            raise ValueError(f"fit(init={{{name!r}: ...}}): a softmax student gives every outcome some mass; "
                             "init probabilities must be > 0")
        rows.append(fam.raw_from_probs(c.probs.numpy()))
    gen = np.random.default_rng(seed)
    for _ in range(restarts - 1):
        rows.append(rows[0] + gen.normal(0.0, 1.0, fam.n_raw))
    return rows


def fit_categorical(target, family="categorical", divergence="kl", *, steps=500, lr=None, init=None, seed=0,
                    estimator="auto", optimizer="adam", params=None, n=None, tol=1e-10, patience=20,
                    schedule="cosine", callback=None, restarts=1, polish=True, box=None, components=None,
                    time_budget_s=None, options=None, support=None, topk=None):
    """:func:`divlab.fit` for ``family="categorical"`` / ``"categorical_topk"`` (see the module
    docstring). ``estimator``: "auto" or "exact" (the sums are exact); ``options``: {"frames": F}
    (recorded probability frames, default 60, 20 when K' > 10 000). Arguments of the grid fits
    (n, box, components) must keep their defaults. Default ``lr``: 0.1 (Adam / SGD), 1.0 (L-BFGS)."""
    from .core import _check_number, _is_per_key, check_run_args

    owner = "fit"
    if not isinstance(target, Categorical):
        raise ValueError(f"fit(family={family!r}): the target must be a Categorical (got {type(target).__name__})")
    if target.batch_shape:
        raise ValueError(f"fit(family={family!r}): the target must be one Categorical, not a batch")
    for name, v in (("n", n), ("box", box), ("components", components)):
        if v is not None:
            raise ValueError(f"fit({name}={v!r}): {name} does not apply to the {family} family (exact sums over outcomes)")
    if estimator not in ("auto", "exact"):
        raise ValueError(f"fit(estimator={estimator!r}): a categorical student is fitted on exact sums; "
                         "estimator must be 'auto' or 'exact'")
    if family == "categorical" and topk is not None:
        raise ValueError(f"fit(topk={topk!r}): topk applies to family='categorical_topk'")
    steps, lr, restarts, tol, patience, time_budget_s = check_run_args(
        owner, optimizer=optimizer, schedule=schedule, steps=steps, lr=lr, default_lr=0.1, restarts=restarts,
        tol=tol, patience=patience, time_budget_s=time_budget_s)
    if callback is not None and not callable(callback):
        raise ValueError(f"fit(callback={callback!r}): callback must be callable")
    opts = dict(options or {})
    bad = sorted(set(opts) - {"frames"})
    if bad:
        raise ValueError(f"fit(options={options!r}): unknown option {bad[0]!r} (allowed: frames)")

    p, labels = align_support(target, support)
    p = p.to(torch.float64).cpu()
    K = int(p.shape[0])
    frames = opts.get("frames", FRAMES if K <= 10_000 else 20)
    frames = _check_number(owner, "options['frames']", frames, low=2, integer=True, high=1000)
    fam = _Family(family, p, topk)

    many = isinstance(divergence, (list, tuple))
    divs = list(divergence) if many else [divergence]
    if not divs:
        raise ValueError("fit(divergence=[]): give at least one divergence")
    per_key = _is_per_key(params)
    specs, dps = [], []
    for d in divs:
        spec: DivergenceSpec = d if isinstance(d, DivergenceSpec) else get(d)
        if spec.from_logs is None and spec.key not in EXACT_SAMPLE:
            raise ValueError(f"fit(divergence={spec.key!r}): no exact sum between Categoricals for {spec.key} "
                             f"(density divergences and {', '.join(EXACT_SAMPLE)})")
        given = (params or {}).get(spec.key, {}) if per_key else params
        specs.append(spec)
        dps.append(spec.resolve_params(dict(given or {}), owner=f"fit(divergence={spec.key!r})"))
        _check_exact_sample(spec.key, dps[-1], K)
    rows = _init_rows(fam, init, restarts, seed, torch.float64)
    members = [(s, dp, r) for s, dp in zip(specs, dps) for r in rows]
    B = len(members)
    theta = torch.tensor(np.stack([r for _, _, r in members]), dtype=torch.float64, requires_grad=True)

    lp_full = torch.log(p)
    target_s = Categorical(probs=p, labels=labels) if labels else Categorical(probs=p)
    groups: dict = {}
    for i, (s, dp, _) in enumerate(members):
        groups.setdefault((s.key, tuple(sorted((k, repr(v)) for k, v in dp.items()))), []).append(i)
    group_list = [(members[idx[0]][0], members[idx[0]][1], torch.tensor(idx)) for idx in groups.values()]
    w = torch.ones(K, dtype=torch.float64)
    pos = target_s.positions()
    kcache: dict = {}  # MMD kernel matrices, computed once per (kernel, bandwidth)

    def losses(th):
        lq = torch.log_softmax(fam.logits(th), -1)  # (B, K)
        out = th.new_zeros(B)
        for spec, dp, idx in group_list:
            if spec.from_logs is not None:
                v = spec.from_logs(lp_full.unsqueeze(1).expand(K, len(idx)), lq[idx].T, w, **dp)
            else:
                v = torch.stack([_exact_sample(spec.key, p, lq[i].exp(), pos, dp, kcache) for i in idx.tolist()])
            out = out.index_put((idx,), v.reshape(-1))
        return out

    def member_loss(i, row):
        spec, dp, _ = members[i]
        lq = torch.log_softmax(fam.logits(row.reshape(1, -1)), -1)[0]
        if spec.from_logs is not None:
            return spec.from_logs(lp_full, lq, w, **dp).reshape(())
        return _exact_sample(spec.key, p, lq.exp(), pos, dp, kcache)

    if optimizer == "adam":
        opt = torch.optim.Adam([theta], lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD([theta], lr=lr)
    else:
        opt = torch.optim.LBFGS([theta], lr=lr, max_iter=1, line_search_fn="strong_wolfe")
    rec_steps = set(np.linspace(0, steps, frames).round().astype(int).tolist())
    rec = {i: [] for i in range(B)}
    loss_hist = [[] for _ in range(B)]
    status = [None] * B
    still = [0] * B
    active = torch.ones(B, dtype=torch.bool)
    def _loop():
        with torch.no_grad():
            v0 = losses(theta)
        for i in range(B):
            loss_hist[i].append(float(v0[i]))
            rec[i].append((0, torch.softmax(fam.logits(theta.detach()[i:i + 1]), -1)[0].numpy().copy()))
            if not math.isfinite(float(v0[i])):
                status[i] = _diverged(members[i][0], target_s, labels, p, theta.detach()[i:i + 1], fam, members[i][1], v0[i])
                active[i] = False
                last_step[i] = 0
        for step in range(1, steps + 1):
            if not bool(active.any()):
                break
            lr_t = lr if schedule == "constant" else lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (step - 1) / max(steps, 1))))
            for g in opt.param_groups:
                g["lr"] = lr_t
            keep = theta.detach()[~active].clone()

            def closure():
                opt.zero_grad()
                v = losses(theta)
                total = v[active].sum()
                total.backward()
                return total

            if optimizer == "lbfgs":
                opt.step(closure)
            else:
                closure()
                opt.step()
            with torch.no_grad():
                theta[~active] = keep
                v = losses(theta)
            stop = None
            if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
                stop = f"stopped: wall-clock budget of {time_budget_s:g} s reached after step {step}"
            for i in torch.nonzero(active).reshape(-1).tolist():
                vi = float(v[i])
                prev = loss_hist[i][-1]
                if not math.isfinite(vi) or not bool(torch.isfinite(theta.detach()[i]).all()):
                    status[i] = _diverged(members[i][0], target_s, labels, p, theta.detach()[i:i + 1], fam,
                                          members[i][1], v[i])
                    active[i] = False
                    last_step[i] = step - 1
                    continue
                loss_hist[i].append(vi)
                if step in rec_steps:
                    rec[i].append((step, torch.softmax(fam.logits(theta.detach()[i:i + 1]), -1)[0].numpy().copy()))
                still[i] = still[i] + 1 if abs(vi - prev) <= tol * (1 + abs(vi)) else 0
                if still[i] >= patience:
                    status[i], active[i], last_step[i] = "converged", False, step
                elif stop is not None:
                    status[i], active[i], last_step[i] = stop, False, step
            if callback is not None and bool(active.any()):
                first = int(torch.nonzero(active)[0])
                if callback(step, {"probs": torch.softmax(fam.logits(theta.detach()[first:first + 1]), -1)[0].numpy()},
                            float(v[first])) is False:
                    for i in torch.nonzero(active).reshape(-1).tolist():
                        status[i], active[i], last_step[i] = f"stopped: by the caller after step {step}", False, step

    t0 = time.perf_counter()
    last_step = [steps] * B
    polished = [0] * B
    with _threads_for(B * K, torch.device("cpu")):
        _loop()
        status[:] = [s_ or "max_steps" for s_ in status]
        if polish and fam.n_raw <= POLISH_MAX_PARAMS:
            for i, (spec, dp, _) in enumerate(members):
                if spec.key == "wasserstein" or status[i].startswith(("diverged", "stopped")):  # W_1: not smooth
                    continue
                row, vals = _newton(lambda r, _i=i: member_loss(_i, r), theta.detach()[i].clone())
                if vals:
                    with torch.no_grad():
                        theta[i] = row
                    loss_hist[i].extend(vals)
                    polished[i] = len(vals)
    elapsed = time.perf_counter() - t0
    results = []
    for i, (spec, dp, row) in enumerate(members):
        final_theta = theta.detach()[i:i + 1]
        if status[i] is None:
            status[i] = "max_steps"
        probs = torch.softmax(fam.logits(final_theta), -1)[0].numpy().copy()
        if status[i].startswith("diverged"):
            probs = rec[i][-1][1]
        if rec[i][-1][0] != len(loss_hist[i]) - 1:
            rec[i].append((len(loss_hist[i]) - 1, probs))
        traj = {"step": np.array([s for s, _ in rec[i]], dtype=float), "probs": np.stack([q for _, q in rec[i]])}
        results.append(CategoricalFit(
            family=family, divergence=spec.key, divergence_params={a: b for a, b in dp.items() if not callable(b)},
            params=_summary(probs, p.numpy(), labels), trajectory=traj, losses=np.asarray(loss_hist[i], dtype=float),
            status=status[i], steps=len(loss_hist[i]) - 1, init=({} if init is None else dict(init)), lr=lr,
            optimizer=optimizer, estimator="exact", seed=seed, elapsed_s=elapsed / B,
            info={"restart": i % restarts, "polish_steps": polished[i], "batch": B, "batch_elapsed_s": elapsed, "support": K,
                  "free": fam.free.tolist() if family == "categorical_topk" else None,
                  "tail_mass": tail_mass(probs, fam.free.tolist()) if family == "categorical_topk" else None},
            probs=probs, labels=list(labels)))
    if not many and restarts == 1:
        return results[0]
    return FitBatch(results)


def _newton(f, row: torch.Tensor):
    """Damped Newton steps on one member's loss (pseudo-inverse of the Hessian: softmax logits have
    one redundant direction), each kept only where it lowers the loss. Returns (row, losses)."""
    vals = []
    with torch.enable_grad():
        cur = float(f(row))
        for _ in range(POLISH_ITERS):
            g = torch.autograd.functional.jacobian(f, row)
            H = torch.autograd.functional.hessian(f, row, vectorize=True)
            if not (bool(torch.isfinite(g).all()) and bool(torch.isfinite(H).all())):
                break
            d = -(torch.linalg.pinv(0.5 * (H + H.T), hermitian=True, rtol=1e-13) @ g)
            t, done = 1.0, True
            for _ in range(30):
                new = row + t * d
                v = float(f(new))
                if math.isfinite(v) and v < cur:
                    row, cur, done = new.detach(), v, False
                    vals.append(v)
                    break
                t *= 0.5
            if done:
                break
    return row, vals


def _check_exact_sample(key: str, dp: dict, K: int) -> None:
    """The sample divergences a categorical student can be fitted by, exactly and smoothly."""
    if key == "wasserstein" and dp.get("order") != 1:
        raise ValueError("fit(divergence='wasserstein'): a categorical student is fitted with order=1 "
                         "(W_1 = Σ|F_p − F_q|Δx, smooth in q); W_2's quantile coupling is not differentiable in q")
    if key == "mmd" and dp.get("kernel") != "energy" and K > MMD_FIT_MAX:
        raise ValueError(f"fit(divergence='mmd'): the exact MMD² is a K × K sum with its kernel matrix kept for "
                         f"the fit; K = {K} is more than {MMD_FIT_MAX} outcomes (use 'energy' or 'wasserstein', "
                         "exact for any K)")


def _exact_sample(key, p, q, pos, dp, cache: dict | None = None):
    """Exact sample divergences between the teacher p and a student q (1D positions)."""
    if key == "energy":
        d = torch.cumsum(p - q, 0)[:-1]
        return 2.0 * (d * d * (pos[1:] - pos[:-1])).sum()
    if key == "wasserstein":  # order 1 (checked by _check_exact_sample)
        d = (torch.cumsum(p, 0) - torch.cumsum(q, 0))[:-1].abs()
        return (d * (pos[1:] - pos[:-1])).sum()
    from ..divergences.kernel import kernel_matrix

    if dp.get("kernel") == "energy":
        return _exact_sample("energy", p, q, pos, dp)
    ck = (dp.get("kernel", "gaussian"), float(dp.get("bandwidth", 1.0)))
    if cache is None or ck not in cache:
        x = pos.reshape(-1, 1)
        km = kernel_matrix(x, x, ck[0], ck[1])
        if cache is None:
            d = p - q
            return d @ (km @ d)
        cache[ck] = km
    d = p - q
    return d @ (cache[ck] @ d)


def _diverged(spec, target_s, labels, p, theta_row, fam, dp, value) -> str:
    q = Categorical(logits=fam.logits(theta_row)[0], labels=labels) if labels else Categorical(logits=fam.logits(theta_row)[0])
    v = torch.as_tensor(value).detach()
    if bool(torch.isinf(v)):
        reason = discrete_reason(spec.key, target_s, q, dp, v) if spec.from_logs is not None else None
        return f"diverged: {reason or f'{spec.name} is infinite'}"
    return f"diverged: {spec.name} became NaN (the logits left floating point)"


def _summary(probs: np.ndarray, p: np.ndarray, labels: list) -> dict:
    K = len(probs)
    if K <= 8:
        return {f"q[{labels[i]}]": float(probs[i]) for i in range(K)}
    top = np.argsort(-p, kind="stable")[:PARAMS_SHOWN]
    out = {f"q[{labels[i]}]": float(probs[i]) for i in top}
    out["q[rest]"] = float(1.0 - probs[top].sum())
    return out


#: the arguments :func:`divlab.fit` passes on to :func:`fit_categorical`
FIT_ARGS = tuple(inspect.signature(fit_categorical).parameters)
