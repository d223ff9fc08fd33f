"""The lesson view (issue 14): a lesson link opens the lesson, and Fit 1D shows its text and the
chart before the controls."""

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import divlab as dl  # noqa: E402
from divlab import app_support as sup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _card(lesson_id):
    return next(c for c in sup.lesson_cards() if c["id"] == lesson_id)


def test_a_lesson_link_carries_the_lesson_and_opens_it():
    card = _card("two_equal_modes")
    sc = card["scenario"]
    q = sup.share_query(sc, card["id"])
    assert q.endswith("&lesson=two_equal_modes") and q.startswith(f"?{sup.URL_PARAM}=")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params[sup.URL_PARAM] = sc.to_url_param()
    at.query_params[sup.LESSON_PARAM] = "two_equal_modes"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["lesson"]["id"] == "two_equal_modes"
    assert any("lesson=two_equal_modes" in c.value for c in at.sidebar.code)  # the share link keeps it


def test_a_link_whose_scenario_is_not_the_lessons_is_not_that_lesson():
    other = dl.load_preset("separated_modes")["scenario"]
    assert sup.lesson_from_url("two_equal_modes", other) is None
    assert sup.lesson_from_url("no_such_lesson", _card("two_equal_modes")["scenario"]) is None
    assert sup.lesson_from_url(["x" * 500], other) is None


def test_fit1d_lesson_view_puts_text_and_chart_before_the_controls():
    card = _card("two_equal_modes")
    at = AppTest.from_file(str(ROOT / "pages" / "fit_1d.py"), default_timeout=90)
    at.session_state[sup.SCENARIO_KEY] = card["scenario"].with_overrides(steps=60)
    at.session_state[sup.VERSION_KEY] = 1
    at.session_state["scenario_source"] = "lesson"
    at.session_state["lesson"] = {**card, "scenario": at.session_state[sup.SCENARIO_KEY]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    order = [type(e).__name__ for e in at.main]
    kinds = []

    def walk(node):
        for child in getattr(node, "children", {}).values() if isinstance(getattr(node, "children", None), dict) else []:
            kinds.append(child)
            walk(child)

    walk(at.main)
    types = [getattr(k, "type", type(k).__name__) for k in kinds]
    first_chart = next(i for i, t in enumerate(types) if t == "plotly_chart")
    first_input = next(i for i, t in enumerate(types) if t in ("radio", "number_input", "selectbox", "multiselect"))
    first_info = next(i for i, t in enumerate(types) if t == "info")
    assert first_info < first_chart < first_input, (order, types[:12])
    assert any("Lesson:" in i.value and "Play" in i.value for i in at.info)


def test_local_optimum_is_marked_and_said():
    """Two equal modes, start at loc −0.5: reverse KL ends at the symmetric local optimum (loc 0,
    scale 2.744, 0.8406 nats) while its global one sits on a mode (0.6888 nats): the table says
    'local', a note says so next to the chart, and the optima are drawn dashed with their values."""
    sc = sup.build_scenario(sup.spec_from_components(sup.DEFAULT_COMPONENTS), [("kl", {}), ("reverse_kl", {})],
                            {"loc": -0.5, "scale": 1.0}, steps=300)
    v = sup.fit1d_optima_view(sc.to_json())
    rows = {r["divergence"].split(":")[0]: r for r in v["table"]}
    rk = next(r for k, r in rows.items() if "KL(q‖p)" in k)
    fk = next(r for k, r in rows.items() if "KL(p‖q)" in k)
    assert rk["optimum"].startswith("local") and "0.6888" in rk["optimum"]
    assert fk["optimum"] == "global optimum"
    assert len(v["optima_notes"]) == 1 and "local" in v["optima_notes"][0] and "0.6888" in v["optima_notes"][0]
    dashed = [t for t in v["figure"]["data"] if t.get("line", {}).get("dash") in ("longdash", "dashdot")]
    assert any("global optimum, D = 0.6888" in t["hovertemplate"] for t in dashed)
    assert any("local optimum, D = 0.8406" in t["hovertemplate"] for t in dashed)
    # the quick view (drawn first) has none of it, and says the optima apply
    quick = sup.fit1d_view(sc.to_json())
    assert quick["optima_apply"] and not quick["with_optima"] and not quick["optima_notes"]


def test_a_drawn_target_with_tails_gives_a_finite_reverse_kl_that_moves():
    """A drawing is 0 outside its box: reverse KL was +∞ from step 0 and its curve never moved.
    With the default tails it is finite and decreases; with tails 0 it is still +∞ (and says why)."""
    import numpy as np

    from divlab import app_support_2d as s2

    strokes = [[(x, 100 + 60 * np.sin(x / 40)) for x in range(50, 600, 5)]]
    spec = sup.density_from_strokes(strokes, 640, 220, (-6.0, 6.0))
    r = dl.fit(dl.from_spec(sup.with_tails(spec)), family="normal", divergence="reverse_kl", steps=150,
               init={"loc": -2.0, "scale": 1.0})
    assert np.isfinite(r.losses).all() and r.final_loss < 0.5 * r.losses[0]
    r0 = dl.fit(dl.from_spec(sup.with_tails(spec, 0.0)), family="normal", divergence="reverse_kl", steps=20,
                init={"loc": -2.0, "scale": 1.0})
    assert r0.diverged and "no" in r0.status
    img = np.full((300, 300, 4), 255, dtype=np.uint8)
    img[100:200, 80:220, :3] = 0
    painted = sup.with_tails(s2.density_from_brush(img, ((-4.0, 4.0), (-4.0, 4.0))))
    r2 = dl.fit(dl.from_spec(painted), family="mvn", divergence="reverse_kl", steps=60)
    assert np.isfinite(r2.losses).all() and r2.final_loss < r2.losses[0]
    with pytest.raises(ValueError, match="tail weight"):
        sup.with_tails(spec, 1.5)
