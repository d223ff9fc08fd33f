"""Benchmark: divlab's MMD² (gaussian kernel) and energy distance (value + gradient) against
GeomLoss ``SamplesLoss("gaussian" | "energy")`` (tensorized and online/KeOps), 2D clouds,
float64, CPU. One case per process:

    python bench/bench_mmd.py --case divlab --kernel gaussian --n 2000      # one JSON line

Same quantity: GeomLoss's kernel losses are ½⟨α − β, k ⋆ (α − β)⟩, i.e. ½ × the biased
(V-statistic) MMD², so 2 × GeomLoss is compared with divlab's ``statistic="biased"``; the
gaussian kernel is exp(−|x − y|²/(2h²)) with h = GeomLoss's ``blur`` = 0.5; the energy kernel
is −|x − y|. divlab also computes its first-order standard error (two extra n×n passes), which
GeomLoss does not: that is included in divlab's time, as a user of ``dl.estimate`` pays it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _measure import Peak  # noqa: E402
from bench_sinkhorn import clouds  # noqa: E402

CASES = ("divlab", "geomloss-tensorized", "geomloss-online")
BLUR = 0.5


def run_divlab(x, a, y, b, kernel):
    from divlab.divergences.kernel import mmd2

    xg = x.clone().requires_grad_(True)
    v, se = mmd2(xg, a, y, b, kernel, BLUR, "biased")
    (g,) = torch.autograd.grad(v, xg)
    return float(v.detach()), g, {"stderr": se}


def run_geomloss(x, a, y, b, kernel, backend):
    from geomloss import SamplesLoss

    loss = SamplesLoss(kernel, blur=BLUR, backend=backend)
    xg = x.clone().requires_grad_(True)
    v = loss(a, xg, b, y)
    (g,) = torch.autograd.grad(v, xg)
    return 2 * float(v.detach()), 2 * g, {}


def run(case, kernel, n):
    x, a, y, b = clouds(n)
    if case == "geomloss-online":  # compile the KeOps kernels outside the timed region
        run_geomloss(*clouds(50), kernel, "online")
    fn = {"divlab": lambda: run_divlab(x, a, y, b, kernel),
          "geomloss-tensorized": lambda: run_geomloss(x, a, y, b, kernel, "tensorized"),
          "geomloss-online": lambda: run_geomloss(x, a, y, b, kernel, "online")}[case]
    with Peak() as peak:
        t = time.perf_counter()
        value, grad, extra = fn()
        seconds = time.perf_counter() - t
    path = f"/tmp/bench_mmd_grad_{kernel}_{case}_{n}.npy"
    np.save(path, grad.detach().numpy())
    return {"bench": f"mmd-{kernel}", "case": case, "n": n, "value": value, "seconds": seconds,
            "peak_mib": peak.mib, "grad_file": path, **extra}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=CASES, required=True)
    ap.add_argument("--kernel", choices=("gaussian", "energy"), required=True)
    ap.add_argument("--n", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    print(json.dumps(run(args.case, args.kernel, args.n)))


if __name__ == "__main__":
    main()
