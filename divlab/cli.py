"""``divlab``: the command line.

    divlab list                                   # the catalogue of divergences
    divlab presets                                # the lessons shipped with divlab
    divlab fit --preset two_equal_modes --out fit.html
    divlab compare p.json q.json                  # every applicable divergence between two specs

Bad input (a missing, malformed, truncated, oversized or deeply nested file, an unknown
divergence, an out-of-range value) prints one line ``divlab: error: ...`` on stderr and exits
with status 2, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

__all__ = ["main"]

PROG = "divlab"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and no exit from inside the library."""

    def error(self, message):  # noqa: D401 - argparse's signature
        raise _UsageError(message)


# ---------------------------------------------------------------------------------------------
# formatting helpers
# ---------------------------------------------------------------------------------------------

def _fmt(x: float, digits: int = 6) -> str:
    x = float(x)
    if math.isnan(x):
        return "undefined"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}g}"


def _param(x: float) -> str:
    x = float(x)
    if not math.isfinite(x):
        return _fmt(x)
    s = f"{x:.4f}" if abs(x) < 1e5 else f"{x:.4g}"
    return "0.0000" if s == "-0.0000" else s


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _direction(spec) -> str:
    return spec.direction.split(" (p is the target")[0]


def _one_line(msg) -> str:
    return " ".join(str(msg).split())


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------

def _cmd_list(args, out) -> int:
    from .divergences.registry import catalogue

    rows = []
    for s in catalogue():
        params = ", ".join(f"{p.name}={p.default}" if p.default is not None else p.name for p in s.params) or "-"
        rows.append([s.key, s.name, s.family, s.behaviour, "yes" if s.symmetric else "no", params, s.unit,
                     ", ".join(s.estimators)])
    print(_table(rows, ["key", "name", "family", "behaviour", "symmetric", "params", "unit", "estimators"]), file=out)
    print("\np is the target, q the model; log-based divergences in nats (natural logs), the others in the "
          "unit shown. Details: divlab.catalogue().", file=out)
    return 0


def _cmd_presets(args, out) -> int:
    from .scenario import presets

    rows = []
    for p in presets():
        sc = p["scenario"]
        rows.append([p["id"], p["title"], ", ".join(d.key for d in sc.divergences)])
    print(_table(rows, ["id", "title", "divergences"]), file=out)
    print("\nRun one: divlab fit --preset ID [--out fit.html]", file=out)
    return 0


class _Progress:
    """A text progress bar on stderr, shown only once a run has taken more than ``delay`` seconds."""

    def __init__(self, total: int, stream, delay: float = 1.0, enabled: bool = True):
        self.total, self.stream, self.delay, self.enabled = max(total, 1), stream, delay, enabled
        self.start = time.monotonic()
        self.done = 0
        self.shown = False
        self.last = 0.0

    def __call__(self, i, step, params, loss):
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or (now - self.last < 0.1 and self.done < self.total):
            return
        self.last = now
        frac = min(self.done / self.total, 1.0)
        n = int(30 * frac)
        self.stream.write(f"\rfitting [{'#' * n}{'.' * (30 - n)}] {100 * frac:3.0f}%  {now - self.start:5.1f} s")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _final_value(target, r):
    """D(p‖q) at the fitted model: the closed form where one exists; else, for a 1D density
    divergence, a fresh quadrature with its error estimate; else (2D targets, whose fine-grid
    quadrature takes seconds, and sample divergences) the fit's own last value, labelled as such.
    Returns (value, estimator, uncertainty, reason when infinite)."""
    from .divergences.api import estimate
    from .divergences.closed_form import find_closed_form
    from .estimators.show import caveat, error_text, value_text
    from .scenario import SAMPLE_FITTABLE

    fit_value = (r.final_loss, f"{r.estimator} (fit)", 0.0, r.status[len("diverged: "):] if r.diverged else None)
    try:
        q = r.model()
        if find_closed_form(r.divergence, target, q) is not None:
            e = estimate(target, q, r.divergence, "closed_form", **r.divergence_params)
        elif target.dim == 1 and r.divergence not in SAMPLE_FITTABLE:
            e = estimate(target, q, r.divergence, "quadrature", **r.divergence_params)
        else:
            return fit_value
        return float(e), e.estimator, e.uncertainty, e.reason
    except (ValueError, TypeError):
        return fit_value


def _model_line(sc) -> str:
    m = sc.model
    fam = {"normal": "Normal", "student_t": "Student-t", "mvn": "2D Normal (full covariance)",
           "diag": "2D Normal (diagonal covariance)", "mixture": f"mixture of {m.components} Normal(s)",
           "categorical": "softmax student over the target's outcomes",
           "categorical_topk": f"top-{m.topk} student (free head, uniform tail)"}[m.family]
    start = ("start " + " ".join(f"{k}={v:g}" for k, v in m.init.items())) if m.init else "default start"
    est = sc.estimator + (f", {sc.samples} samples" if sc.samples else "")
    return (f"q (model)  = {fam}, {start}; {sc.optimizer.name} lr={sc.optimizer.lr:g}, {sc.optimizer.steps} steps, "
            f"seed {sc.seed}; estimator {est}")


def _cmd_fit(args, out, err) -> int:
    from . import export
    from .scenario import Scenario, load_preset

    fmt = None
    if args.out is not None:
        fmt = Path(args.out).suffix.lstrip(".").lower()
        if fmt not in export.FORMATS:
            raise ValueError(f"--out {args.out}: the extension must be one of "
                             f"{', '.join('.' + f for f in export.FORMATS)}")
        parent = Path(args.out).parent
        if str(parent) and not parent.is_dir():
            raise ValueError(f"--out {args.out}: directory {str(parent)!r} does not exist")
    if args.preset is not None:
        sc = load_preset(args.preset)["scenario"]
        source = f"preset {args.preset}"
    else:
        sc = Scenario.from_file(args.scenario)
        source = args.scenario
    divs = None
    if args.divergence is not None:
        divs = [k.strip() for k in args.divergence.split(",")]
        if not all(divs):
            raise ValueError(f"--divergence {args.divergence!r}: give comma-separated keys, e.g. kl,reverse_kl")
    if divs is not None or args.steps is not None:
        sc = sc.with_overrides(divergences=divs, steps=args.steps)
    return _run_fit(sc, source, args, out, err, fmt)


def _run_fit(sc, source, args, out, err, fmt) -> int:
    from . import export
    from .divergences.registry import get
    from .scenario import fit_groups, run_scenario

    calls = len(fit_groups(sc))
    bar = _Progress(calls * (sc.optimizer.steps + 1), err, enabled=not args.quiet)
    try:
        results = run_scenario(sc, callback=bar)
    finally:
        bar.close()
    target = sc.build_target()
    if not args.quiet:
        print(f"{sc.title or 'scenario'}  ({source})", file=out)
        spec = json.dumps(sc.target, ensure_ascii=False)
        print(f"p (target) = {spec if len(spec) <= 300 else spec[:297] + '...'}", file=out)
        print(_model_line(sc), file=out)
    names = list(results[0].params)
    wide = len(names) > 5  # mixtures: parameters on their own lines below the table
    rows, notes = [], []
    for r in results:
        spec = get(r.divergence)
        value, est, unc, reason = _final_value(target, r)
        val = _fmt(value) + (f" ± {unc:.2g}" if unc and math.isfinite(value) else "")
        cols = [] if wide else [_param(r.params[k]) for k in names]
        rows.append([r.label, _direction(spec), *cols, val, spec.unit, est, r.status.split(":")[0]])
        if wide:
            notes.append(f"  {r.label}: " + " ".join(f"{k}={_param(v)}" for k, v in r.params.items()))
        if reason:
            notes.append(f"  {r.label}: ∞ because {reason}")
        elif r.diverged:
            notes.append(f"  {r.label}: {r.status}")
    head = ["divergence", "direction", *([] if wide else names), "D at the fit", "unit", "estimator", "status"]
    print(_table(rows, head), file=out)
    for n in notes:
        print(n, file=out)
    if args.out is not None:
        export.write(args.out, sc, target, results, fmt)
        if not args.quiet:
            print(f"wrote {args.out}", file=out)
    return 0


def _load_dist(path: str):
    from .distributions import from_spec
    from .scenario import _check_spec, _parse_json, _read_limited

    data = _parse_json(_read_limited(path), path)
    if isinstance(data, dict) and "target" in data and "type" not in data:
        data = data["target"]  # a scenario file: compare its target
    _check_spec(data, path)
    return from_spec(data)


def _cmd_compare(args, out, err) -> int:
    from .divergences.api import estimate
    from .divergences.closed_form import find_closed_form
    from .estimators.show import caveat, error_text, value_text
    from .divergences.registry import catalogue, get

    if args.only is not None:
        only = [k.strip() for k in args.only.split(",")]
        for k in only:
            get(k)  # unknown keys raise with the list of known ones
    else:
        only = None
    p, q = _load_dist(args.p), _load_dist(args.q)
    if p.dim != q.dim:
        raise ValueError(f"compare: {args.p} is {p.dim}D and {args.q} is {q.dim}D; they must have the same dimension")
    dens = all(getattr(d, "has_density", True) for d in (p, q))
    # two Categoricals: every divergence with an exact sum over outcomes (closed forms), nothing sampled
    discrete = all(getattr(d, "is_discrete", False) for d in (p, q))
    rows, notes = [], []
    for spec in catalogue():
        if spec.key == "f_divergence" or (only is not None and spec.key not in only):
            continue
        if "densities" in spec.needs and not (dens or discrete):
            continue
        opts, n = {}, args.samples
        if spec.key == "sinkhorn":  # O(n²) per iteration: a smaller budget keeps `compare` interactive
            opts, n = {"max_iter": 200, "tol": 1e-6}, min(args.samples, 256)
        t0 = time.monotonic()
        try:
            if discrete:
                if find_closed_form(spec.key, p, q) is None:
                    notes.append(f"  {spec.key}: does not apply between Categoricals (it needs scores, d/dx log p)")
                    continue
                e = estimate(p, q, spec.key, "closed_form")
            elif spec.from_logs is not None and dens:
                e = estimate(p, q, spec.key, "quadrature")
            elif spec.estimator_fns:
                e = estimate(p, q, spec.key, "auto", n=n, seed=args.seed, options=opts)
            else:
                continue
        except ValueError as exc:
            notes.append(f"  {spec.key}: not estimated ({_one_line(exc)})")
            continue
        closed = "-"
        if find_closed_form(spec.key, p, q) is not None:
            c = estimate(p, q, spec.key, "closed_form")
            closed = _fmt(float(c))
        v = float(e)
        rows.append([spec.key, spec.label(**e.params) if e.params else spec.name, e.estimator,
                     value_text(e, with_reason=False), error_text(e), spec.unit, closed])
        reason = e.reason
        if discrete and reason:  # name the outcome responsible
            from .divergences.discrete import discrete_reason

            reason = discrete_reason(spec.key, p, q, e.params, e.value) or reason
        if reason:
            notes.append(f"  {spec.key}: {'∞ because ' if math.isinf(v) else ''}{_one_line(reason)}")
        elif caveat(e):
            notes.append(f"  {spec.key}: unreliable: {_one_line(caveat(e))}")
        if not args.quiet and time.monotonic() - t0 > 1.0:
            print(f"  ({spec.key}: {time.monotonic() - t0:.1f} s)", file=err)
    print(f"p = {args.p} (target), q = {args.q} (model); each value in the unit shown", file=out)
    print(_table(rows, ["key", "divergence", "estimator", "value", "±", "unit", "closed form"]), file=out)
    for n in notes:
        print(n, file=out)
    return 0


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    ap = _Parser(prog=PROG, formatter_class=fmt,
                 description="divlab: an explorer of divergence geometry (p is the target, q the model; natural logs).",
                 epilog="examples:\n"
                        "  divlab list\n"
                        "  divlab presets\n"
                        "  divlab fit --preset two_equal_modes --out fit.html\n"
                        "  divlab fit --scenario my.json --divergence kl,reverse_kl --steps 200 --out fit.gif\n"
                        "  divlab compare p.json q.json\n")
    sub = ap.add_subparsers(dest="command", metavar="{list,presets,fit,compare}")
    sub.add_parser("list", help="the catalogue of divergences as a table", formatter_class=fmt,
                   description="Every registered divergence: key, name, family, behaviour, symmetry, "
                               "parameters (with defaults) and estimators.",
                   epilog="example:\n  divlab list\n")
    sub.add_parser("presets", help="the lessons shipped with divlab", formatter_class=fmt,
                   description="The preset scenarios (lessons): id, title, divergences.",
                   epilog="example:\n  divlab presets\n")
    f = sub.add_parser("fit", help="fit a model to a target with one or more divergences", formatter_class=fmt,
                       description="Run a scenario (a preset or a JSON file): fit the model q (a Normal, Student-t, "
                                   "2D Normal or mixture, 1D or 2D) to the target p by minimizing each divergence "
                                   "from the same start; print the fitted parameters and D(p‖q) at the fit; "
                                   "optionally export the run.",
                       epilog="examples:\n"
                              "  divlab fit --preset two_equal_modes\n"
                              "  divlab fit --preset heavy_tails --divergence kl,hellinger --steps 200 --out fit.png\n"
                              "  divlab fit --preset banana_2d --steps 100 --out banana.gif\n"
                              "  divlab fit --scenario my.json --out fit.html   (also .gif .png .csv .json)\n")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help="a preset id (see `divlab presets`)")
    src.add_argument("--scenario", metavar="FILE", help="a scenario JSON file")
    f.add_argument("--divergence", metavar="KEYS", help="comma-separated divergence keys replacing the scenario's (with default parameters)")
    f.add_argument("--steps", metavar="N", type=int, help="optimizer steps (1..DIVLAB_MAX_STEPS, default limit 2000), replacing "
                                                        "the scenario's")
    f.add_argument("--out", metavar="FILE", help="write the run: FILE.html | .gif | .png | .csv | .json")
    f.add_argument("--quiet", action="store_true", help="no progress bar, only the result table")
    c = sub.add_parser("compare", help="every applicable divergence between two distributions", formatter_class=fmt,
                       description="Estimate every applicable divergence D(p‖q) between the distributions in two "
                                   "JSON spec files (as written by dist.to_spec(), or a scenario's target), with "
                                   "the estimator, its uncertainty and the closed form where one exists.",
                       epilog="example:\n"
                              "  echo '{\"type\": \"normal\", \"loc\": 0.0, \"scale\": 1.0}' > p.json\n"
                              "  echo '{\"type\": \"normal\", \"loc\": 1.0, \"scale\": 2.0}' > q.json\n"
                              "  divlab compare p.json q.json --only kl,reverse_kl,hellinger\n")
    c.add_argument("p", metavar="P.json", help="the target p")
    c.add_argument("q", metavar="Q.json", help="the model q")
    c.add_argument("--only", metavar="KEYS", help="comma-separated divergence keys (default: all applicable)")
    c.add_argument("--samples", metavar="N", type=int, default=1000,
                   help="sample size for sample-based divergences (default 1000; Sinkhorn uses at most 256)")
    c.add_argument("--seed", metavar="S", type=int, default=0, help="seed for sampling (default 0)")
    c.add_argument("--quiet", action="store_true", help="no timing notes on stderr")
    return ap


def main(argv=None) -> int:
    """Entry point of the ``divlab`` console script; returns the exit status."""
    out, err = sys.stdout, sys.stderr
    ap = _parser()
    try:
        args = ap.parse_args(argv)
        if args.command is None:
            ap.print_help(out)
            return 0
        if args.command == "list":
            return _cmd_list(args, out)
        if args.command == "presets":
            return _cmd_presets(args, out)
        if args.command == "fit":
            return _cmd_fit(args, out, err)
        if args.command == "compare":
            if args.samples < 2 or args.samples > 100_000:
                raise ValueError(f"--samples {args.samples}: must be in [2, 100000]")
            if not 0 <= args.seed < 2**63:
                raise ValueError(f"--seed {args.seed}: must be an integer in [0, 2**63 - 1]")
            return _cmd_compare(args, out, err)
        raise _UsageError(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks choices
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except _UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)} (see divlab --help)", file=err)
        return 2
    except FileNotFoundError as exc:
        print(f"{PROG}: error: {exc.filename}: no such file", file=err)
        return 2
    except (ValueError, OSError, UnicodeError, RecursionError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=err)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
