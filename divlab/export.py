"""Exports of a fit: standalone HTML, CSV, JSON, and GIF/PNG drawn without a browser.

- :func:`to_html`: an offline HTML page with plotly.js embedded (no CDN script).
- :func:`to_csv`: one row per (divergence, step): step, divergence, label, the model's flat
  parameters (loc, scale in 1D; loc_x, loc_y, scale_x, scale_y, corr for a 2D Normal ...), loss.
- :func:`to_json`: the scenario and every result (``FitResult.as_dict``).
- :func:`to_gif` / :func:`to_png`: the animation (or its last frame) drawn directly with Pillow:
  axes, the target density filled (1D) or as a grey heat map of log p (2D), one coloured model
  per divergence (a curve in 1D; 1σ/2σ ellipses, or level sets, in 2D), a legend with the values
  and the step. No kaleido, no browser.

Every writer writes to a temporary file next to ``path`` and renames it at the end, so a failure
leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .divergences.registry import get as get_spec

__all__ = ["to_html", "to_csv", "to_json", "to_gif", "to_png", "render_frame", "fit_figure", "FORMATS", "write"]

FORMATS = ("html", "gif", "png", "csv", "json")

def _color(key: str) -> str:
    """The divergence's colour from the one palette (:mod:`divlab.viz.palette`)."""
    from .viz.palette import color_for

    return color_for(key)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path, write_fn, binary: bool) -> Path:
    """Write via ``write_fn(file object)`` to a temporary file beside ``path``, then rename."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OSError(f"{path}: directory {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as fh:
            write_fn(fh)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an export gets the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _results(results) -> list:
    from .fit import FitResult

    results = [results] if isinstance(results, FitResult) else list(results)
    if not results:
        raise ValueError("export: give at least one FitResult")
    for i, r in enumerate(results):
        if not isinstance(r, FitResult):
            raise ValueError(f"export: results[{i}]={type(r).__name__} must be a divlab FitResult")
    return results


def _num(x: float):
    x = float(x)
    return repr(x) if math.isfinite(x) else ("inf" if x > 0 else ("-inf" if x < 0 else "nan"))


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

def fit_figure(target, results, frames: int = 60):
    """The plotly figure of a fit: :func:`divlab.viz.fit_animation` (1D) or
    :func:`divlab.viz.fit2d_animation` (2D): target, models, losses, animated."""
    from .viz import fit_animation
    from .viz.fit2d import fit2d_animation

    if target.dim == 2:
        return fit2d_animation(target, _results(results), n_frames=min(frames, 60))
    return fit_animation(target, _results(results), n_frames=frames)


def to_html(fig, path) -> Path:
    """A standalone, offline HTML page of a plotly figure: plotly.js is embedded in the file."""
    html = fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False)
    return _atomic_write(path, lambda fh: fh.write(html), binary=False)


# ---------------------------------------------------------------------------------------------
# CSV and JSON
# ---------------------------------------------------------------------------------------------

def to_csv(results, path) -> Path:
    """One row per trajectory point: step, divergence (key), label, the model's flat parameters
    (``loc, scale`` for a Normal; ``loc_x, loc_y, scale_x, scale_y, corr`` for a 2D Normal;
    ``w1.., loc1.., ...`` for a mixture), loss (in the divergence's unit; 'inf' where infinite)."""
    results = _results(results)
    names = list(results[0].trajectory)
    for r in results[1:]:
        names += [k for k in r.trajectory if k not in names]

    def write(fh):
        w = csv.writer(fh)
        w.writerow(["step", "divergence", "label", *names, "loss"])
        for r in results:
            cols = [r.trajectory.get(k) for k in names]
            for i, loss in enumerate(r.losses):
                w.writerow([i, r.divergence, r.label, *("" if c is None else _num(c[i]) for c in cols), _num(loss)])

    return _atomic_write(path, write, binary=False)


def to_json(scenario, results, path) -> Path:
    """The scenario (``Scenario.to_dict``) and every result (``FitResult.as_dict`` plus its label)."""
    results = _results(results)
    data = {
        "scenario": scenario.to_dict() if scenario is not None else None,
        "results": [{"label": r.label, **r.as_dict()} for r in results],
    }
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return _atomic_write(path, lambda fh: fh.write(text), binary=False)


# ---------------------------------------------------------------------------------------------
# Pillow rendering (GIF / PNG)
# ---------------------------------------------------------------------------------------------

W, H = 800, 480
_PAD = {"l": 62, "r": 20, "t": 40, "b": 50}


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def _font(size: int):
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "Arial.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - very old Pillow
        return ImageFont.load_default()


def _density(dist, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = dist.prob(torch.as_tensor(x, dtype=dist.dtype, device=dist.device))
    return np.nan_to_num(y.detach().cpu().numpy().astype(float), nan=0.0, posinf=0.0)


def _peak(r, x: np.ndarray) -> float:
    """The tallest the model's density gets: closed form for a Normal (1/(√(2π)·min scale)),
    else its maximum on the plotting grid over a few steps of the trajectory."""
    if "scale" in r.trajectory and r.family == "normal":
        return 1.0 / (math.sqrt(2 * math.pi) * float(np.nanmin(r.trajectory["scale"])))
    last = len(r.losses) - 1
    steps = sorted({0, last // 4, last // 2, (3 * last) // 4, last})
    return max(float(np.nanmax(_density(r.model(i), x))) for i in steps)


def _x_range(target, results) -> np.ndarray:
    try:
        from .viz import x_grid

        if not all({"loc", "scale"} <= set(r.trajectory) for r in results):
            results = ()  # x_grid widens the view from loc/scale trajectories only
        return x_grid(target, results, n=W - _PAD["l"] - _PAD["r"])
    except ImportError:  # pragma: no cover
        box = target.bounds().detach().cpu().numpy()
        return np.linspace(float(box[0, 0]), float(box[0, 1]), W - _PAD["l"] - _PAD["r"])


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = hi - lo
    if not (span > 0 and math.isfinite(span)):
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step + 1e-9) + 1)]


def _frame_steps(results, frames: int) -> list[int]:
    """The steps a GIF shows: the same pacing as the app's animation (:func:`divlab.viz.frame_steps`,
    frames where the parameters move), at least two frames."""
    from .viz.fit1d import frame_steps

    steps = frame_steps(results, max(2, frames))
    return steps if len(steps) >= 2 else [steps[0], steps[0]]


class _Canvas:
    """Precomputed geometry of one figure; :meth:`draw` renders the frame at one step."""

    def __init__(self, target, results, title: str = ""):
        self.results = results
        self.title = title
        self.x = _x_range(target, results)
        self.p = _density(target, self.x)
        peak = float(self.p.max()) if self.p.size else 1.0
        peak = peak if peak > 0 and math.isfinite(peak) else 1.0
        # room for the models' peaks, but a model collapsing to a spike is cut at 3x the target's peak
        q_peak = max(_peak(r, self.x) for r in results)
        self.ymax = 1.1 * min(max(peak, q_peak if math.isfinite(q_peak) else peak), 3 * peak)
        self.font = _font(13)
        self.small = _font(11)
        self.x0, self.x1 = _PAD["l"], W - _PAD["r"]
        self.y0, self.y1 = _PAD["t"], H - _PAD["b"]

    def px(self, x):
        lo, hi = float(self.x[0]), float(self.x[-1])
        return self.x0 + (np.asarray(x) - lo) / (hi - lo) * (self.x1 - self.x0)

    def py(self, y):
        y = np.clip(np.asarray(y, dtype=float), 0.0, self.ymax)
        return self.y1 - y / self.ymax * (self.y1 - self.y0)

    def draw(self, step: int):
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (W, H), "white")
        d = ImageDraw.Draw(img)
        grey = (90, 90, 90)
        # axes and ticks
        d.line([(self.x0, self.y1), (self.x1, self.y1)], fill=grey, width=1)
        d.line([(self.x0, self.y0), (self.x0, self.y1)], fill=grey, width=1)
        for t in _nice_ticks(float(self.x[0]), float(self.x[-1])):
            u = float(self.px(t))
            d.line([(u, self.y1), (u, self.y1 + 4)], fill=grey)
            d.text((u, self.y1 + 6), f"{t:g}", fill=grey, font=self.small, anchor="ma")
        for t in _nice_ticks(0.0, self.ymax, 5):
            v = float(self.py(t))
            d.line([(self.x0 - 4, v), (self.x0, v)], fill=grey)
            d.line([(self.x0 + 1, v), (self.x1, v)], fill=(235, 235, 235))
            d.text((self.x0 - 6, v), f"{t:.2g}", fill=grey, font=self.small, anchor="rm")
        d.text(((self.x0 + self.x1) / 2, H - 14), "x", fill=grey, font=self.font, anchor="mm")
        d.text((8, self.y0 - 22), "density", fill=grey, font=self.small)
        # target, filled
        xs, ys = self.px(self.x), self.py(self.p)
        poly = [(float(xs[0]), self.y1)] + list(zip(xs.tolist(), ys.tolist())) + [(float(xs[-1]), self.y1)]
        d.polygon(poly, fill=(205, 205, 205))
        d.line(list(zip(xs.tolist(), ys.tolist())), fill=(60, 60, 60), width=2)
        # models
        legend = [("target p", (120, 120, 120))]
        for r in self.results:
            i = min(step, len(r.losses) - 1)
            col = _rgb(_color(r.divergence))
            q = _density(r.model(i), self.x)
            d.line(list(zip(xs.tolist(), self.py(q).tolist())), fill=col, width=3, joint="curve")
            loss = float(r.losses[i])
            val = get_spec(r.divergence).with_unit(f"{loss:.4g}") if math.isfinite(loss) else "∞"
            legend.append((f"{r.label}: {val}", col))
        # legend box, top right
        lw = max(int(d.textlength(t, font=self.small)) for t, _ in legend) + 36
        lx, ly = self.x1 - lw - 6, self.y0 + 6
        d.rectangle([lx, ly, lx + lw, ly + 18 * len(legend) + 6], fill=(255, 255, 255), outline=(200, 200, 200))
        for k, (text, col) in enumerate(legend):
            yy = ly + 12 + 18 * k
            d.line([(lx + 6, yy), (lx + 26, yy)], fill=col, width=4)
            d.text((lx + 32, yy), text, fill=(30, 30, 30), font=self.small, anchor="lm")
        # title and step label
        if self.title:
            d.text((self.x0, 10), self.title[:90], fill=(20, 20, 20), font=self.font)
        d.text((self.x1, 10), f"step {step}", fill=(20, 20, 20), font=self.font, anchor="ra")
        return img


_N2D = 140  # grid per axis of the 2D pictures (resized smoothly to the plot area)
_LEVELS = (0.5, 2.0)  # log q below its maximum at the drawn level sets: a Gaussian's 1σ and 2σ ellipses


def _grey_image(z: np.ndarray, size: tuple[int, int]):
    """log p on the grid (rows = y, upwards) -> a grey heat map (darker = more mass), the colour
    spanning LOG_RANGE nats below the maximum; p = 0 is white."""
    from PIL import Image

    from .viz.fit2d import LOG_RANGE

    finite = np.isfinite(z)
    top = float(z[finite].max()) if finite.any() else 0.0
    v = np.clip((np.where(finite, z, top - LOG_RANGE) - (top - LOG_RANGE)) / LOG_RANGE, 0.0, 1.0)
    v = np.where(finite, v, 0.0)
    grey = (250 - 165 * v).astype(np.uint8)[::-1]  # image rows go downwards
    return Image.fromarray(grey, mode="L").convert("RGB").resize(size, Image.BILINEAR)


class _Canvas2D:
    """A 2D fit frame: the target as a grey heat map of log p (or its points), each model as its
    1σ/2σ ellipses (Gaussian components) or 1σ/2σ-equivalent level sets (other models), the
    divergence values in the legend. Axes are in data units, equal on the plot's sides."""

    def __init__(self, target, results, title: str = ""):
        from .viz.fit2d import log_density_grid, xy_grid

        self.results, self.title, self.target = results, title, target
        self.xs, self.ys = xy_grid(target, results, n=_N2D)
        self.font, self.small = _font(13), _font(11)
        side = H - _PAD["t"] - _PAD["b"]
        self.x0, self.y0 = _PAD["l"], _PAD["t"]
        self.x1, self.y1 = self.x0 + side, self.y0 + side
        self.dens = getattr(target, "has_density", True)
        if self.dens:
            self.bg = _grey_image(log_density_grid(target, self.xs, self.ys), (side, side))
        else:
            from PIL import Image

            self.bg = Image.new("RGB", (side, side), (250, 250, 250))

    def px(self, x):
        return self.x0 + (np.asarray(x, dtype=float) - self.xs[0]) / (self.xs[-1] - self.xs[0]) * (self.x1 - self.x0)

    def py(self, y):
        return self.y1 - (np.asarray(y, dtype=float) - self.ys[0]) / (self.ys[-1] - self.ys[0]) * (self.y1 - self.y0)

    def _poly(self, d, x, y, col, width):
        u, v = self.px(x), self.py(y)
        ok = np.isfinite(u) & np.isfinite(v)
        pts = list(zip(np.clip(u[ok], -1e4, 1e4).tolist(), np.clip(v[ok], -1e4, 1e4).tolist()))
        if len(pts) > 1:
            d.line(pts, fill=col, width=width, joint="curve")

    def _model(self, d, q, col):
        from .distributions import Empirical
        from .viz.fit2d import ellipse, gaussian_parts, log_density_grid

        if isinstance(q, Empirical):
            pts, _ = q.cloud()
            pts = pts.detach().cpu().numpy()
            for u, v in zip(self.px(pts[:, 0]), self.py(pts[:, 1])):
                d.ellipse([u - 2, v - 2, u + 2, v + 2], fill=col)
            return
        parts = gaussian_parts(q)
        if parts is not None:
            for w, m, c in parts:
                try:
                    for k, width in ((1.0, 3), (2.0, 1)):
                        self._poly(d, *ellipse(m, c, k), col, width)
                except ValueError:
                    continue
                u, v = float(self.px(m[0])), float(self.py(m[1]))
                if abs(u) < 1e4 and abs(v) < 1e4:
                    r = 3 + 5 * math.sqrt(max(w, 0.0))
                    d.line([(u - r, v - r), (u + r, v + r)], fill=col, width=2)
                    d.line([(u - r, v + r), (u + r, v - r)], fill=col, width=2)
            return
        # any other model: the boundary cells of its superlevel sets {log q >= max - level}
        z = log_density_grid(q, self.xs, self.ys)
        top = float(z[np.isfinite(z)].max()) if np.isfinite(z).any() else 0.0
        for level, r in zip(_LEVELS, (2, 1)):
            inside = z >= top - level
            edge = inside & ~(np.roll(inside, 1, 0) & np.roll(inside, -1, 0) & np.roll(inside, 1, 1)
                              & np.roll(inside, -1, 1))
            jj, ii = np.nonzero(edge)
            for u, v in zip(self.px(self.xs[ii]), self.py(self.ys[jj])):
                d.ellipse([u - r, v - r, u + r, v + r], fill=col)

    def draw(self, step: int):
        from PIL import Image, ImageDraw

        from .divergences.registry import with_unit
        from .viz.fit2d import unit

        img = Image.new("RGB", (W, H), "white")
        img.paste(self.bg, (self.x0, self.y0))
        d = ImageDraw.Draw(img)
        grey = (90, 90, 90)
        if not self.dens:  # a point cloud target: its points
            pts, wts = self.target.cloud()
            pts, wts = pts.detach().cpu().numpy(), wts.detach().cpu().numpy()
            big = wts / wts.max()
            for u, v, b in zip(self.px(pts[:, 0]), self.py(pts[:, 1]), big):
                r = 1.5 + 2.5 * math.sqrt(b)
                d.ellipse([u - r, v - r, u + r, v + r], fill=(70, 70, 70))
        legend = [("target p" + (" (log p, grey)" if self.dens else " (points)"), (120, 120, 120))]
        for r in self.results:
            i = min(step, len(r.losses) - 1)
            col = _rgb(_color(r.divergence))
            self._model(d, r.model(i), col)
            loss = float(r.losses[i])
            val = with_unit(f"{loss:.4g}", unit(r.divergence)) if math.isfinite(loss) else "∞"
            legend.append((f"{r.label}: {val}", col))
        # frame (drawn over the models so nothing spills onto the ticks), ticks
        d.rectangle([0, 0, W, self.y0 - 1], fill="white")
        d.rectangle([0, self.y1 + 1, W, H], fill="white")
        d.rectangle([0, 0, self.x0 - 1, H], fill="white")
        d.rectangle([self.x1 + 1, 0, W, H], fill="white")
        d.rectangle([self.x0, self.y0, self.x1, self.y1], outline=grey)
        for t in _nice_ticks(float(self.xs[0]), float(self.xs[-1])):
            u = float(self.px(t))
            d.line([(u, self.y1), (u, self.y1 + 4)], fill=grey)
            d.text((u, self.y1 + 6), f"{t:g}", fill=grey, font=self.small, anchor="ma")
        for t in _nice_ticks(float(self.ys[0]), float(self.ys[-1])):
            v = float(self.py(t))
            d.line([(self.x0 - 4, v), (self.x0, v)], fill=grey)
            d.text((self.x0 - 6, v), f"{t:g}", fill=grey, font=self.small, anchor="rm")
        d.text(((self.x0 + self.x1) / 2, H - 14), "x", fill=grey, font=self.font, anchor="mm")
        d.text((14, (self.y0 + self.y1) / 2), "y", fill=grey, font=self.font, anchor="mm")
        # legend to the right of the plot
        lx, ly = self.x1 + 16, self.y0 + 4
        for k, (text, col) in enumerate(legend):
            yy = ly + 10 + 20 * k
            d.line([(lx, yy), (lx + 20, yy)], fill=col, width=4)
            d.text((lx + 26, yy), text[:52], fill=(30, 30, 30), font=self.small, anchor="lm")
        yy = ly + 10 + 20 * len(legend) + 8
        d.text((lx, yy), "model q: 1σ (thick) and 2σ (thin) contours", fill=grey, font=self.small, anchor="lm")
        if self.title:
            d.text((self.x0, 10), self.title[:90], fill=(20, 20, 20), font=self.font)
        d.text((W - _PAD["r"], 10), f"step {step}", fill=(20, 20, 20), font=self.font, anchor="ra")
        return img


def _canvas(target, results, title: str):
    if target.dim == 1:
        return _Canvas(target, results, title)
    if target.dim == 2:
        return _Canvas2D(target, results, title)
    raise ValueError(f"export: needs a 1D or 2D target, got {target.dim}D")  # pragma: no cover


def render_frame(target, results, step: int = -1, title: str = ""):
    """One frame as a PIL image (``step=-1``: the last step of the longest fit)."""
    results = _results(results)
    if step < 0:
        step = max(len(r.losses) for r in results) - 1
    return _canvas(target, results, title).draw(step)


def to_png(target, results, path, title: str = "") -> Path:
    """The final frame of the fit as a PNG (drawn with Pillow, no browser)."""
    img = render_frame(target, results, -1, title)
    return _atomic_write(path, lambda fh: img.save(fh, format="PNG"), binary=True)


def to_gif(target, results, path, frames: int = 60, title: str = "", duration_ms: int = 100) -> Path:
    """The fit as an animated GIF with ``frames`` frames (at least 2), drawn with Pillow; the last
    frame is held longer."""
    results = _results(results)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"to_gif(frames={frames!r}): frames must be an integer >= 2")
    canvas = _canvas(target, results, title)
    imgs = [canvas.draw(s).convert("P", palette=1, colors=255) for s in _frame_steps(results, frames)]
    durations = [duration_ms] * (len(imgs) - 1) + [1500]

    def write(fh):
        buf = io.BytesIO()
        imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=durations, loop=0,
                     optimize=False, disposal=1)
        fh.write(buf.getvalue())

    return _atomic_write(path, write, binary=True)


def write(path, scenario, target, results, fmt: str | None = None) -> Path:
    """Write one export, the format from ``fmt`` or the file extension (one of :data:`FORMATS`)."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    from .export_discrete import is_categorical, write_categorical

    if is_categorical(results):  # students over discrete outcomes: bars instead of densities
        return write_categorical(path, scenario, target, results, fmt)
    frames = scenario.view.frames if scenario is not None else 60
    title = scenario.title if scenario is not None else ""
    if fmt == "html":
        return to_html(fit_figure(target, results, frames), path)
    if fmt == "gif":
        return to_gif(target, results, path, frames=frames, title=title)
    if fmt == "png":
        return to_png(target, results, path, title=title)
    if fmt == "csv":
        return to_csv(results, path)
    if fmt == "json":
        return to_json(scenario, results, path)
    raise ValueError(f"export: format {fmt!r} is unknown (allowed: {', '.join(FORMATS)})")
