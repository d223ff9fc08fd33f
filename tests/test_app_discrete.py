"""The Discrete page (AppTest), its app layer, the categorical scenarios and their CLI runs (issue 15)."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import divlab as dl  # noqa: E402
from divlab import alignment as al  # noqa: E402
from divlab import app_discrete as disc  # noqa: E402
from divlab import app_support as sup  # noqa: E402
from divlab.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240
LESSONS = list(disc.DISCRETE_LESSONS)


def lesson(lesson_id: str, steps: int = 60) -> dl.Scenario:
    return dl.load_preset(lesson_id)["scenario"].with_overrides(steps=steps)


def page(scenario=None, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "discrete.py"), default_timeout=TIMEOUT)
    if scenario is not None:
        at.session_state[sup.SCENARIO_KEY] = scenario
        at.session_state[sup.VERSION_KEY] = 1
        at.session_state["scenario_source"] = "lesson"
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at, column):
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


@pytest.mark.parametrize("lesson_id", LESSONS)
def test_lessons_draw_students_frontier_and_zoo(lesson_id):
    sc = lesson(lesson_id)
    at = page(sc)
    assert not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # students, their losses, frontier, estimator zoo
    t = sc.build_target()
    fits = table(at, "D(p‖q) at the fit")
    # the numbers on screen are the exact sums between the teacher and each fitted student
    res = dl.fit(t, family=sc.model.family, topk=sc.model.topk, divergence=[d.key for d in sc.divergences],
                 params={d.key: d.resolved() for d in sc.divergences}, steps=sc.optimizer.steps, lr=sc.optimizer.lr)
    for row, r in zip(fits.to_dict("records"), res):
        assert row["D(p‖q) at the fit"] == pytest.approx(float(dl.divergence(t, r.model(), r.divergence,
                                                                             **r.divergence_params)), rel=1e-9)
    front = table(at, "log n − (n−1)/n [nats]")
    assert (front["KL exact [nats]"] <= front["log n − (n−1)/n [nats]"] + 1e-12).all()
    assert (front["E[r] tilt at the same KL"] >= front["E[r] best-of-n"] - 1e-10).all()
    zoo = table(at, "expected gradient equals")
    assert list(zoo["estimator"]) == ["k1", "k2", "k3"]
    assert abs(zoo["bias [nats]"][0]) < 1e-12 and abs(zoo["bias [nats]"][2]) < 1e-12 and abs(zoo["bias [nats]"][1]) > 1e-3


def test_long_tail_lesson_forward_kl_covers_the_tail_exactly():
    at = page(lesson("distilling_long_tailed_teacher", steps=300))
    fits = table(at, "tail mass (top-k student)").set_index("divergence")
    p = np.sort(dl.load_preset("distilling_long_tailed_teacher")["scenario"].build_target().probs.numpy())[::-1]
    assert fits.loc["KL(p‖q), forward", "tail mass (top-k student)"] == pytest.approx(p[5:].sum(), rel=1e-6)
    assert fits.loc["KL(q‖p), reverse", "tail mass (top-k student)"] < 0.6 * p[5:].sum()


def test_best_of_n_lesson_saturates_below_the_formula():
    at = page(lesson("best_of_n_formula"))
    front = table(at, "log n − (n−1)/n [nats]").set_index("n")
    assert front.loc[128, "KL exact [nats]"] == pytest.approx(np.log(1 / 0.2), abs=1e-4)
    assert front.loc[128, "log n − (n−1)/n [nats]"] == pytest.approx(np.log(128) - 127 / 128, rel=1e-12)


@pytest.mark.parametrize("key,value,needle", [
    pytest.param("disc_weights", "0.5, abc, 0.2", "weights: entry 2 ('abc') is not a number", id="nan-text"),
    pytest.param("disc_weights", "0.5, -0.1", "entry 2 (-0.1) is negative", id="negative"),
    pytest.param("disc_labels", "a, b", "labels: 2 labels for 60 weights", id="labels"),
    pytest.param("disc_reward", "1, 2, 3", "reward: 3 numbers for 60 outcomes", id="reward"),
])
def test_bad_input_is_reported_next_to_its_control(key, value, needle):
    at = page()
    at.session_state[key] = value
    at.run()
    assert not at.exception
    assert any(needle in e.value for e in at.error), [e.value for e in at.error]


def test_preset_and_full_student():
    at = page()
    at.selectbox(key="disc_preset").select("answers, reward = label").run()
    assert not at.exception and at.session_state["disc_labels"] == "0, 1, 2, 3, 4, 5, 6, 7, 8"
    at.radio(key="disc_family").set_value("categorical").run()
    assert not at.exception and not at.error
    fits = table(at, "D(p‖q) at the fit")
    assert (fits["D(p‖q) at the fit"] < 1e-6).all()  # the full softmax student reaches the teacher
    assert at.session_state[sup.SCENARIO_KEY].model.family == "categorical"


def test_other_pages_say_where_a_categorical_scenario_goes():
    at = AppTest.from_file(str(ROOT / "pages" / "race.py"), default_timeout=TIMEOUT)
    at.session_state[sup.SCENARIO_KEY] = lesson("best_of_n_formula")
    at.session_state[sup.VERSION_KEY] = 1
    at.run()
    assert not at.exception
    assert any("open the Discrete page" in e.value for e in at.error)


def test_home_lists_the_discrete_lessons():
    cards = {c["id"]: c for c in sup.lesson_cards()}
    for lid in LESSONS:
        assert cards[lid]["page"] == "discrete"
    from divlab.viz import thumbnail

    fig = thumbnail(cards["distilling_long_tailed_teacher"]["scenario"].target)
    assert fig.data[0].type == "bar" and len(fig.data[0].y) == 21  # 20 top outcomes + the rest
    assert sum(fig.data[0].y) == pytest.approx(1.0, abs=1e-9)


def test_scenario_validation_for_categorical():
    base = dl.load_preset("best_of_n_formula")["scenario"].to_dict()
    for patch, msg in [
        ({"estimator": "quadrature"}, "use 'auto'"),
        ({"model": {"family": "categorical_topk"}}, "needs topk"),
        ({"model": {"family": "normal", "init": {"loc": 0, "scale": 1}}}, "fitted by the categorical"),
        ({"model": {"family": "categorical_topk", "topk": 9}}, "must be < 9"),
        ({"divergences": [{"key": "sinkhorn", "params": {}}]}, "no exact sum between Categoricals"),
    ]:
        with pytest.raises(ValueError, match=msg):
            dl.Scenario.from_dict({**base, **patch})
    sc = dl.Scenario.from_dict(base)
    assert dl.Scenario.from_url_param(sc.to_url_param()) == sc


def test_cli_prints_the_students(capsys):
    assert main(["fit", "--preset", "which_kl_estimator_descends", "--steps", "300", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "closed_form" in out and "q[0]=" in out
    sc = dl.load_preset("which_kl_estimator_descends")["scenario"]
    p = np.asarray(sc.target["probs"])
    fwd = [ln for ln in out.splitlines() if ln.strip().startswith("KL(p‖q), forward:")][0]
    # forward KL: the 7 tail outcomes share exactly the tail's mass (q[3] = q[4] = 0.35 / 7), and the
    # 5 not printed hold the rest
    assert f"q[3]={p[3:].sum() / 7:.4f} q[4]={p[3:].sum() / 7:.4f} q[rest]={5 * p[3:].sum() / 7:.4f}" in fwd


def test_app_layer_views_agree_with_the_library():
    t = dl.Categorical(probs=[0.4, 0.3, 0.2, 0.1])
    r = (0.0, 1.0, 2.0, 3.0)
    av = disc.alignment_view(json.dumps(t.to_spec()), r, 0.5)
    row = av["rows"][2]
    assert row["n"] == 4
    assert row["KL exact [nats]"] == pytest.approx(al.policy_stats(dl.best_of_n(t, r, 4), t, r, k=())["kl"], rel=1e-12)
    assert av["tilt_stats"]["reward"] == pytest.approx(float(dl.tilt(t, r, 0.5).probs.numpy() @ np.array(r)), rel=1e-12)


def test_home_opens_a_discrete_lesson_on_the_discrete_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    at.button(key="home_open_best_of_n_formula_discrete_btn").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[sup.SCENARIO_KEY] == dl.load_preset("best_of_n_formula")["scenario"]
    assert any(t.value == "Discrete" for t in at.title)
    assert any("Best-of-n is not as far as its formula says" in i.value for i in at.info)


def test_visiting_with_a_density_scenario_keeps_it_until_an_edit():
    sc = dl.load_preset("two_equal_modes")["scenario"]
    at = page(sc)
    assert at.session_state[sup.SCENARIO_KEY] == sc  # the page shows a discrete lesson, the 1D scenario stays
    at.slider(key="disc_steps").set_value(100).run()
    assert not at.exception
    now = at.session_state[sup.SCENARIO_KEY]
    assert now.model.family == "categorical_topk" and now.optimizer.steps == 100
