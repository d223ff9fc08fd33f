"""Discrete: a teacher over outcomes, its students per divergence, alignment (tilt, best-of-n) and
the KL-estimator zoo. Widgets in, divlab.app_discrete out."""

import json

import pandas as pd
import streamlit as st

from divlab import app_discrete as disc
from divlab import load_preset
from divlab import app_support as sup
from divlab.divergences.registry import get

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state


@st.cache_data(show_spinner="Fitting the students (exact sums)...", max_entries=32)
def cached_fit(scenario_json: str):
    return disc.fit_view(scenario_json)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_alignment(target_json: str, reward: tuple, beta: float):
    return disc.alignment_view(target_json, reward, beta)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_estimators(pi_json: str, ref_json: str, n: int):
    return disc.estimator_view(pi_json, ref_json, n)


def _seed_from(sc) -> None:
    """Copy a discrete scenario (or, for any other, the first discrete lesson) into the widgets."""
    if not disc.is_discrete(sc):
        sc = load_preset("distilling_long_tailed_teacher")["scenario"]
    t = sc.build_target()
    ss["disc_weights"] = ", ".join(f"{x:.6g}" for x in t.probs.tolist())
    ss["disc_labels"] = ", ".join(str(x) for x in t.label_list())
    ss["disc_family"] = sc.model.family
    ss["disc_topk"] = int(sc.model.topk or min(5, t.K - 1))
    ss["disc_divs"] = [d.key for d in sc.divergences if d.key in disc.DISCRETE_DIVERGENCES]
    ss["disc_params"] = {d.key: dict(d.params) for d in sc.divergences}
    ss["disc_steps"] = min(max(int(sc.optimizer.steps), 20), 1000)  # within the steps slider (20..1000)
    ss["disc_reward"] = ", ".join(f"{x:g}" for x in disc.default_reward(t))
    ss["disc_base"] = sc
    ss["_disc_seeded"] = _widgets()
    ss.setdefault("disc_beta", 1.0)
    ss.setdefault("disc_draws", 10000)


def _widgets() -> tuple:
    """The page's inputs that define its scenario (to tell a user's edit from the seeding)."""
    return tuple(repr(ss.get(k)) for k in ("disc_weights", "disc_labels", "disc_family", "disc_topk", "disc_divs",
                                            "disc_steps"))


def _apply_preset():
    ss["disc_weights"], ss["disc_labels"] = disc.preset_target(ss["disc_preset"])
    try:
        ss["disc_reward"] = ", ".join(f"{x:g}" for x in disc.default_reward(
            disc.target_from_text(ss["disc_weights"], ss["disc_labels"])))
    except disc.InputError:
        pass


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
if sup.needs_seed(ss, "disc") or "disc_weights" not in ss:
    _seed_from(sc)

st.title("Discrete")
st.caption("A teacher p over discrete outcomes (tokens, answers) and a softmax student q fitted by each divergence, "
           "every D(p‖q) an exact sum over outcomes (no grid, no sampling error); then the same outcomes as a "
           "policy: the KL-regularized optimum (tilt), best-of-n, and the k1/k2/k3 KL estimators.")
lesson = ss.get("lesson")
if lesson and lesson.get("id") in disc.DISCRETE_LESSONS and disc.is_discrete(sc):
    st.info(f"**{lesson['title']}**: {lesson['look_for']}")

# ------------------------------------------------------------------ the target and the students
st.header("Distillation: a teacher p, one student q per divergence")
try:
    target, target_error = disc.target_from_text(ss["disc_weights"], ss["disc_labels"]), None
except disc.InputError as exc:
    target, target_error = None, str(exc)
left, right = st.columns([1, 3])
left.selectbox("target preset", list(disc.TARGET_PRESETS), key="disc_preset", index=None,
               placeholder="load a preset...", on_change=_apply_preset)
with left.expander("edit the teacher p (weights, labels)", expanded=target_error is not None):
    st.text_area("weights", key="disc_weights", height=110,
                 help="One weight per outcome, >= 0; they are normalized for you.")
    st.text_input("labels (optional, comma-separated)", key="disc_labels")
    if target_error:
        st.error(target_error)
if target is None:
    st.stop()
K = target.K
family = left.radio("student", ["categorical_topk", "categorical"], key="disc_family",
                    format_func=lambda f: {"categorical": "full softmax (any q)",
                                           "categorical_topk": "top-k head + uniform tail"}[f])
topk = int(left.number_input("k (free outcomes of the top-k student)", min_value=1, max_value=max(1, K - 1),
                             key="disc_topk", disabled=family != "categorical_topk"))
divs = left.multiselect("divergences", list(disc.DISCRETE_DIVERGENCES), key="disc_divs", max_selections=6,
                        format_func=lambda k: f"{get(k).name}: {get(k).behaviour}")
steps = int(left.slider("steps", 20, 1000, key="disc_steps", step=10))
new_sc = None
try:
    params = ss.get("disc_params", {})
    new_sc = disc.discrete_scenario(target, [(k, params.get(k, {})) for k in divs], family=family,
                                    topk=min(topk, K - 1), steps=steps, base=ss.get("disc_base"))
except disc.InputError as exc:
    left.error(str(exc))
if new_sc is not None:
    # the page's scenario becomes the session's once it is discrete or the user edited something here;
    # merely visiting with another (1D, 2D) scenario leaves that one as it is
    if new_sc != sc and (disc.is_discrete(sc) or _widgets() != ss.get("_disc_seeded")):
        sup.update_scenario(ss, new_sc)
    try:
        view = cached_fit(new_sc.to_json())
    except ValueError as exc:  # e.g. a linked scenario asking for an MMD over too many outcomes
        left.error(str(exc))
        st.stop()
    right.plotly_chart(view["figure"], width="stretch", key="disc_students_chart")
    l1, l2 = st.columns([3, 2])
    l1.dataframe(pd.DataFrame(view["rows"]), hide_index=True, width="stretch")
    l2.plotly_chart(view["loss_figure"], width="stretch", key="disc_loss_chart")
    st.caption(f"The teacher's entropy is {view['teacher_entropy']:.4g} nats; outside its top 5 outcomes it has "
               f"{view['teacher_tail']:.3g} of its mass. Forward KL(p‖q) is mass-covering (a top-k student gives the "
               "tail exactly its mass), reverse KL(q‖p) mode-seeking (it thins the tail and feeds the head).")

# ------------------------------------------------------------------ alignment
st.header("Alignment: the tilted policy and best-of-n")
a1, a2 = st.columns([2, 1])
a1.text_input("reward r per outcome (default: the labels when they are numbers, else the index)", key="disc_reward")
beta = float(a2.select_slider("β (KL weight)", options=[0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0],
                              key="disc_beta"))
try:
    reward = disc.parse_reward(ss["disc_reward"], target.K)
except disc.InputError as exc:
    a1.error(str(exc))
    reward = None
if reward is not None:
    tj = json.dumps(target.to_spec())
    try:
        av = cached_alignment(tj, tuple(reward), beta)
    except ValueError as exc:
        a1.error(str(exc))
        st.stop()
    st.plotly_chart(av["figure"], width="stretch", key="disc_frontier_chart")
    st.dataframe(pd.DataFrame(av["rows"]), hide_index=True, width="stretch")
    ts = av["tilt_stats"]
    st.caption(f"Tilt at β = {beta:g}: KL(π‖π_ref) = {ts['kl']:.4g} nats, E[r] = {ts['reward']:.4g} "
               f"(π_ref: {ts['ref_reward']:.4g}), win rate vs π_ref {ts['win_rate']:.3f}, Pass@1/4/16 of the best "
               f"outcome {ts['pass_at'][1]:.3f} / {ts['pass_at'][4]:.3f} / {ts['pass_at'][16]:.3f}. Best-of-n's exact "
               "KL never exceeds log n − (n−1)/n; it reaches it only without atoms.")
    opt = av["optima"]
    st.caption(f"The optimum of E_π[r] − β·D for other regularizers D (the f-DPO family), at β = {beta:g}, each "
               "solved exactly (KKT condition per outcome, one root find for the normalizer):")
    st.dataframe(pd.DataFrame([{"regularizer D": v["label"],
                                "KL(π‖π_ref) [nats]": v["kl"], "E[r]": v["reward"],
                                "max π": float(v["probs"].max())} for k, v in opt.items()]),
                 hide_index=True, width="stretch")

    # -------------------------------------------------------------- estimators
    st.header("Which KL does your estimator descend? k1, k2, k3")
    e1, e2 = st.columns([1, 2])
    n_draws = int(e1.select_slider("draws of π for the simulation", options=[1000, 10000, 100000],
                                   key="disc_draws"))
    e1.caption(f"π = the tilt at β = {beta:g}, π_ref = the target. k1 = log(π/π_ref), k2 = ½·log²(π/π_ref), "
               "k3 = π_ref/π − 1 − log(π_ref/π), on samples of π.")
    try:
        ev = cached_estimators(json.dumps(av["tilt"].to_spec()), tj, n_draws)
    except ValueError as exc:
        e2.error(str(exc))
    else:
        e2.dataframe(pd.DataFrame(ev["rows"]), hide_index=True, width="stretch")
        st.plotly_chart(ev["figure"], width="stretch", key="disc_estimators_chart")
