"""Model families for fitting: how a vector of unconstrained numbers becomes a model.

Each family maps a batch of unconstrained parameter rows ``theta`` (B, P) to B models at once
(log-densities on a grid, reparameterized point clouds, or a batched divlab distribution), and
translates between ``theta`` and the *flat* parameter names that results report
(``FitResult.trajectory`` / ``params``):

========== ===== ============================================ ==========================================
family     dim   flat names                                   unconstrained parameters
========== ===== ============================================ ==========================================
normal     1     loc, scale                                   loc, log scale
student_t  1     loc, scale, df                               loc, log scale, log df
diag       2     loc_x, loc_y, scale_x, scale_y               locs, log scales
mvn        2     loc_x, loc_y, scale_x, scale_y, corr         locs, Cholesky factor L = [[a, 0], [b, c]]
                                                              as (log a, b, log c): cov = L Lᵀ
mixture    1     w1..wK, loc1..locK, scale1..scaleK           K logits (softmax), K locs, K log scales
mixture    2     w1..wK, loc_x1.., loc_y1.., scale_x1..,      K logits, then per component the mvn's five
                 scale_y1.., corr1..corrK                     numbers (locs, log a, b, log c)
========== ===== ============================================ ==========================================

The Cholesky parameterization keeps every mvn positive definite without constraints; the
flat names are the readable ones (scale_x = √Σxx, scale_y = √Σyy, corr = Σxy / (scale_x·scale_y)).
Mixture weights are a softmax of K logits (one redundant degree of freedom, harmless for the
optimizers here); K ≤ 5.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..distributions import Distribution, Mixture, MultivariateNormal, Normal, StudentT
from ..distributions.base import LOG_2PI

__all__ = ["Family", "make_family", "FAMILY_KEYS", "MAX_COMPONENTS"]

FAMILY_KEYS = ("normal", "student_t", "diag", "mvn", "mixture")
MAX_COMPONENTS = 5


def _check_num(owner, name, v, positive=False, low=None, high=None):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise ValueError(f"{owner}({name}={v!r}): {name} must be a number")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{owner}({name}={v!r}): {name} must be finite")
    if positive and v <= 0:
        raise ValueError(f"{owner}({name}={v!r}): {name} must be > 0")
    if low is not None and v <= low:
        raise ValueError(f"{owner}({name}={v!r}): {name} must be > {low:g}")
    if high is not None and v >= high:
        raise ValueError(f"{owner}({name}={v!r}): {name} must be < {high:g}")
    return v


def _box(target: Distribution):
    b = target.bounds().detach().cpu().double().numpy()
    return b[:, 0], b[:, 1]  # lo (dim,), hi (dim,)


#: draws and quantile levels of the robust box that places the starting points of the new families
ROBUST_DRAWS, ROBUST_Q = 4000, 0.005


def _robust_box(target: Distribution):
    """The central box of the target, quantiles 0.5 % .. 99.5 % of 4000 seeded draws per axis,
    widened by a quarter on each side. Unlike ``bounds()`` (±8 sd, or ±200 scales for heavy
    tails) it does not put the starting model far out in a tail."""
    try:
        x = target.sample(ROBUST_DRAWS, seed=0).detach().to("cpu", torch.float64).reshape(ROBUST_DRAWS, -1)
    except (TypeError, ValueError, RuntimeError):
        return _box(target)
    q = torch.quantile(x, torch.tensor([ROBUST_Q, 1 - ROBUST_Q], dtype=torch.float64), dim=0).numpy()
    lo, hi = q[0], q[1]
    wd = np.maximum(hi - lo, 1e-6)
    return lo - wd / 4, hi + wd / 4


class Family:
    """Base class; see the module docstring. Subclasses define the maps below."""

    key: str = ""
    dim: int = 1
    names: tuple = ()
    #: whether every model has a reparameterized sampler (Monte Carlo estimator)
    has_rsample: bool = True
    K: int = 1

    @property
    def n_raw(self) -> int:
        return len(self.names)

    # -------------------------------------------------------------- flat <-> unconstrained
    def check_init(self, owner: str, init: dict, base: dict) -> dict:
        """Validated flat parameters: ``init`` over ``base`` (the default), unknown names rejected."""
        unknown = sorted(set(init) - set(self.names))
        if unknown:
            raise ValueError(f"{owner}(init={init!r}): unknown parameter {unknown[0]!r} "
                             f"(allowed for family {self.key!r}: {', '.join(self.names)})")
        out = {k: init.get(k, base[k]) for k in self.names}
        for k, v in out.items():
            out[k] = self._check_one(f"{owner}(init)", k, v)
        return self._normalize(owner, out)

    def _check_one(self, owner, k, v):
        if k.startswith("scale") or k == "df":
            return _check_num(owner, k, v, positive=True)
        if k.startswith("corr"):
            return _check_num(owner, k, v, low=-1.0, high=1.0)
        if k.startswith("w") and k[1:].isdigit():
            v = _check_num(owner, k, v)
            if v < 0:
                raise ValueError(f"{owner}({k}={v!r}): {k} must be >= 0")
            return v
        return _check_num(owner, k, v)

    def _normalize(self, owner, flat: dict) -> dict:
        return flat

    def raw(self, flat: dict) -> list[float]:  # pragma: no cover - abstract
        raise TypeError(f"family {self.key!r} does not define raw")

    def flat(self, theta: np.ndarray) -> dict:
        """Flat parameters from unconstrained rows: theta (..., P) -> {name: array (...)}."""
        raise TypeError(f"family {self.key!r} does not define flat")  # pragma: no cover

    # -------------------------------------------------------------- models
    def log_prob(self, theta: torch.Tensor, x) -> torch.Tensor:
        """Log-densities (N, B) of the B models at points x ((N,) in 1D; (N, 2) or a pair of
        contiguous (N,) columns in 2D)."""
        raise TypeError(f"family {self.key!r} does not define log_prob")  # pragma: no cover

    def noise(self, m: int, gen: torch.Generator, dtype) -> torch.Tensor:
        """Fixed base noise for :meth:`cloud` (drawn once per fit, on the CPU)."""
        return torch.randn((self.K, m, self.dim), generator=gen, dtype=dtype)

    def cloud(self, theta: torch.Tensor, eps: torch.Tensor):
        """Reparameterized weighted point clouds of the B models from base noise ``eps``:
        points (B, M, dim) and weights (B, M) summing to 1 (differentiable in theta)."""
        raise TypeError(f"family {self.key!r} does not define cloud")  # pragma: no cover

    def dist(self, theta: torch.Tensor) -> Distribution:
        """The B models as one batched divlab distribution (for the Monte Carlo estimators)."""
        raise TypeError(f"family {self.key!r} does not define dist")  # pragma: no cover

    def model(self, flat: dict, device=None, dtype=None, validate: bool = True) -> Distribution:
        """One model (a divlab distribution) from flat parameters (floats); ``validate=False`` for a
        fitted model, which may sit past the bounds an input must respect (a df grown past 1e6)."""
        raise TypeError(f"family {self.key!r} does not define model")  # pragma: no cover

    def min_scale(self, theta: torch.Tensor) -> torch.Tensor:
        """Each model's smallest length scale (B,) (for the grid-resolution check)."""
        raise TypeError(f"family {self.key!r} does not define min_scale")  # pragma: no cover

    # -------------------------------------------------------------- starting points
    def default_init(self, target: Distribution) -> dict:
        raise TypeError(f"family {self.key!r} does not define default_init")  # pragma: no cover

    def random_inits(self, target: Distribution, restarts: int, seed: int | None) -> list[dict]:
        """Starting points drawn around the target's box (on the CPU: the same on every device):
        locations uniform on the middle half of the box, scales log-uniform between 1/40 and
        1/8 of its width, weights equal, correlations 0, df as the default."""
        lo, hi = self._init_box(target)
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        # one draw of (restarts, K, dim + 1) uniforms: for the normal family the same numbers, and
        # the same arithmetic, as the first engine's starts
        u = torch.rand(restarts, self.K, self.dim + 1, generator=gen, dtype=torch.float64)
        wmin = float(min(hi - lo))
        scales = torch.exp(math.log(wmin / 40) + u[..., -1] * math.log(5.0))
        locs = []
        for j in range(self.dim):
            c, wd = 0.5 * (float(lo[j]) + float(hi[j])), float(hi[j]) - float(lo[j])
            locs.append(c + (u[..., j] - 0.5) * wd / 2)
        out = []
        for r in range(restarts):
            d = dict(self.default_init(target))
            for k in range(self.K):
                sfx = "" if self.key != "mixture" else str(k + 1)
                s = float(scales[r, k])
                if self.dim == 1:
                    d["loc" + sfx] = float(locs[0][r, k])
                    d["scale" + sfx] = s
                else:
                    d["loc_x" + sfx], d["loc_y" + sfx] = float(locs[0][r, k]), float(locs[1][r, k])
                    d["scale_x" + sfx] = d["scale_y" + sfx] = s
            out.append(d)
        return out

    def describe(self) -> str:
        return self.key

    def _init_box(self, target):
        """The box the starting points are placed in: the target's central box (see :func:`_robust_box`)."""
        return _robust_box(target)


# ------------------------------------------------------------------ 1D families
class NormalFamily(Family):
    key, dim, names = "normal", 1, ("loc", "scale")

    def raw(self, f):
        return [f["loc"], math.log(f["scale"])]

    def flat(self, th):
        return {"loc": th[..., 0].copy(), "scale": np.exp(th[..., 1])}

    def log_prob(self, theta, x):
        loc, ls = theta[:, 0:1], theta[:, 1:2]
        z = (x.reshape(1, -1) - loc) * torch.exp(-ls)
        return (-0.5 * z * z - ls - 0.5 * LOG_2PI).T

    def cloud(self, theta, eps):
        pts = theta[:, 0, None, None] + torch.exp(theta[:, 1])[:, None, None] * eps[0][None]
        return pts, _uniform(pts)

    def dist(self, theta):
        return Normal(theta[:, 0], torch.exp(theta[:, 1]), validate=False)

    def model(self, f, device=None, dtype=None, validate=True):
        return Normal(float(f["loc"]), float(f["scale"]), device=device, dtype=dtype, validate=validate)

    def min_scale(self, theta):
        return torch.exp(theta[:, 1])

    def _init_box(self, target):
        return _box(target)  # the first engine's starts, kept exactly

    def default_init(self, target):
        lo, hi = self._init_box(target)
        return {"loc": float(0.5 * (lo[0] + hi[0])), "scale": max(float(hi[0] - lo[0]) / 8.0, 1e-3)}


class StudentTFamily(Family):
    """Student's t (loc, scale, df); df = exp(raw) > 0. Its sampler's df-gradient is implicit
    (torch's reparameterized gamma), so :meth:`cloud` draws fresh gamma variates from a fixed seed."""

    key, dim, names = "student_t", 1, ("loc", "scale", "df")
    DEFAULT_DF = 5.0

    def raw(self, f):
        return [f["loc"], math.log(f["scale"]), math.log(f["df"])]

    def flat(self, th):
        return {"loc": th[..., 0].copy(), "scale": np.exp(th[..., 1]), "df": np.exp(th[..., 2])}

    def log_prob(self, theta, x):
        loc, ls, nu = theta[:, 0:1], theta[:, 1:2], torch.exp(theta[:, 2:3])
        z = (x.reshape(1, -1) - loc) * torch.exp(-ls)
        lp = (torch.lgamma((nu + 1) / 2) - torch.lgamma(nu / 2) - 0.5 * torch.log(nu * math.pi) - ls
              - (nu + 1) / 2 * torch.log1p(z * z / nu))
        return lp.T

    def noise(self, m, gen, dtype):
        return torch.randn((1, m, 1), generator=gen, dtype=dtype)

    def cloud(self, theta, eps, gamma_seed: int = 0):
        nu = torch.exp(theta[:, 2:3]).expand(-1, eps.shape[1])
        with torch.random.fork_rng(devices=[] if theta.device.type == "cpu" else [theta.device]):
            torch.manual_seed(gamma_seed)
            g = torch._standard_gamma(nu / 2)
        t = eps[0, :, 0][None, :] * torch.rsqrt(2 * g / nu)
        pts = (theta[:, 0:1] + torch.exp(theta[:, 1:2]) * t)[..., None]
        return pts, _uniform(pts)

    def dist(self, theta):
        return StudentT(torch.exp(theta[:, 2]), theta[:, 0], torch.exp(theta[:, 1]), validate=False)

    def model(self, f, device=None, dtype=None, validate=True):
        return StudentT(float(f["df"]), float(f["loc"]), float(f["scale"]), device=device, dtype=dtype, validate=validate)

    def min_scale(self, theta):
        return torch.exp(theta[:, 1])

    def default_init(self, target):
        lo, hi = self._init_box(target)
        return {"loc": float(0.5 * (lo[0] + hi[0])), "scale": max(float(hi[0] - lo[0]) / 8.0, 1e-3),
                "df": self.DEFAULT_DF}


# ------------------------------------------------------------------ 2D families
def _tril(a_log, b, c_log):
    """Cholesky factors (..., 2, 2) from (log a, b, log c)."""
    z = torch.zeros_like(b)
    row0 = torch.stack([torch.exp(a_log), z], -1)
    row1 = torch.stack([b, torch.exp(c_log)], -1)
    return torch.stack([row0, row1], -2)


def _cols(x):
    """The two coordinate columns of 2D points, contiguous; ``x`` is (N, 2) or a pair of (N,)
    tensors (the engine passes pairs prepared once: ops on strided columns cost several times more)."""
    if isinstance(x, (tuple, list)):
        return x
    return x[:, 0].contiguous(), x[:, 1].contiguous()


def _mvn_log_prob(x, mx, my, la, b, lc):
    """log N(x; m, LLᵀ) for points x (see :func:`_cols`) and per-model tensors (B, 1) or (B, K, 1):
    -> (B, [K,] N)."""
    x0, x1 = _cols(x)
    u = (x0 - mx) * torch.exp(-la)
    v = ((x1 - my) - b * u) * torch.exp(-lc)
    return -0.5 * (u * u + v * v) - la - lc - LOG_2PI


def _mvn_raw(sx, sy, corr):
    # L = [[sx, 0], [corr sy, sy √(1 − corr²)]]
    return [math.log(sx), corr * sy, math.log(sy * math.sqrt(1 - corr * corr))]


def _mvn_flat(la, b, lc):
    sx = np.exp(la)
    sy = np.sqrt(b * b + np.exp(2 * lc))
    return sx, sy, b / sy


class DiagFamily(Family):
    key, dim, names = "diag", 2, ("loc_x", "loc_y", "scale_x", "scale_y")

    def raw(self, f):
        return [f["loc_x"], f["loc_y"], math.log(f["scale_x"]), math.log(f["scale_y"])]

    def flat(self, th):
        return {"loc_x": th[..., 0].copy(), "loc_y": th[..., 1].copy(), "scale_x": np.exp(th[..., 2]),
                "scale_y": np.exp(th[..., 3])}

    def log_prob(self, theta, x):
        t = theta[:, :, None]
        return _mvn_log_prob(x, t[:, 0], t[:, 1], t[:, 2], torch.zeros_like(t[:, 0]), t[:, 3]).T

    def cloud(self, theta, eps):
        e = eps[0][None]  # (1, m, 2)
        pts = theta[:, None, 0:2] + torch.exp(theta[:, None, 2:4]) * e
        return pts, _uniform(pts)

    def _L(self, theta):
        return _tril(theta[:, 2], torch.zeros_like(theta[:, 2]), theta[:, 3])

    def dist(self, theta):
        return MultivariateNormal(theta[:, 0:2], scale_tril=self._L(theta), validate=False)

    def model(self, f, device=None, dtype=None, validate=True):
        cov = [[f["scale_x"] ** 2, 0.0], [0.0, f["scale_y"] ** 2]]
        return MultivariateNormal([f["loc_x"], f["loc_y"]], cov, device=device, dtype=dtype, validate=validate)

    def min_scale(self, theta):
        return torch.exp(theta[:, 2:4]).min(-1).values

    def default_init(self, target):
        lo, hi = self._init_box(target)
        c, wd = 0.5 * (lo + hi), hi - lo
        return {"loc_x": float(c[0]), "loc_y": float(c[1]), "scale_x": max(float(wd[0]) / 8, 1e-3),
                "scale_y": max(float(wd[1]) / 8, 1e-3)}


class MVNFamily(Family):
    key, dim, names = "mvn", 2, ("loc_x", "loc_y", "scale_x", "scale_y", "corr")

    def raw(self, f):
        return [f["loc_x"], f["loc_y"]] + _mvn_raw(f["scale_x"], f["scale_y"], f["corr"])

    def flat(self, th):
        sx, sy, r = _mvn_flat(th[..., 2], th[..., 3], th[..., 4])
        return {"loc_x": th[..., 0].copy(), "loc_y": th[..., 1].copy(), "scale_x": sx, "scale_y": sy, "corr": r}

    def log_prob(self, theta, x):
        t = theta[:, :, None]
        return _mvn_log_prob(x, t[:, 0], t[:, 1], t[:, 2], t[:, 3], t[:, 4]).T

    def _L(self, theta):
        return _tril(theta[:, 2], theta[:, 3], theta[:, 4])

    def cloud(self, theta, eps):
        e = eps[0][None]  # (1, m, 2)
        a, b, c = torch.exp(theta[:, 2, None]), theta[:, 3, None], torch.exp(theta[:, 4, None])
        px = theta[:, 0, None] + a * e[..., 0]
        py = theta[:, 1, None] + b * e[..., 0] + c * e[..., 1]
        pts = torch.stack([px, py], -1)
        return pts, _uniform(pts)

    def dist(self, theta):
        return MultivariateNormal(theta[:, 0:2], scale_tril=self._L(theta), validate=False)

    def model(self, f, device=None, dtype=None, validate=True):
        sx, sy, r = f["scale_x"], f["scale_y"], f["corr"]
        cov = [[sx * sx, r * sx * sy], [r * sx * sy, sy * sy]]
        return MultivariateNormal([f["loc_x"], f["loc_y"]], cov, device=device, dtype=dtype, validate=validate)

    def min_scale(self, theta):
        return _min_sd(theta[:, 2], theta[:, 3], theta[:, 4])

    def default_init(self, target):
        d = DiagFamily().default_init(target)
        d["corr"] = 0.0
        return d


def _min_sd(la, b, lc):
    """√(smallest eigenvalue of L Lᵀ) for L = [[a, 0], [b, c]]."""
    a2, c2 = torch.exp(2 * la), torch.exp(2 * lc)
    sxx, sxy, syy = a2, torch.exp(la) * b, b * b + c2
    tr, det = sxx + syy, a2 * c2
    disc = torch.sqrt(torch.clamp((sxx - syy) ** 2 + 4 * sxy * sxy, min=0))
    lmin = 2 * det / (tr + disc)  # stable form of (tr − disc)/2
    return torch.sqrt(lmin)


# ------------------------------------------------------------------ mixtures
class MixtureFamily(Family):
    """K components (normals in 1D, full-covariance normals in 2D), weights softmax(logits)."""

    key = "mixture"
    has_rsample = False  # the component choice is discrete (clouds are weighted instead)

    def __init__(self, dim: int, K: int):
        self.dim, self.K = dim, K
        r = range(1, K + 1)
        if dim == 1:
            self.names = tuple(f"w{k}" for k in r) + tuple(f"loc{k}" for k in r) + tuple(f"scale{k}" for k in r)
        else:
            self.names = (tuple(f"w{k}" for k in r) + tuple(f"loc_x{k}" for k in r) + tuple(f"loc_y{k}" for k in r)
                          + tuple(f"scale_x{k}" for k in r) + tuple(f"scale_y{k}" for k in r)
                          + tuple(f"corr{k}" for k in r))
        self._per = 2 if dim == 1 else 5

    def describe(self):
        return f"mixture of {self.K} {'normals' if self.dim == 1 else '2D normals'}"

    def _normalize(self, owner, f):
        K = self.K
        ws = [f[f"w{k}"] for k in range(1, K + 1)]
        tot = sum(ws)
        if not tot > 0:
            raise ValueError(f"{owner}(init={f!r}): the weights w1..w{K} must not all be 0")
        for k in range(1, K + 1):
            f[f"w{k}"] = f[f"w{k}"] / tot
        return f

    def raw(self, f):
        K = self.K
        logits = [math.log(max(f[f"w{k}"], 1e-12)) for k in range(1, K + 1)]
        if self.dim == 1:
            return logits + [f[f"loc{k}"] for k in range(1, K + 1)] + [math.log(f[f"scale{k}"]) for k in range(1, K + 1)]
        cols = [_mvn_raw(f[f"scale_x{k}"], f[f"scale_y{k}"], f[f"corr{k}"]) for k in range(1, K + 1)]
        return (logits + [f[f"loc_x{k}"] for k in range(1, K + 1)] + [f[f"loc_y{k}"] for k in range(1, K + 1)]
                + [c[0] for c in cols] + [c[1] for c in cols] + [c[2] for c in cols])

    def _parts(self, th):
        """Split theta (..., P) into K-wide blocks: logits, then the per-component columns."""
        K = self.K
        return [th[..., i * K:(i + 1) * K] for i in range(1 + self._per)]

    def flat(self, th):
        K = self.K
        parts = self._parts(th)
        lg = parts[0]
        w = np.exp(lg - lg.max(-1, keepdims=True))
        w = w / w.sum(-1, keepdims=True)
        out = {f"w{k + 1}": w[..., k] for k in range(K)}
        if self.dim == 1:
            for k in range(K):
                out[f"loc{k + 1}"] = parts[1][..., k].copy()
            for k in range(K):
                out[f"scale{k + 1}"] = np.exp(parts[2][..., k])
            return out
        sx, sy, r = _mvn_flat(parts[3], parts[4], parts[5])
        for name, arr in (("loc_x", parts[1]), ("loc_y", parts[2]), ("scale_x", sx), ("scale_y", sy), ("corr", r)):
            for k in range(K):
                out[f"{name}{k + 1}"] = np.array(arr[..., k], copy=True)
        return out

    def _log_w(self, theta):
        return torch.log_softmax(self._parts(theta)[0], dim=-1)  # (B, K)

    def log_prob(self, theta, x):
        parts = self._parts(theta)
        lw = torch.log_softmax(parts[0], -1)[:, :, None]  # (B, K, 1)
        if self.dim == 1:
            loc, ls = parts[1][:, :, None], parts[2][:, :, None]
            z = (x.reshape(1, 1, -1) - loc) * torch.exp(-ls)
            lc = -0.5 * z * z - ls - 0.5 * LOG_2PI  # (B, K, N)
        else:
            mx, my, la, b, lcc = (p[:, :, None] for p in parts[1:])
            lc = _mvn_log_prob(x, mx, my, la, b, lcc)
        return torch.logsumexp(lc + lw, dim=1).T

    def cloud(self, theta, eps):
        parts = self._parts(theta)
        K, m = self.K, eps.shape[1]
        w = torch.softmax(parts[0], -1)  # (B, K)
        if self.dim == 1:
            pts = parts[1][:, :, None] + torch.exp(parts[2])[:, :, None] * eps[None, :, :, 0]  # (B, K, m)
            pts = pts[..., None]
        else:
            mx, my, la, b, lc = parts[1:]
            e0, e1 = eps[None, :, :, 0], eps[None, :, :, 1]
            px = mx[..., None] + torch.exp(la)[..., None] * e0
            py = my[..., None] + b[..., None] * e0 + torch.exp(lc)[..., None] * e1
            pts = torch.stack([px, py], -1)  # (B, K, m, 2)
        B = theta.shape[0]
        wts = (w[:, :, None] / m).expand(B, K, m).reshape(B, K * m)
        return pts.reshape(B, K * m, self.dim), wts

    def dist(self, theta):
        parts = self._parts(theta)
        w = torch.softmax(parts[0], -1)
        if self.dim == 1:
            comps = [Normal(parts[1][:, k], torch.exp(parts[2][:, k]), validate=False) for k in range(self.K)]
        else:
            comps = [MultivariateNormal(torch.stack([parts[1][:, k], parts[2][:, k]], -1),
                                        scale_tril=_tril(parts[3][:, k], parts[4][:, k], parts[5][:, k]),
                                        validate=False) for k in range(self.K)]
        return Mixture(comps, w, validate=False)

    def model(self, f, device=None, dtype=None, validate=True):
        K = self.K
        ws = [float(f[f"w{k}"]) for k in range(1, K + 1)]
        if self.dim == 1:
            comps = [Normal(float(f[f"loc{k}"]), float(f[f"scale{k}"]), device=device, dtype=dtype, validate=validate)
                     for k in range(1, K + 1)]
        else:
            comps = [MVNFamily().model({n: f[f"{n}{k}"] for n in MVNFamily.names}, device=device, dtype=dtype, validate=validate)
                     for k in range(1, K + 1)]
        return Mixture(comps, ws, device=device, dtype=dtype, validate=validate)

    def min_scale(self, theta):
        parts = self._parts(theta)
        if self.dim == 1:
            return torch.exp(parts[2]).min(-1).values
        return _min_sd(parts[3], parts[4], parts[5]).min(-1).values

    def default_init(self, target):
        """Equal weights; components spread over the middle half of the target's box (on a line in
        1D, on a circle in 2D), each an eighth of the box wide divided by √K."""
        lo, hi = self._init_box(target)
        c, wd = 0.5 * (lo + hi), hi - lo
        K = self.K
        d = {f"w{k}": 1.0 / K for k in range(1, K + 1)}
        s = float(wd.min()) / 8 / math.sqrt(K)
        for k in range(1, K + 1):
            if self.dim == 1:
                d[f"loc{k}"] = float(c[0] + (wd[0] / 4) * (0.0 if K == 1 else -1 + 2 * (k - 1) / (K - 1)))
                d[f"scale{k}"] = max(s, 1e-3)
            else:
                ang = 2 * math.pi * (k - 1) / K + math.pi / 2
                rad = 0.0 if K == 1 else 0.25
                d[f"loc_x{k}"] = float(c[0] + rad * wd[0] * math.cos(ang))
                d[f"loc_y{k}"] = float(c[1] + rad * wd[1] * math.sin(ang))
                d[f"scale_x{k}"] = d[f"scale_y{k}"] = max(s, 1e-3)
                d[f"corr{k}"] = 0.0
        return d


def _uniform(pts):
    B, m = pts.shape[0], pts.shape[1]
    return torch.full((B, m), 1.0 / m, device=pts.device, dtype=pts.dtype)


def make_family(owner: str, family: str, target_dim: int, components=None) -> Family:
    """The :class:`Family` for ``family`` on a ``target_dim``-dimensional target (errors name the
    argument and value)."""
    if family not in FAMILY_KEYS:
        raise ValueError(f"{owner}(family={family!r}): family must be one of {', '.join(FAMILY_KEYS)}")
    if family != "mixture" and components is not None:
        raise ValueError(f"{owner}(components={components!r}): components applies to family='mixture' only")
    if family == "mixture":
        if components is None:
            components = 2
        if isinstance(components, bool) or not isinstance(components, (int, np.integer)) \
                or not 1 <= components <= MAX_COMPONENTS:
            raise ValueError(f"{owner}(components={components!r}): components must be an integer in "
                             f"[1, {MAX_COMPONENTS}]")
        if target_dim not in (1, 2):
            raise ValueError(f"{owner}(family='mixture'): targets must be 1D or 2D, not {target_dim}D")
        return MixtureFamily(target_dim, int(components))
    fam = {"normal": NormalFamily, "student_t": StudentTFamily, "diag": DiagFamily, "mvn": MVNFamily}[family]()
    if fam.dim != target_dim:
        raise ValueError(f"{owner}(family={family!r}): the {family} family is {fam.dim}D but the target is "
                         f"{target_dim}D" + (" (use mvn, diag or mixture for 2D targets)" if target_dim == 2
                                             else " (use normal, student_t or mixture for 1D targets)"))
    return fam
