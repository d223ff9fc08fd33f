"""Benchmark: divlab's debiased Sinkhorn divergence (value + gradient) against POT (log-domain)
and GeomLoss (tensorized and, where pykeops builds, online/KeOps), 2D clouds, float64, CPU.

One case per process (so that peak memory is that case's alone):

    python bench/bench_sinkhorn.py --case divlab --n 2000 [--eps 0.1]      # prints one JSON line

``bench/run_transport.py`` runs every case with a time cap and writes the tables.

Conventions, so that the numbers are the same quantity:
- divlab: cost |x − y|², S_ε = OT_ε(a,b) − ½OT_ε(a,a) − ½OT_ε(b,b), OT_ε the full entropic
  objective ⟨C,π⟩ + ε KL(π‖a⊗b); ``tol`` = 1e-9 on the L1 row-marginal error; envelope gradient.
  Case ``divlab-tol1e-3``: the same with tol = 1e-3, about the accuracy GeomLoss reaches.
- POT: ``ot.sinkhorn(..., method="sinkhorn_log", stopThr=1e-9)`` plans of the three problems;
  S_ε assembled as ⟨C,π⟩ + ε KL(π‖a⊗b) (``ot.sinkhorn2`` alone returns only ⟨C,π⟩), and the
  envelope gradient from the plans: ∇ₓS = 2Σ_j π^ab_ij (x_i − y_j) − 2Σ_j π^aa_ij (x_i − x_j).
  POT's alternating updates oscillate on the symmetric problems OT(a,a), OT(b,b) and run to
  ``numItermax`` = 2000 there.
- GeomLoss: ``SamplesLoss("sinkhorn", p=2, blur=√(ε/2), scaling=0.9, debias=True)`` uses cost
  |x − y|²/2 and ε' = blur², so 2 × its value (and gradient) is divlab's S_ε. It anneals ε
  with a fixed number of iterations (no convergence test): ``scaling`` sets its accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _measure import Peak  # noqa: E402

CASES = ("divlab", "divlab-tol1e-3", "pot", "geomloss-tensorized", "geomloss-online")


def clouds(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.7 + torch.tensor([1.0, 0.5], dtype=torch.float64)
    a = torch.full((n,), 1.0 / n, dtype=torch.float64)
    return x, a, y, a.clone()


def run_divlab(x, a, y, b, eps, tol=1e-9):
    from divlab.divergences.transport import sinkhorn_divergence

    xg = x.clone().requires_grad_(True)
    v, info = sinkhorn_divergence(xg, a, y, b, eps, tol=tol, max_iter=2000)
    (g,) = torch.autograd.grad(v, xg)
    it = info["iterations"]
    st = info.get("status", "")
    return float(v.detach()), g, {"iterations": f"{it['ab']}/{it['aa']}/{it['bb']}", "status": st}


def _pot_full(a, b, M, eps, max_iter):
    import ot

    pi = ot.sinkhorn(a, b, M, reg=eps, method="sinkhorn_log", stopThr=1e-9, numItermax=max_iter, warn=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(pi > 0, pi * np.log(pi / np.outer(a, b)), 0.0).sum()
    return float((pi * M).sum() + eps * kl), pi


def run_pot(x, a, y, b, eps, max_iter=2000):
    import ot

    X, Y, an, bn = x.numpy(), y.numpy(), a.numpy(), b.numpy()
    vab, pab = _pot_full(an, bn, ot.dist(X, Y), eps, max_iter)
    vaa, paa = _pot_full(an, an, ot.dist(X, X), eps, max_iter)
    vbb, _ = _pot_full(bn, bn, ot.dist(Y, Y), eps, max_iter)
    grad = 2 * (pab.sum(1)[:, None] * X - pab @ Y) - 2 * (paa.sum(1)[:, None] * X - paa @ X)
    return vab - 0.5 * vaa - 0.5 * vbb, torch.from_numpy(grad), {"iterations": f"max {max_iter}", "status": ""}


def run_geomloss(x, a, y, b, eps, backend):
    from geomloss import SamplesLoss

    loss = SamplesLoss("sinkhorn", p=2, blur=(eps / 2) ** 0.5, scaling=0.9, debias=True, backend=backend)
    xg = x.clone().requires_grad_(True)
    v = loss(a, xg, b, y)
    (g,) = torch.autograd.grad(v, xg)
    return 2 * float(v.detach()), 2 * g, {"iterations": "fixed (scaling 0.9)", "status": ""}


def run(case, n, eps):
    x, a, y, b = clouds(n)
    if case == "geomloss-online":  # compile the KeOps kernels outside the timed region
        run_geomloss(*clouds(50), eps, "online")
    fn = {"divlab": lambda: run_divlab(x, a, y, b, eps),
          "divlab-tol1e-3": lambda: run_divlab(x, a, y, b, eps, tol=1e-3),
          "pot": lambda: run_pot(x, a, y, b, eps),
          "geomloss-tensorized": lambda: run_geomloss(x, a, y, b, eps, "tensorized"),
          "geomloss-online": lambda: run_geomloss(x, a, y, b, eps, "online")}[case]
    with Peak() as peak:
        t = time.perf_counter()
        value, grad, extra = fn()
        seconds = time.perf_counter() - t
    np.save(f"/tmp/bench_sinkhorn_grad_{case}_{n}.npy", grad.detach().numpy())
    return {"bench": "sinkhorn", "case": case, "n": n, "eps": eps, "value": value, "seconds": seconds,
            "peak_mib": peak.mib, "grad_file": f"/tmp/bench_sinkhorn_grad_{case}_{n}.npy", **extra}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=CASES, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--eps", type=float, default=0.1)
    args = ap.parse_args()
    torch.set_num_threads(int(__import__("os").environ.get("BENCH_THREADS", "1")))
    print(json.dumps(run(args.case, args.n, args.eps)))


if __name__ == "__main__":
    main()
