"""Exports of categorical fits (:class:`divlab.fit.categorical.CategoricalFit`): the animated bars
as HTML (plotly), PNG / GIF (Pillow, no browser), CSV (one row per step: step, divergence, label,
loss) and JSON (the scenario and every result with its probabilities).

:func:`divlab.export.write` hands categorical results here."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

__all__ = ["is_categorical", "write_categorical"]

W, H = 800, 480
PAD = {"l": 60, "r": 20, "t": 44, "b": 90}
TOP = 20


def is_categorical(results) -> bool:
    from .fit.categorical import CategoricalFit

    rs = [results] if not isinstance(results, (list, tuple)) else list(results)
    return bool(rs) and all(isinstance(r, CategoricalFit) for r in rs)


def _rgb(c: str) -> tuple:
    c = c.lstrip("#")
    return tuple(int(c[i:i + 2], 16) for i in (0, 2, 4))


def _frame(r, step: float) -> np.ndarray:
    steps = np.asarray(r.trajectory["step"], dtype=float)
    j = max(int(np.searchsorted(steps, step, side="right") - 1), 0)
    return np.asarray(r.trajectory["probs"][j], dtype=float)


def _draw(target, results, step, title):
    from PIL import Image, ImageDraw

    from .export import _font
    from .viz.discrete import _pooled, _xlabels, top_outcomes
    from .viz.palette import color_for

    p = target.probs.detach().cpu().double().numpy()
    idx = top_outcomes(p, TOP)
    labels = _xlabels(target, idx)
    series = [("target p", _pooled(p, idx), (150, 150, 150))]
    for r in results:
        q = np.asarray(r.probs) if step is None else _frame(r, step)
        series.append((r.label, _pooled(q, idx), _rgb(color_for(r.divergence))))
    ymax = max(float(s[1].max()) for s in series) * 1.1 or 1.0
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f, fs = _font(13), _font(10)
    d.text((PAD["l"], 12), (title or "teacher p and students q") + ("" if step is None else f"   step {step:g}"),
           fill="black", font=f)
    x0, x1, y0, y1 = PAD["l"], W - PAD["r"], PAD["t"], H - PAD["b"]
    d.line([(x0, y1), (x1, y1)], fill="black")
    d.line([(x0, y0), (x0, y1)], fill="black")
    for t in np.linspace(0, ymax, 5):
        y = y1 - (y1 - y0) * t / ymax
        d.line([(x0 - 4, y), (x0, y)], fill="black")
        d.text((6, y - 6), f"{t:.2f}", fill="black", font=fs)
    n, m = len(labels), len(series)
    slot = (x1 - x0) / n
    bw = max(1.0, 0.8 * slot / m)
    for i, lab in enumerate(labels):
        for j, (_, v, col) in enumerate(series):
            xa = x0 + i * slot + 0.1 * slot + j * bw
            d.rectangle([xa, y1 - (y1 - y0) * v[i] / ymax, xa + bw - 1, y1], fill=col)
        d.text((x0 + i * slot + 2, y1 + 4 + 10 * (i % 2)), str(lab)[:10], fill="black", font=fs)
    lx = x0
    for name, _, col in series:
        d.rectangle([lx, H - 30, lx + 12, H - 18], fill=col)
        d.text((lx + 16, H - 31), name, fill="black", font=fs)
        lx += 24 + int(d.textlength(name, font=fs))
    return img


def write_categorical(path, scenario, target, results, fmt: str) -> Path:
    from .export import _atomic_write, _num, to_html, to_json
    from .viz.discrete import students_figure

    results = [results] if not isinstance(results, (list, tuple)) else list(results)
    title = scenario.title if scenario is not None else ""
    if fmt == "html":
        return to_html(students_figure(target, results), path)
    if fmt == "json":
        return to_json(scenario, results, path)
    if fmt == "csv":
        def write(fh):
            w = csv.writer(fh)
            w.writerow(["step", "divergence", "label", "loss"])
            for r in results:
                for i, loss in enumerate(r.losses):
                    w.writerow([i, r.divergence, r.label, _num(loss)])
        return _atomic_write(path, write, binary=False)
    if fmt == "png":
        img = _draw(target, results, None, title)
        return _atomic_write(path, lambda fh: img.save(fh, format="PNG"), binary=True)
    if fmt == "gif":
        steps = sorted({float(s) for r in results for s in r.trajectory["step"]})
        imgs = [_draw(target, results, s, title).convert("P", palette=1, colors=255) for s in steps]
        if len(imgs) < 2:
            imgs = imgs * 2

        def write(fh):
            buf = io.BytesIO()
            imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:],
                         duration=[80] * (len(imgs) - 1) + [1500], loop=0, optimize=False, disposal=1)
            fh.write(buf.getvalue())
        return _atomic_write(path, write, binary=True)
    raise ValueError(f"export: format {fmt!r} is unknown (allowed: html, gif, png, csv, json)")
