"""divlab.viz: figure structure, numbers behind the curves, JSON round trip, no Streamlit."""

import json
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import divlab as dl
from divlab.viz import color_for, density_figure, fit_animation, frame_steps, loss_figure


@pytest.fixture(scope="module")
def target():
    return dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


@pytest.fixture(scope="module")
def results(target):
    # different lengths on purpose: the second fit has fewer steps
    a = dl.fit(target, divergence="kl", steps=80, init={"loc": -2.0, "scale": 1.0})
    b = dl.fit(target, divergence="reverse_kl", steps=30, init={"loc": -2.0, "scale": 1.0})
    return [a, b]


def test_frames_and_traces(target, results):
    fig = fit_animation(target, results, n_frames=20)
    R = len(results)
    assert len(fig.frames) == 20
    assert len(fig.data) == 1 + 4 * R  # target, models, loss curves, markers, the starting models' ghosts
    for fr in fig.frames:
        assert len(fr.data) == 2 * R
        assert list(fr.traces) == [1, 2, 2 * R + 1, 2 * R + 2]
    assert fig.data[0].fill == "tozeroy"
    assert [fig.data[1 + i].name for i in range(R)] == [r.label for r in results]
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ Play", "▶ ½×", "▶ 2×", "⏸ Pause"]
    durations = [b.args[1]["frame"]["duration"] for b in fig.layout.updatemenus[0].buttons[:3]]
    assert durations == [100, 200, 50]  # 20 frames: 2 s; 60 frames (the app's): 6 s at normal speed
    labels = [s.label for s in fig.layout.sliders[0].steps]
    names = [f.name for f in fig.frames]
    for lab, name in zip(labels, names):  # a step of the run, or the polish after its 80 steps
        assert lab == name if int(name) <= 80 else lab == "80 + polish"
    ghosts = fig.data[3 * R + 1:]
    assert all(g.opacity < 0.5 and g.line.dash == "dot" for g in ghosts)
    assert np.allclose(ghosts[0].y, fig.frames[0].data[0]["y"], rtol=1e-6)  # the start, frozen
    assert fig.layout.yaxis2.type == "log"  # every loss here is positive


def test_frames_sit_where_the_parameters_move(target, results):
    """At least half of the frames fall on the steps where the parameters move (issue 14): the
    shortest run of steps from the start that holds 90 % of the parameters' movement gets at least
    half of the frames, where evenly spaced frames gave it only its share of the steps."""
    steps = frame_steps(results, 30)
    last = max(len(r.losses) for r in results) - 1
    move = np.zeros(last)
    for r in results:
        for arr in r.trajectory.values():
            a = np.asarray(arr, dtype=float)
            a = np.concatenate([a, np.full(last + 1 - a.size, a[-1])])
            move += np.abs(np.diff(a)) / (a.max() - a.min())
    window = int(np.searchsorted(np.cumsum(move), 0.9 * move.sum())) + 1  # steps 1..window
    inside = [s for s in steps if 0 < s <= window]
    assert len(inside) >= len(steps) // 2, (window, last, steps)
    evenly = [int(round(i * last / 29)) for i in range(30)]
    assert len([s for s in evenly if 0 < s <= window]) < len(inside)


def test_frame_model_curve_is_the_trajectory_normal(target, results):
    x = np.linspace(-8.0, 8.0, 101)
    fig = fit_animation(target, results, n_frames=15, x=x)
    steps = frame_steps(results, 15)
    assert steps[0] == 0 and steps[-1] == max(len(r.losses) for r in results) - 1
    assert len(results[1].losses) < len(results[0].losses)  # so some frames clamp the shorter fit
    for k, fr in enumerate(fig.frames):
        s = int(fr.name)
        assert s == steps[k]
        for i, r in enumerate(results):
            j = min(s, len(r.losses) - 1)  # the shorter fit stays at its last point
            loc, scale = r.trajectory["loc"][j], r.trajectory["scale"][j]
            expected = dl.Normal(float(loc), float(scale)).prob(torch.as_tensor(x)).numpy()
            # frames carry float32 curves (frame_values): 7 significant digits
            y = np.asarray(fr.data[i].y)
            assert y.dtype == np.float32
            np.testing.assert_allclose(y, expected, rtol=2e-7, atol=1e-37)
            assert fr.data[i].x is None  # x is sent once, with the drawn trace
            marker = fr.data[len(results) + i]
            assert list(marker.x) == [j]
            assert marker.y[0] == pytest.approx(float(r.losses[j]))


def test_first_frame_matches_initial_data(target, results):
    fig = fit_animation(target, results, n_frames=5)
    np.testing.assert_allclose(np.asarray(fig.data[1].y), np.asarray(fig.frames[0].data[0].y))


def test_colors_fixed_per_divergence(target, results):
    fig = fit_animation(target, results, n_frames=3)
    assert fig.data[1].line.color == color_for("kl") == fig.data[3].line.color
    assert fig.data[2].line.color == color_for("reverse_kl")
    assert color_for("kl") != color_for("reverse_kl")
    assert loss_figure(results).data[0].line.color == color_for("kl")


def test_n_frames_clamped_to_trajectory_length(target):
    r = dl.fit(target, divergence="kl", steps=5, init={"loc": 0.0, "scale": 2.0})
    fig = fit_animation(target, [r], n_frames=60)
    assert [f.name for f in fig.frames] == [str(i) for i in range(len(r.losses))]
    with pytest.raises(ValueError, match="n_frames"):
        fit_animation(target, [r], n_frames=0)
    with pytest.raises(ValueError, match="at least one FitResult"):
        fit_animation(target, [])


def test_figures_serialize(target, results):
    for fig in (fit_animation(target, results, n_frames=10), density_figure(target), loss_figure(results)):
        assert isinstance(fig, go.Figure)
        back = json.loads(fig.to_json())
        assert back["data"]


def test_density_figure_is_the_target_density(target):
    x = np.linspace(-6, 6, 50)
    fig = density_figure(target, x=x)
    np.testing.assert_allclose(np.asarray(fig.data[0].y), target.prob(torch.as_tensor(x)).numpy(), rtol=1e-12)


def test_infinite_loss_is_a_gap_not_a_number():
    p = dl.Uniform(-1.0, 1.0)
    r = dl.fit(p, divergence="reverse_kl", steps=10, init={"loc": 0.0, "scale": 2.0})
    assert np.isinf(r.final_loss)
    fig = fit_animation(p, [r])
    assert fig.data[2].y == (None,)
    json.loads(fig.to_json())  # no NaN/inf in the JSON
    assert "NaN" not in fig.to_json() and "Infinity" not in fig.to_json()
    assert loss_figure([r]).layout.yaxis.type != "log"


def test_divlab_does_not_import_streamlit():
    code = "import divlab, divlab.viz, divlab.app_support, sys; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_figure_spec_round_trip_and_display(target, results):
    """A cached figure is its plain dict: it rebuilds the same figure, and for_display hands that very
    dict to a renderer (st.plotly_chart calls to_dict) without copying or validating it again."""
    import pickle

    from divlab.viz import figure_spec, for_display

    fig = fit_animation(target, results, n_frames=5)
    spec = figure_spec(fig)
    assert pickle.loads(pickle.dumps(spec)).keys() == spec.keys()
    again = go.Figure(spec)
    assert len(again.frames) == len(fig.frames) == 5
    y = again.frames[-1].data[0].y  # plotly 6 keeps arrays as base64 typed-array specs in dicts
    if isinstance(y, dict):
        import base64

        y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
    np.testing.assert_array_equal(np.asarray(y), np.asarray(fig.frames[-1].data[0].y))
    shown = for_display(spec)
    assert isinstance(shown, go.Figure) and shown.to_dict() is spec
    assert pickle.loads(pickle.dumps(shown)).to_dict() == spec
    assert for_display(fig) is fig
    with pytest.raises(ValueError, match="for_display"):
        for_display([1, 2])


def test_animation_specs_are_the_figures_as_dicts(target, results):
    """The app's fast path (fit_animation_spec, race_animation_spec) (frames and slider added as dicts, never validated) gives exactly the
    dict of the validated figure: same traces, frames, typed arrays, slider and template."""
    from divlab.viz import figure_spec, fit_animation_spec

    for n in (1, 7, 60):
        spec = fit_animation_spec(target, results, n_frames=n)
        assert spec == figure_spec(fit_animation(target, results, n_frames=n))
        assert len(spec["frames"]) == len(spec["layout"]["sliders"][0]["steps"]) == len(frame_steps(results, n))
        assert spec["frames"][-1]["data"][0]["y"]["dtype"] == "f4"  # base64 float32, as to_dict writes it
    again = go.Figure(spec)  # and plotly accepts every key of it
    assert len(again.frames) == len(frame_steps(results, 60))
    from divlab.viz import race_animation, race_animation_spec

    for n in (1, 40):
        race = race_animation_spec(target, results, n_frames=n)
        assert race == figure_spec(race_animation(target, results, n_frames=n))
    assert len(go.Figure(race).frames) == len(frame_steps(results, 40))


def test_unvalidated_frames_equal_validated_ones(target, results, monkeypatch):
    """Animation frames skip plotly's validation (viz.layout.animation_frame); validated, the same
    figure must come out byte for byte, so none of their keys is a typo plotly would reject."""
    import plotly.io as pio

    import divlab.viz.race as race_mod

    fast = [pio.to_json(fit_animation(target, results, n_frames=7), validate=False),
            pio.to_json(race_mod.race_animation(target, results, n_frames=7), validate=False)]

    import divlab.viz.layout as layout_mod

    made = []

    def validated(name, data, traces):
        made.append(name)
        return go.Frame(name=name, data=data, traces=traces)

    monkeypatch.setattr(layout_mod, "animation_frame", validated)  # what fit_animation and race_animation use
    slow = [pio.to_json(fit_animation(target, results, n_frames=7), validate=False),
            pio.to_json(race_mod.race_animation(target, results, n_frames=7), validate=False)]
    assert len(made) == 2 * len(frame_steps(results, 7))  # every frame of both went through validation
    assert fast == slow
