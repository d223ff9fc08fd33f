"""Fit 1D: fit a model q to a 1D target p (a component table or a drawing) with several divergences."""

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from divlab import app_support as sup
from divlab import limits, viz

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state
STATE_TABLE, STATE_LAST, STATE_DRAWN = "fit1d_components", "fit1d_last", "fit1d_drawn"
GUARD = "fit1d_guard"  # the running fit's limits.RunGuard
CANVAS_W, CANVAS_H = 640, 220


@st.cache_data(show_spinner="Fitting...", max_entries=64)
def cached_run(scenario_json: str, _guard=None):
    """Results, figure, tables of one scenario: computed once per scenario for every session.
    ``_guard`` (a limits.RunGuard, not part of the cache key) stops the run at the wall-clock
    budget or on Stop; a stopped run is kept on the guard and raised, so it is never cached."""
    view = sup.fit1d_view(scenario_json, callback=_guard)
    return view if _guard is None else _guard.result(view)


# a run stopped by a click (Stop) or by the budget: its partial result is this page's last result
sup.keep_stopped_run(ss, GUARD, STATE_LAST)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_optima(scenario_json: str):
    """The same view with each divergence's optima (a second, cached step after the chart is drawn)."""
    return sup.fit1d_optima_view(scenario_json)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_downloads(scenario_json: str):
    return sup.fit1d_downloads(scenario_json)


def seed(key, value):
    if key not in ss:
        ss[key] = value


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
if sup.scenario_dim(sc) != 1:
    st.title("Fit 1D")
    st.warning(f"The current scenario has a {sup.scenario_dim(sc)}D target: open it on Fit 2D, or start a 1D one here.")
    if st.button("Start from the default 1D scenario", key="fit1d_reset_btn"):
        sup.set_scenario(ss, sup.default_scenario(), "default")
        st.rerun()
    st.stop()
if sup.needs_seed(ss, "fit1d") or "fit1d_divs" not in ss:
    for k, v in sup.fit1d_widget_state(sc).items():
        ss[k] = v
    ss["fit1d_autorun"] = ss.get("scenario_source", "default") != "default"
else:
    for k, v in sup.fit1d_widget_state(sc).items():
        seed(k, v)

st.title("Fit 1D")
lesson = sup.lesson_for(ss, sc)
chart_top = None
if lesson:  # the lesson view: its text, then the chart (with Play) above the fold; the controls below
    st.info(f"**Lesson: {lesson['title']}.** {lesson['look_for']} **▶ Press Play under the chart** (▶ ½× plays it "
            "slowly); dotted curves: where each model started. The controls follow below the chart.")
    chart_top = st.container()
else:
    st.caption("Target p: a mixture you edit, or a curve you draw. Model q: fitted by minimizing D(p‖q) for each "
               "chosen divergence from the same starting point. Values in each divergence's unit (nats for the "
               "log-based ones; H², TV, χ² and α have none).")

# -- target p ---------------------------------------------------------------------------------------
st.subheader("Target p")
mode = st.radio("target from", ["component table", "drawing"], key="fit1d_target_mode", horizontal=True)
target_spec, target_error = None, None
if mode == "component table":
    rows = ss.get(STATE_TABLE, list(sup.DEFAULT_COMPONENTS))
    try:
        records = sup.table_records(rows)
    except sup.ComponentError:
        records = list(sup.DEFAULT_COMPONENTS)
    table_in = pd.DataFrame(records, columns=list(sup.COLUMNS))
    edited = st.data_editor(
        table_in, num_rows="dynamic", hide_index=True, width="stretch", key=f"fit1d_table_{sup.rows_key(records)}",
        column_config={
            "weight": st.column_config.NumberColumn("weight", help="≥ 0; weights are normalized"),
            "family": st.column_config.SelectboxColumn("family", options=list(sup.FAMILIES), required=True),
            "loc": st.column_config.NumberColumn("loc"),
            "scale": st.column_config.NumberColumn("scale", help="> 0; uniform rows span [loc − scale, loc + scale]"),
            "df": st.column_config.NumberColumn("df", help="degrees of freedom, student_t rows only"),
        },
    )
    try:
        target_spec = sup.spec_from_components(edited)
    except sup.ComponentError as exc:
        target_error = str(exc)
        st.error(f"Target table: {target_error} (the last good target and result are kept)")
else:
    from streamlit_drawable_canvas import st_canvas

    c1, c2, c3, c4 = st.columns(4)
    x_lo = c1.number_input("x at the left edge", key="fit1d_draw_lo", step=1.0, format="%.2f")
    x_hi = c2.number_input("x at the right edge", key="fit1d_draw_hi", step=1.0, format="%.2f")
    smooth = c3.slider("smoothing (fraction of the width)", 0.0, 0.1, key="fit1d_draw_smooth", step=0.005)
    seed("fit1d_draw_tails", sup.DEFAULT_TAILS)
    tails = c4.slider("tails: weight of a broad Normal under the drawing", 0.0, 0.2, key="fit1d_draw_tails",
                      step=0.005, help="A drawing is 0 outside its box, so reverse KL (and χ²(q‖p), α < 0) would be "
                                       "+∞ for every model. A small broad component keeps them finite; 0 turns it off.")
    st.caption("Draw the density as one curve from left to right: its height above the bottom edge is p(x) "
               "up to a constant (it is smoothed and normalized). Columns you leave empty have density 0.")
    canvas = st_canvas(stroke_width=3, stroke_color="#222222", background_color="#ffffff", height=CANVAS_H,
                       width=CANVAS_W, drawing_mode="freedraw", key="fit1d_canvas", update_streamlit=True)
    strokes = sup.canvas_points(getattr(canvas, "json_data", None))
    ink = sup.ink_fraction(getattr(canvas, "image_data", None))
    try:
        drawn = sup.density_from_strokes(strokes, CANVAS_W, CANVAS_H, (x_lo, x_hi), smooth=smooth, ink=ink)
    except sup.DrawingError as exc:
        kept = ss.get(STATE_DRAWN)
        if kept is not None:
            if strokes:
                st.warning(f"{exc} The last drawn target is kept.")
            else:  # nothing drawn yet in this view: the scenario's (or the last) drawn target stands
                st.info("Showing the drawn target p below (from the scenario or your last drawing); draw a new "
                        "curve to replace it.")
            target_spec = kept
        else:
            target_error = str(exc)
            st.error(f"Drawing: {exc}")
    else:
        ss[STATE_DRAWN] = drawn
        target_spec = drawn
    if target_spec is not None and target_spec.get("type") == "grid":
        target_spec = sup.with_tails(target_spec, tails)
    if target_spec is not None:
        st.plotly_chart(viz.target_preview(target_spec), width="stretch", key="fit1d_preview")

# -- model q and divergences ------------------------------------------------------------------------
st.subheader("Model q and divergences")
families = sup.fit1d_families()
c1, c2, c3 = st.columns(3)
family = c1.selectbox("model family q", families, key="fit1d_family", help="Families the 1D fitter supports.")
estimator = c2.selectbox("estimator", sup.estimator_choices(), key="fit1d_estimator",
                         help="quadrature: a fixed grid (exact up to discretization); mc: reparameterized Monte "
                              "Carlo; auto: quadrature for density divergences.")
optimizer = c3.selectbox("optimizer", sup.optimizer_choices(), key="fit1d_optimizer")
c1, c2, c3, c4 = st.columns(4)
init_loc = c1.number_input("initial loc", key="fit1d_init_loc", step=0.5, format="%.3f")
init_scale = c2.number_input("initial scale", key="fit1d_init_scale", min_value=1e-3, step=0.1, format="%.3f")
steps = int(c3.number_input("steps", key="fit1d_steps", min_value=1, max_value=5000, step=50))
steps, steps_notice = limits.clamp("steps", steps)
if steps_notice:
    c3.warning(steps_notice)
lr = c4.number_input("learning rate", key="fit1d_lr", min_value=1e-5, max_value=5.0, step=0.01, format="%.4f")

specs = sup.page_fit_specs()
numeric = {s.key for s in sup.fittable_specs()}
chosen = st.multiselect("divergences (up to 6 fits in all)", list(specs), key="fit1d_divs",
                        format_func=lambda k: f"{specs[k].name}: {specs[k].behaviour}")
choices, choice_error = [], None
for key in chosen:
    spec = specs[key]
    if key not in numeric:  # a sample divergence: its parameters as the scenario sets them
        fixed = sup.fixed_choices(sc, key)
        choices.extend(fixed)
        st.caption(f"**{spec.name}** (fitted from model samples; {sup.params_text(fixed[0][1]) or 'default parameters'})"
                   f": {spec.look_for}")
        continue
    values = {}
    for p in spec.params:
        lo, hi, _, _ = sup.slider_range(p)
        wkey = f"fit1d_{key}_{p.name}_values"
        seed(wkey, f"{p.default:g}")
        text = st.text_input(f"{spec.name}: {p.label or p.name} (one or more values, comma-separated)", key=wkey,
                             help=f"{p.description or ''} Allowed: {p.allowed()}; e.g. {lo:g} .. {hi:g}.")
        try:
            values[p.name] = sup.parse_param_values(spec, p, text)
        except ValueError as exc:
            choice_error = str(exc)
            st.error(str(exc))
    choices.extend(sup.expand_choices(spec, values))
    st.caption(f"**{spec.name}**: {spec.look_for}")
if not chosen:
    choice_error = "Choose at least one divergence."
elif len(choices) > sup.MAX_FITS:
    choice_error = f"{len(choices)} fits chosen; at most {sup.MAX_FITS} at once (remove some values)."
    st.error(choice_error)

new_sc, scenario_error = None, None
if target_spec is not None and choice_error is None:
    try:
        new_sc = sup.build_scenario(target_spec, choices, sup.fit1d_init(family, init_loc, init_scale), family=family,
                                    steps=steps, lr=lr, optimizer=optimizer, estimator=estimator, seed=sc.seed,
                                    base=sc)
    except ValueError as exc:
        scenario_error = str(exc)
        st.error(f"These settings do not make a valid scenario: {scenario_error}")
    else:
        if new_sc != sc:
            sup.update_scenario(ss, new_sc)

c_run, c_live = st.columns([1, 4])
run = c_run.button("Run", type="primary", key="fit1d_run_btn")
seed("fit1d_live", True)
live = c_live.toggle("Live: refit as you edit the target or the start (cheap scenarios: up to "
                     f"{sup.LIVE_MAX_STEPS} steps, {sup.LIVE_MAX_FITS} fits, quadrature)", key="fit1d_live")
live_now = bool(live and new_sc is not None and sup.live_ok(new_sc) and target_error is None and choice_error is None
                and (ss.get(STATE_LAST) or {}).get("scenario") != new_sc.to_json())
if run or ss.pop("fit1d_autorun", False) or live_now:
    if target_error is not None:
        st.error("Fix the target before running (the last good result stays below).")
    elif choice_error is not None:
        st.error(choice_error)
    elif new_sc is not None:
        try:  # sessions asking for the same run at once (a class opening a lesson) share one computation
            stop_box, run_json = st.empty(), new_sc.to_json()
            ss[STATE_LAST] = sup.run_guarded(
                ss, GUARD, run_json, lambda guard: cached_run(run_json, _guard=guard),
                stop_requested=sup.rerun_pending(get_script_run_ctx()),
                on_start=lambda guard: stop_box.button("Stop", key="fit1d_stop_btn",
                                                       help=sup.stop_help(guard.budget_s)))
            stop_box.empty()
        except ValueError as exc:
            st.error(str(exc))

last = ss.get(STATE_LAST)
if last is None:
    st.info("Choose divergences and press Run.")
else:
    if last.get("stopped"):
        st.warning(last["stopped"])
    if last.get("note"):
        st.caption(last["note"])
    box = chart_top if chart_top is not None else st.container()
    chart = box.container(key="fit1d_anim").empty()  # the key marks the chart's place for tests and styling
    chart.plotly_chart(viz.for_display(last["figure"]), width="stretch", key="fit1d_chart")
    if last.get("optima_apply") and not last.get("with_optima") and not last.get("stopped"):
        # second step: each divergence's optima (dashed) and whether a fit is stuck at a local one
        try:
            with box.spinner("Finding each divergence's optima..."):
                full = cached_optima(last["scenario"])
        except ValueError:
            full = None
        if full is not None:
            changed = full["figure"] != last["figure"]
            last = ss[STATE_LAST] = full
            if changed:
                chart.plotly_chart(viz.for_display(last["figure"]), width="stretch", key="fit1d_chart_optima")
    for line in last.get("optima_notes") or []:  # next to the chart: a fit stuck at a local optimum
        box.warning(line)
    st.subheader("Final fits")
    st.dataframe(pd.DataFrame(last["table"]), hide_index=True, width="stretch")
    if last.get("modes"):
        st.subheader("Mode metrics")
        st.caption("coverage: mass of the target p inside the model q's 95% region; precision: mass of q inside "
                   "p's 95% region; modes covered: target modes inside q's 95% region.")
        st.dataframe(pd.DataFrame(last["modes"]), hide_index=True, width="stretch")
    st.subheader("What to look for")
    for line in last["look_for"]:
        st.markdown(f"- {line}")
    if st.button("Prepare downloads (HTML animation, GIF, CSV)", key="fit1d_prepare_btn"):
        with st.spinner("Rendering the downloads..."):
            ss["fit1d_downloads"] = (last["scenario"], cached_downloads(last["scenario"]))
    dls = ss.get("fit1d_downloads")
    if dls is not None and dls[0] == last["scenario"]:
        c1, c2, c3 = st.columns(3)
        c1.download_button("Animation (HTML, offline)", dls[1]["html"], file_name="divlab_fit.html",
                           mime="text/html", key="fit1d_dl_html_btn", on_click="ignore")
        c2.download_button("Animation (GIF)", dls[1]["gif"], file_name="divlab_fit.gif", mime="image/gif",
                           key="fit1d_dl_gif_btn", on_click="ignore")
        c3.download_button("Trajectories (CSV)", dls[1]["csv"], file_name="divlab_fit.csv", mime="text/csv",
                           key="fit1d_dl_csv_btn", on_click="ignore")
