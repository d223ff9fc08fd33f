"""Exports of a fit: standalone HTML, CSV, JSON, and GIF/PNG drawn without a browser.

- :func:`to_html`: an offline HTML page with plotly.js embedded (no CDN script).
- :func:`to_csv`: one row per (divergence, step): step, divergence, label, loc, scale, loss.
- :func:`to_json`: the scenario and every result (``FitResult.as_dict``).
- :func:`to_gif` / :func:`to_png`: the animation (or its last frame) drawn directly with Pillow:
  axes, the target density filled, one coloured model curve per divergence, a legend and the
  step. No kaleido, no browser.

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

__all__ = ["to_html", "to_csv", "to_json", "to_gif", "to_png", "render_frame", "fit_figure", "FORMATS", "write"]

FORMATS = ("html", "gif", "png", "csv", "json")

_COLORS = {
    "kl": "#1f77b4", "reverse_kl": "#d62728", "jeffreys": "#9467bd", "js": "#2ca02c",
    "hellinger": "#ff7f0e", "tv": "#8c564b", "pearson": "#e377c2", "neyman": "#7f7f7f",
    "alpha": "#bcbd22", "skew_kl": "#17becf", "tsallis": "#393b79", "renyi": "#637939",
    "bhattacharyya": "#8c6d31", "cauchy_schwarz": "#843c39",
}
_PALETTE = ("#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#6baed6", "#fd8d3c", "#74c476")


def _color(key: str) -> str:
    try:
        from .viz import color_for

        return color_for(key)
    except ImportError:  # pragma: no cover - viz ships with divlab
        return _COLORS.get(key, _PALETTE[sum(map(ord, key)) % len(_PALETTE)])


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
    """The plotly figure of a fit: :func:`divlab.viz.fit_animation` (target, models, losses)."""
    from .viz import fit_animation

    return fit_animation(target, _results(results), n_frames=frames)


def to_html(fig, path) -> Path:
    """A standalone, offline HTML page of a plotly figure: plotly.js is embedded in the file."""
    html = fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False)
    return _atomic_write(path, lambda fh: fh.write(html), binary=False)


# ---------------------------------------------------------------------------------------------
# CSV and JSON
# ---------------------------------------------------------------------------------------------

def to_csv(results, path) -> Path:
    """One row per trajectory point: step, divergence (key), label, loc, scale, loss (nats;
    'inf' where infinite)."""
    results = _results(results)

    def write(fh):
        w = csv.writer(fh)
        w.writerow(["step", "divergence", "label", "loc", "scale", "loss"])
        for r in results:
            for i, (a, b, l) in enumerate(zip(r.trajectory["loc"], r.trajectory["scale"], r.losses)):
                w.writerow([i, r.divergence, r.label, _num(a), _num(b), _num(l)])

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


def _x_range(target, results) -> np.ndarray:
    try:
        from .viz import x_grid

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
    last = max(len(r.losses) for r in results) - 1
    k = max(2, min(frames, last + 1))
    if last <= 0:
        return [0, 0]
    return [int(round(i * last / (k - 1))) for i in range(k)]


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
        q_peak = max(1.0 / (math.sqrt(2 * math.pi) * float(np.nanmin(r.trajectory["scale"]))) for r in results)
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
            val = f"{loss:.4g}" if math.isfinite(loss) else "∞"
            legend.append((f"{r.label}: {val} nats", col))
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


def render_frame(target, results, step: int = -1, title: str = ""):
    """One frame as a PIL image (``step=-1``: the last step of the longest fit)."""
    results = _results(results)
    if target.dim != 1:
        raise ValueError(f"render_frame: needs a 1D target, got {target.dim}D")
    if step < 0:
        step = max(len(r.losses) for r in results) - 1
    return _Canvas(target, results, title).draw(step)


def to_png(target, results, path, title: str = "") -> Path:
    """The final frame of the fit as a PNG (drawn with Pillow, no browser)."""
    img = render_frame(target, results, -1, title)
    return _atomic_write(path, lambda fh: img.save(fh, format="PNG"), binary=True)


def to_gif(target, results, path, frames: int = 60, title: str = "", duration_ms: int = 80) -> Path:
    """The fit as an animated GIF with ``frames`` frames (at least 2), drawn with Pillow; the last
    frame is held longer."""
    results = _results(results)
    if target.dim != 1:
        raise ValueError(f"to_gif: needs a 1D target, got {target.dim}D")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"to_gif(frames={frames!r}): frames must be an integer >= 2")
    canvas = _Canvas(target, results, title)
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
