"""Fit 2D: fit a 2D model q (Normal, diagonal Normal, mixture) to a 2D target p with several divergences."""

import json

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from divlab import app_support as sup
from divlab import app_support_2d as s2
from divlab import limits, viz
from divlab.app import entropic_map as emap
from divlab.distributions import from_spec
from divlab.scenario import ESTIMATORS, load_preset
from divlab.viz import target_figure2d

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state
LAST, BRUSHED, CLICKED = "fit2d_last", "fit2d_brushed", "fit2d_clicked"
GUARD = "fit2d_guard"  # the running fit's limits.RunGuard
CANVAS = 360
DEFAULT_LESSON = "banana_2d"
MODES = ["named shape", "component table", "paint a density (brush)", "click points (sample cloud)"]


@st.cache_data(show_spinner="Fitting...", max_entries=64)
def cached_view(scenario_json: str, layout: str, _guard=None):
    """Figure and tables of one scenario, computed once per scenario (and layout) for every session.
    ``_guard`` (limits.RunGuard, not part of the key) stops the run at the server's wall-clock
    budget or on Stop; a stopped run is kept on the guard and raised, so it is never cached."""
    view = s2.fit2d_view(scenario_json, layout=layout, callback=_guard)
    return view if _guard is None else _guard.result(view)


# a run stopped by a click (Stop) or by the budget: its partial result is this page's last result
sup.keep_stopped_run(ss, GUARD, LAST)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_downloads(scenario_json: str):
    return s2.fit2d_downloads(scenario_json)


@st.cache_data(show_spinner="Computing the transport map...", max_entries=32)
def cached_maps(scenario_json: str, models_key: str):
    """The entropic map from each final model q to the target p (keyed by the final models, so a
    stopped run's partial result gets its own)."""
    return emap.fit2d_maps({"scenario": scenario_json, "final_models": json.loads(models_key)})


@st.cache_data(show_spinner=False, max_entries=64)
def cached_preview(spec_json: str):
    return target_figure2d(from_spec(json.loads(spec_json)))


def seed(key, value):
    if key not in ss:
        ss[key] = value


# -- seed the widgets from the session's scenario (a 2D one), else from the banana lesson ------------
sc = ss.get(sup.SCENARIO_KEY)
sc2d = sc if sc is not None and sup.scenario_dim(sc) == 2 else None
fresh = sup.needs_seed(ss, "fit2d")  # once per scenario version (a lesson, link or file was loaded)
if sc2d is not None and (fresh or "fit2d_divs" not in ss):
    for k, v in s2.widget_state(sc2d).items():
        ss[k] = v
    ss["fit2d_loaded_target"] = sc2d.target
    ss["fit2d_autorun"] = ss.get("scenario_source", "default") != "default"
else:
    for k, v in s2.widget_state(sc2d or load_preset(DEFAULT_LESSON)["scenario"]).items():
        seed(k, v)

st.title("Fit 2D")
st.caption("Target p: a named shape, a table of 2D Normals, a painted density or a cloud of clicked points. "
           "Model q: fitted by minimizing D(p‖q) for each chosen divergence from the same start. Contours show "
           "log p in nats; each model is drawn as its 1σ (thick) and 2σ (thin) ellipses.")
lesson = sup.lesson_for(ss, sc2d) if sc2d is not None else None
if lesson:
    st.info(f"**Lesson: {lesson['title']}.** {lesson['look_for']}")

# -- target p ---------------------------------------------------------------------------------------
st.subheader("Target p")
modes = MODES + (["the scenario's target"] if ss.get("fit2d_loaded_target") is not None else [])
if ss.get("fit2d_target_mode") not in modes:
    ss["fit2d_target_mode"] = modes[0]
mode = st.radio("target from", modes, key="fit2d_target_mode", horizontal=True)
target_spec, target_error = None, None
if mode == "named shape":
    shape = st.selectbox("shape", list(s2.SHAPES), key="fit2d_shape")
    params = {}
    cols = st.columns(len(s2.SHAPES[shape][1]))
    for col, (name, (default, lo, hi, help_)) in zip(cols, s2.SHAPES[shape][1].items()):
        seed(f"fit2d_shape_{shape}_{name}", float(default))
        params[name] = col.slider(name, float(lo), float(hi), step=0.05, help=help_, key=f"fit2d_shape_{shape}_{name}")
    target_spec = s2.shape_spec(shape, **params)
elif mode == "component table":
    rows = ss.get("fit2d_rows") or list(s2.DEFAULT_TABLE)
    edited = st.data_editor(
        pd.DataFrame(rows, columns=list(s2.TABLE_COLUMNS)), num_rows="dynamic", hide_index=True, width="stretch",
        key=f"fit2d_table_{s2.rows_key(rows)}",
        column_config={
            "weight": st.column_config.NumberColumn("weight", help="≥ 0; weights are normalized"),
            "scale_x": st.column_config.NumberColumn("scale_x", help="standard deviation along x, > 0"),
            "scale_y": st.column_config.NumberColumn("scale_y", help="standard deviation along y, > 0"),
            "corr": st.column_config.NumberColumn("corr", help="correlation, strictly between −1 and 1"),
        })
    try:
        target_spec = s2.spec_from_table(edited)
    except s2.InputError as exc:
        target_error = str(exc)
        st.error(f"Target table: {exc} (the last good target and result are kept)")
elif mode in ("paint a density (brush)", "click points (sample cloud)"):
    from streamlit_drawable_canvas import st_canvas

    c1, c2 = st.columns(2)
    seed("fit2d_draw_half", 4.0)
    half = c1.number_input("half-width w of the drawing area (x and y from −w to w)", min_value=0.5, max_value=50.0,
                           step=0.5, key="fit2d_draw_half")
    box = ((-half, half), (-half, half))
    if mode.startswith("paint"):
        seed("fit2d_brush", 28)
        brush = c2.slider("brush size [pixels]", 5, 60, key="fit2d_brush")
        seed("fit2d_tails", sup.DEFAULT_TAILS)
        tails = c2.slider("tails: weight of a broad Normal under the painting", 0.0, 0.2, key="fit2d_tails",
                          step=0.005, help="A painting is 0 outside its box, so reverse KL would be +∞ for every "
                                           "model; a small broad component keeps it finite. 0 turns it off.")
        st.caption("Paint where the target should have mass: overlapping strokes add up (darker = more density). "
                   "The painting is smoothed and normalized into a density on a 48 × 48 grid.")
        canvas = st_canvas(stroke_width=brush, stroke_color="rgba(0, 0, 0, 0.35)", background_color="#ffffff",
                           height=CANVAS, width=CANVAS, drawing_mode="freedraw", key="fit2d_brush_canvas",
                           update_streamlit=True)
        store = BRUSHED
        try:
            drawn = sup.with_tails(s2.density_from_brush(getattr(canvas, "image_data", None), box), tails)
        except s2.InputError as exc:
            drawn, err = None, exc
    else:
        c2.caption("Click to place sample points (at least 3). The target is this cloud: only sample-based "
                   "divergences (Sinkhorn, MMD, energy) can fit it.")
        canvas = st_canvas(stroke_width=1, fill_color="#222222", stroke_color="#222222", background_color="#ffffff",
                           height=CANVAS, width=CANVAS, drawing_mode="point", point_display_radius=4,
                           key="fit2d_points_canvas", update_streamlit=True)
        store = CLICKED
        try:
            drawn = s2.points_from_canvas(getattr(canvas, "json_data", None), CANVAS, CANVAS, box)
        except s2.InputError as exc:
            drawn, err = None, exc
    if drawn is not None:
        ss[store] = drawn
        target_spec = drawn
    elif ss.get(store) is not None:
        st.warning(f"{err} The last good drawing is kept.")
        target_spec = ss[store]
    else:
        target_error = str(err)
        st.error(f"Drawing: {err}")
else:
    target_spec = ss.get("fit2d_loaded_target")
    st.caption("The target the loaded scenario (lesson, link or file) holds.")

if target_spec is not None:
    with st.expander("preview of the target p (log p contours, nats)", expanded=mode != "named shape"):
        st.plotly_chart(cached_preview(s2.spec_json(target_spec)), width="stretch", key="fit2d_preview")
points_target = isinstance(target_spec, dict) and target_spec.get("type") == "empirical"

# -- model q and divergences ------------------------------------------------------------------------
st.subheader("Model q and divergences")
c1, c2, c3 = st.columns(3)
family = c1.selectbox("model family q", list(s2.FAMILIES_2D), key="fit2d_family", format_func=s2.FAMILIES_2D.get)
K = int(c2.number_input("mixture components", 1, 5, key="fit2d_components", disabled=family != "mixture"))
layout = c3.radio("layout", ["overlay", "one panel per divergence"], key="fit2d_layout", horizontal=True)
c1, c2, c3 = st.columns(3)
start_x = c1.number_input("start: mean x", key="fit2d_start_x", step=0.5, format="%.3f")
start_y = c2.number_input("start: mean y", key="fit2d_start_y", step=0.5, format="%.3f")
start_s = c3.number_input("start: scale (σ, > 0)", key="fit2d_start_scale", min_value=1e-3, step=0.1, format="%.3f")

allowed = s2.sample_divergences() if points_target else s2.density_divergences() + s2.sample_divergences()
if points_target:
    st.caption("A clicked point cloud has no density: only sample-based divergences are offered.")
ss["fit2d_divs"] = [k for k in ss.get("fit2d_divs", []) if k in allowed]
from divlab.divergences.registry import get as _get  # noqa: E402 - registry lookup for labels

chosen = st.multiselect("divergences (up to 6 fits in all)", allowed, key="fit2d_divs",
                        format_func=lambda k: f"{_get(k).name}: {_get(k).behaviour}")
choices, choice_error = [], None
for key in chosen:
    p = s2.main_param(key)
    if p is not None:
        wkey = f"fit2d_{key}_values"
        seed(wkey, f"{float(p.default):g}")
        text = st.text_input(f"{_get(key).name}: {p.label or p.name} (one or more values, comma-separated)", key=wkey,
                             help=f"{p.description or ''} Allowed: {p.allowed()}.")
    else:
        text = ""
    try:
        choices.extend(s2.parse_choices(key, text))
    except s2.InputError as exc:
        choice_error = str(exc)
        st.error(str(exc))
if not chosen:
    choice_error = "Choose at least one divergence."
elif len(choices) > sup.MAX_FITS:
    choice_error = f"{len(choices)} fits chosen; at most {sup.MAX_FITS} at once (remove some values)."
    st.error(choice_error)

c1, c2, c3, c4, c5 = st.columns(5)
est_opts = ["samples"] if points_target else list(ESTIMATORS)
if ss.get("fit2d_estimator") not in est_opts:
    ss["fit2d_estimator"] = est_opts[0]
estimator = c1.selectbox("estimator", est_opts, key="fit2d_estimator",
                         help="auto: quadrature on a 2D grid for density divergences, samples for Sinkhorn/MMD/energy; "
                              "mc: reparameterized Monte Carlo.")
samples = int(c2.number_input("samples per step", 16, 4096, key="fit2d_samples", step=16,
                              help="model (and target) samples per step for the mc and samples estimators"))
samples, samples_notice = limits.clamp("samples", samples)
if samples_notice:
    c2.warning(samples_notice)
optimizer = c3.selectbox("optimizer", sup.optimizer_choices(), key="fit2d_optimizer")
steps = int(c4.number_input("steps", 1, 5000, key="fit2d_steps", step=25))
steps, notice = limits.clamp("steps", steps)
if notice:
    c4.warning(notice)
lr = c5.number_input("learning rate", 1e-5, 5.0, key="fit2d_lr", step=0.01, format="%.4f")

new_sc, scenario_error = None, None
if target_spec is not None and choice_error is None:
    try:
        new_sc = s2.build_2d_scenario(target_spec, choices, family=family,
                                      init=s2.fit2d_init(family, start_x, start_y, start_s, K), components=K,
                                      estimator=estimator, samples=samples, optimizer=optimizer, lr=lr, steps=steps,
                                      seed=sc2d.seed if sc2d is not None else 0,
                                      title=sc2d.title if sc2d is not None and sc2d.target == target_spec else "")
    except ValueError as exc:
        scenario_error = str(exc)
        st.error(f"These settings do not make a valid scenario: {scenario_error}")

layout_key = "panels" if layout.startswith("one panel") else "overlay"
run = st.button("Run", type="primary", key="fit2d_run_btn")
if run or ss.pop("fit2d_autorun", False):
    if target_error is not None:
        st.error("Fix the target before running (the last good result stays below).")
    elif choice_error is not None:
        st.error(choice_error)
    elif new_sc is not None:
        try:  # the server's wall-clock budget and Stop; sessions asking for the same run at once share it
            stop_box, run_json = st.empty(), new_sc.to_json()
            ss[LAST] = sup.run_guarded(
                ss, GUARD, (run_json, layout_key), lambda guard: cached_view(run_json, layout_key, _guard=guard),
                stop_requested=sup.rerun_pending(get_script_run_ctx()),
                on_start=lambda guard: stop_box.button("Stop", key="fit2d_stop_btn",
                                                       help=sup.stop_help(guard.budget_s)))
            stop_box.empty()
        except ValueError as exc:
            st.error(str(exc))
        else:
            if new_sc != sc:
                sup.update_scenario(ss, new_sc)

last = ss.get(LAST)
if last is None:
    st.info("Choose a target and divergences, then press Run.")
else:
    if last.get("stopped"):
        st.warning(last["stopped"])
    figure, maps = last["figure"], None
    show_map = st.toggle(emap.MAP_TOGGLE, key="fit2d_show_map",
                         help="Arrows from samples x of the fitted model q to T_ε(x): where q's mass would have to "
                              "move to become p under entropic optimal transport (cost |x − y|²).")
    if show_map and not last.get("final_models"):
        st.info("Run again to compute the transport map of this result.")
    elif show_map:
        maps = cached_maps(last["scenario"], emap.maps_key(last["final_models"]))
        which = None
        ok = [i for i, mp in enumerate(maps) if "error" not in mp]
        if emap.fit2d_shared_panel(last) and ok:
            if ss.get("fit2d_map_which") not in ok:  # a choice kept from a run with more fits
                ss["fit2d_map_which"] = ok[0]
            which = st.selectbox("arrows of the fit", ok, key="fit2d_map_which", format_func=lambda i: maps[i]["label"],
                                 help="The overlay holds every fit in one panel: the arrows are one fit's "
                                      "(one panel per divergence shows each fit's own).")
        figure = emap.fit2d_map_figure(last, maps, which)
    st.plotly_chart(viz.for_display(figure), width="stretch", key="fit2d_anim")
    if maps:
        st.caption(emap.map_caption(maps, "fit2d"))
        st.dataframe(pd.DataFrame(emap.map_rows(maps, "model q")), hide_index=True, width="stretch")
    st.subheader("Final fits")
    st.caption("D(p‖q) at the last step, in the unit the table names, by the fit's estimator (p = target, q = model).")
    st.dataframe(pd.DataFrame(last["table"]), hide_index=True, width="stretch")
    if last.get("modes"):
        st.subheader("Mode metrics")
        st.caption("coverage: mass of the target p inside the model q's 95% region; precision: mass of q inside "
                   "p's 95% region; modes covered: target modes inside q's 95% region.")
        st.dataframe(pd.DataFrame(last["modes"]), hide_index=True, width="stretch")
    st.subheader("What to look for")
    for line in last["look_for"]:
        st.markdown(f"- {line}")
    if st.button("Prepare downloads (HTML animation, GIF, PNG, CSV)", key="fit2d_prepare_btn"):
        with st.spinner("Rendering the downloads..."):
            ss["fit2d_downloads"] = (last["scenario"], cached_downloads(last["scenario"]))
    dls = ss.get("fit2d_downloads")
    if dls is not None and dls[0] == last["scenario"]:
        c1, c2, c3, c4 = st.columns(4)
        c1.download_button("Animation (HTML, offline)", dls[1]["html"], file_name="divlab_fit2d.html",
                           mime="text/html", key="fit2d_dl_html_btn", on_click="ignore")
        c2.download_button("Animation (GIF)", dls[1]["gif"], file_name="divlab_fit2d.gif", mime="image/gif",
                           key="fit2d_dl_gif_btn", on_click="ignore")
        c3.download_button("Final frame (PNG)", dls[1]["png"], file_name="divlab_fit2d.png", mime="image/png",
                           key="fit2d_dl_png_btn", on_click="ignore")
        c4.download_button("Trajectories (CSV)", dls[1]["csv"], file_name="divlab_fit2d.csv", mime="text/csv",
                           key="fit2d_dl_csv_btn", on_click="ignore")
