"""Benchmark: divlab's debiased Sinkhorn against POT (log-domain) and GeomLoss, CPU.

    python bench/bench_sinkhorn.py [--sizes 200 1000 2000] [--eps 0.1] [--repeat 3] [--pot-max-iter 3000]

Not a test. Prints a Markdown table (docs/benchmarks.md holds a copy of one run).

Conventions, so that the numbers are the same quantity:
- divlab: cost |x − y|², S_ε = OT_ε(a,b) − ½OT_ε(a,a) − ½OT_ε(b,b), OT_ε the full entropic
  objective ⟨C,π⟩ + ε KL(π‖a⊗b).
- POT: ``ot.sinkhorn(..., method="sinkhorn_log")`` plans; the reference S_ε is assembled from
  the three plans as ⟨C,π⟩ + ε KL(π‖a⊗b) (``ot.sinkhorn2`` alone returns only ⟨C,π⟩).
- GeomLoss: ``SamplesLoss("sinkhorn", p=2, blur=√(ε/2))`` uses cost |x − y|²/2 and ε' = blur²,
  so 2 × its value is divlab's S_ε.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import ot
import torch

from divlab.divergences.transport import sinkhorn_divergence

try:  # optional: pip install geomloss
    from geomloss import SamplesLoss
except ImportError:  # pragma: no cover - benchmark only
    SamplesLoss = None


def clouds(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.7 + torch.tensor([1.0, 0.5], dtype=torch.float64)
    a = torch.full((n,), 1.0 / n, dtype=torch.float64)
    return x, a, y, a.clone()


def timed(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def pot_full(a, b, M, eps, thr, max_iter):
    # POT's alternating updates oscillate on the symmetric problems OT(a,a), OT(b,b) and may
    # stop at max_iter (it warns); divlab uses averaged symmetric updates there
    pi = ot.sinkhorn(a, b, M, reg=eps, method="sinkhorn_log", stopThr=thr, numItermax=max_iter)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(pi > 0, pi * np.log(pi / np.outer(a, b)), 0.0).sum()
    return float((pi * M).sum() + eps * kl)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 2000])
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pot-max-iter", type=int, default=3000)
    args = ap.parse_args()
    eps = args.eps
    print(f"torch {torch.__version__}, POT {ot.__version__}, threads {torch.get_num_threads()}, eps = {eps}, "
          "2D Gaussian clouds, float64 CPU\n")
    print("| n | divlab S_ε | time divlab (s) | iterations ab/aa/bb | POT S_ε (ref) | rel. diff | time POT (s) |"
          " GeomLoss 2×S (scaling 0.5 / 0.9) | rel. diff | time GeomLoss 0.5 / 0.9 (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        x, a, y, b = clouds(n, 0)
        t_dl, (v, info) = timed(lambda: sinkhorn_divergence(x, a, y, b, eps, tol=1e-9, max_iter=20_000), args.repeat)
        v = float(v)
        an, bn = a.numpy(), b.numpy()
        X, Y = x.numpy(), y.numpy()
        Mab, Maa, Mbb = ot.dist(X, Y), ot.dist(X, X), ot.dist(Y, Y)
        k = args.pot_max_iter
        t_pot, ref = timed(lambda: pot_full(an, bn, Mab, eps, 1e-9, k) - 0.5 * pot_full(an, an, Maa, eps, 1e-9, k)
                           - 0.5 * pot_full(bn, bn, Mbb, eps, 1e-9, k), 1)
        gl_cells, gl_diff, gl_time = "n/a", "n/a", "n/a"
        if SamplesLoss is not None:
            vals, times = [], []
            for scaling in (0.5, 0.9):
                loss = SamplesLoss("sinkhorn", p=2, blur=(eps / 2) ** 0.5, scaling=scaling, debias=True,
                                   backend="tensorized")
                t_gl, g = timed(lambda: float(loss(a, x, b, y)), args.repeat)
                vals.append(2 * g)
                times.append(t_gl)
            gl_cells = f"{vals[0]:.6f} / {vals[1]:.6f}"
            gl_diff = f"{abs(vals[0] - ref) / abs(ref):.1e} / {abs(vals[1] - ref) / abs(ref):.1e}"
            gl_time = f"{times[0]:.3f} / {times[1]:.3f}"
        it = info["iterations"]
        print(f"| {n} | {v:.9f} | {t_dl:.3f} | {it['ab']}/{it['aa']}/{it['bb']} | {ref:.9f} | "
              f"{abs(v - ref) / abs(ref):.1e} | {t_pot:.3f} | {gl_cells} | {gl_diff} | {gl_time} |")


if __name__ == "__main__":
    main()
