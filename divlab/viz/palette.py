"""One palette for the whole product: a colour per divergence, grey only for the target.

Every figure, page and export takes a divergence's colour from :func:`color_for`, so forward KL
is the same blue on Fit 1D, in a Race, in a GIF and on the Discrete page. The colours were chosen
(greedily, from Tableau, Dark24, Set1/2 and Dark2) so that every pair differs by ΔE ≥ 24 in
CIELAB and every colour differs from the target's grey by ΔE ≥ 25: the six a Race shows at once
stay distinguishable, and none reads as the target. The flows (SVGD, Langevin) and the
perturbed KSD have colours of their own too, and so has the transport map T_ε drawn as arrows on
Fit 2D and Flows (``"transport_map"``: a violet, ΔE ≥ 27 from every other colour and ≥ 53 from
the colours drawn beside it there: forward and reverse KL, JS, Hellinger, the four flows; dark
enough to read over the grey target. An azure at ΔE 58 from forward KL's blue still read as "the
same blue" over its ellipses: CIE76 overstates differences among blues). ``tests/test_palette.py``
checks these numbers.
"""

from __future__ import annotations

import math

__all__ = ["COLORS", "color_for", "MAP_COLOR", "TARGET_COLOR", "TARGET_FILL", "TARGET_GREY", "delta_e", "extra_colors"]

COLORS = {
    "kl": "#1f77b4", "reverse_kl": "#d62728", "jeffreys": "#9467bd", "js": "#2ca02c",
    "hellinger": "#ff7f0e", "tv": "#8c564b", "pearson": "#e377c2", "neyman": "#511cfb",
    "alpha": "#bcbd22", "skew_kl": "#17becf", "tsallis": "#fb00d1", "renyi": "#556b2f",
    "bhattacharyya": "#620042", "cauchy_schwarz": "#fc0080", "f_divergence": "#a6761d",
    "wasserstein": "#4b0082", "sinkhorn": "#1b9e77", "sliced_wasserstein": "#0d2a63",
    "mmd": "#fc8d62", "energy": "#da16ff", "ksd": "#d6616b", "fisher": "#800000",
    "svgd": "#e6ab02", "langevin": "#c71585", "perturbed_ksd": "#b5cf6b",
    "transport_map": "#8000c0",
    # Sinkhorn's three gradient modes (the Transport page)
    "unrolled": "#86ce00", "envelope": "#3283fe", "implicit": "#af0038",
}
#: the transport map T_ε (arrows x → T_ε(x) on Fit 2D and Flows): one colour that means "transport map"
MAP_COLOR = COLORS["transport_map"]
#: the target p: grey, and only the target
TARGET_GREY = "#3c3c3c"
TARGET_COLOR = "rgba(60, 60, 60, 0.9)"
TARGET_FILL = "rgba(120, 120, 120, 0.25)"
#: for keys registered later (a user's own divergence): saturated colours not used above
_EXTRA = ("#e7298a", "#66a61e", "#7570b3", "#d95f02", "#00ced1", "#008080", "#4682b4", "#daa520")


def color_for(key: str) -> str:
    """The fixed colour of divergence (or flow) ``key``; a key registered later gets a stable
    saturated colour from a reserve list (never grey)."""
    if key in COLORS:
        return COLORS[key]
    return _EXTRA[sum(map(ord, str(key))) % len(_EXTRA)]


def extra_colors() -> tuple:
    return _EXTRA


def _lab(h: str):
    r, g, b = (int(h[i:i + 2], 16) / 255 for i in (1, 3, 5))

    def lin(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = lin(r), lin(g), lin(b)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t):
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def delta_e(a: str, b: str) -> float:
    """CIE76 colour difference between two ``#rrggbb`` colours."""
    return math.dist(_lab(a), _lab(b))
