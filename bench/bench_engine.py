"""Benchmarks of the fitting engine (issue 4): batched vs single fits, step cost, 2D fits.

    python bench/bench_engine.py            # print the table
    python bench/bench_engine.py --write    # also rewrite the engine section of docs/benchmarks.md

Measured (every fit runs its full step count: ``tol=0``, no Newton polish, so that the
comparison is steps against steps):

1. a batch of 4 divergences × 16 restarts × 500 steps on a 2049-point 1D grid against one
   single 500-step fit on the same grid (target ratio <= 3);
2. the cost of one step of a single 1D normal fit (kl, reverse_kl; target <= 0.5 ms);
3. an MVN fit (forward KL) to a three-component 2D Gaussian mixture on a 129 × 129 grid,
   300 steps (target <= 2 s);
4. the 2D lesson fit: MVN to the same three blobs by Sinkhorn and by MMD (samples estimator,
   256 points a side), 300 steps, one batch.

Each timing is the best of ``--repeat`` runs (the machine may be shared: the best run is the one
least disturbed). Only ``docs/benchmarks.md``'s text between ``<!-- engine:begin -->`` and
``<!-- engine:end -->`` is rewritten (the markers are appended when absent).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import divlab as dl  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
BEGIN, END = "<!-- engine:begin -->", "<!-- engine:end -->"

BIMODAL = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


def blobs():
    return dl.Mixture([dl.MultivariateNormal([-2.0, 0.0], [[0.5, 0.1], [0.1, 0.4]]),
                       dl.MultivariateNormal([2.0, 1.0], [[0.3, 0.0], [0.0, 0.6]]),
                       dl.MultivariateNormal([0.0, -2.5], [[0.4, -0.1], [-0.1, 0.3]])], weights=[0.3, 0.5, 0.2])


def best(fn, repeat):
    """(best wall-clock seconds, best CPU seconds of this process, last result) over ``repeat`` runs.

    On a shared machine the wall clock measures the other jobs too; the process's CPU time is what
    an idle machine would take (the small fits run on one thread, see engine._threads_for)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


#: measured numbers the reading paragraph quotes (filled by run)
FACTS: dict = {}


def ok(x, limit):
    return "ok" if x <= limit else "missed"


def run(repeat: int) -> list[tuple[str, str, str, str]]:
    rows = []
    box = dl.fit(BIMODAL, divergence="kl", steps=1, init={"loc": -1.0, "scale": 2.0}).info["grid_box"]
    common = dict(steps=500, tol=0.0, polish=False, box=box, n=2049, seed=0, init={"loc": -1.0, "scale": 2.0})
    divs = ["kl", "reverse_kl", "js", "hellinger"]
    # interleaved, so that a slow spell of a shared machine hits both sides of the ratio alike
    wb = cb = ws = cs = math.inf
    for _ in range(repeat):
        w, c, _ = best(lambda: dl.fit(BIMODAL, divergence=divs, restarts=16, **common), 1)
        wb, cb = min(wb, w), min(cb, c)
        w, c, _ = best(lambda: dl.fit(BIMODAL, divergence="kl", **common), 1)
        ws, cs = min(ws, w), min(cs, c)
    rows.append(("4 divergences × 16 restarts × 500 steps, 2049-point 1D grid (64 fits, one batch)",
                 f"{wb:.3f} s ({cb:.3f} s)", "", ""))
    rows.append(("one single 500-step fit (kl), same grid", f"{ws:.3f} s ({cs:.3f} s)", "", ""))
    rows.append(("ratio batch / single", f"{wb / ws:.2f} × ({cb / cs:.2f} ×)", "≤ 3", ok(wb / ws, 3)))
    FACTS.update(single_s=ws, batch_s=wb, ratio=wb / ws, step_ms=wb / 500 * 1e3)
    rows.append(("cost per fit inside the batch (batch / 64) vs a single fit",
                 f"{wb / ws / 64:.3f} × ({cb / cs / 64:.3f} ×)", "", ""))
    for key in ("kl", "reverse_kl"):
        w, c, _ = best(lambda: dl.fit(BIMODAL, divergence=key, **common), repeat)
        rows.append((f"one step of a single 1D fit ({key}), 2049 points (whole fit / 500)",
                     f"{w / 500 * 1e3:.3f} ms ({c / 500 * 1e3:.3f} ms)", "≤ 0.5 ms", ok(w / 500 * 1e3, 0.5)))
    target = blobs()
    w, c, _ = best(lambda: dl.fit(target, family="mvn", divergence="kl", steps=300, tol=0.0, n=129, polish=False),
                   repeat)
    rows.append(("MVN fit (kl) to a 3-component 2D mixture, 129 × 129 grid, 300 steps", f"{w:.3f} s ({c:.3f} s)",
                 "≤ 2 s", ok(w, 2)))
    w, c, r = best(lambda: dl.fit(target, family="mvn", divergence=["sinkhorn", "mmd"], steps=300, tol=0.0, n=256), 1)
    it = r[0].info.get("sinkhorn_iterations", 0)
    rows.append(("MVN to the same blobs by Sinkhorn (ε = 0.1) and MMD (h = 1), samples 256 a side, 300 steps, "
                 f"one batch ({it} Sinkhorn iterations, last marginal error {r[0].info['sinkhorn_marginal_error']:.1g})",
                 f"{w:.3f} s ({c:.3f} s)", "a few s", ok(w, 5)))
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    dev = dl.get_device()
    from divlab.device import CPU_ALLOCATOR

    return (f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}, device {dev} ({dl.get_dtype()}), CPU allocator {CPU_ALLOCATOR}, "
            f"load average {', '.join(f'{x:.1f}' for x in load)}")


def table(rows, before: str, after: str) -> str:
    lines = [
        "## Fitting engine (bench/bench_engine.py)",
        "",
        f"Machine: {before}. Load average after the run: {after}.",
        "",
        "| what | wall time (CPU time) | target | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    missed = [a for a, _, _, d in rows if d == "missed"]
    lines += [
        "",
        "Command: `python bench/bench_engine.py --write` (best of 3 runs each, the batch and the single fit "
        "interleaved; every fit runs all its steps: `tol=0`, no polish). Times are wall-clock, with this "
        "process's CPU time in parentheses; the ok/missed column judges the wall clock, which the issue's "
        "targets are about. The machine is a shared 2-core VM: the same run varies by up to 2× from one "
        "minute to the next (the best of 3 is the least disturbed), and the batch's 1 MB temporaries are "
        "more exposed to that than a single fit's, which stay in cache.",
        "",
        "Reading the batch ratio (where divlab misses the target on this CPU, plainly): the engine's step "
        "has no autograd graph (each divergence's analytic rule and the normal family's chain rule as dot "
        f"products, see divlab/fit/engine.py), so a single 500-step fit took {FACTS['single_s']:.3f} s here: "
        "about 45 small torch calls a step plus the per-member bookkeeping. The batch is 64 times the "
        "arithmetic: ~20 passes over 64 × 2049 float64 values per step, one exp among them (~2.4 ns a value "
        f"here), {FACTS['step_ms']:.2f} ms a step. On a CPU that arithmetic cannot hide behind a single fit's "
        f"fixed overhead, so the ratio is {FACTS['ratio']:.1f}× (a second thread gained nothing measurable on "
        "this VM's two cores). Per member the batch costs about a tenth of a single fit (row above); on a GPU, where the "
        "64 fits run in parallel, the ratio is the one to look at, but no GPU was available to this task.",
        "",
        ("Targets missed in this run: " + "; ".join(missed) + ".") if missed
        else "All targets met in this run.",
    ]
    return "\n".join(lines)


def write(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, doc, count=1, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(doc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite the engine section of docs/benchmarks.md")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    before = machine()
    rows = run(args.repeat)
    after = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    text = table(rows, before, after)
    print(text)
    if args.write:
        write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
