from dataclasses import replace

import pytest

from jitrl.llm.base import Prompt
from jitrl.llm.scripted import ScriptedModel
from jitrl.method.config import (
    JitRLConfig,
    PolicyConfig,
    RetrievalConfig,
    ReturnConfig,
    ValueConfig,
)
from jitrl.method.learner import JitRL
from jitrl.method.types import State

CANDS = ["go north", "go south", "eat lamp"]


def cfg(**policy):
    return JitRLConfig(
        returns=ReturnConfig(gamma=0.5, terminal_penalty=10.0),
        retrieval=RetrievalConfig(k=10, threshold=0.5, similarity="mix"),
        values=ValueConfig(
            alpha=5.0, action_similarity="exact", kind_backoff=False, kind_prior=0.0
        ),
        policy=PolicyConfig(**{"beta": 0.5, "pace": "calibrated", **policy}),
    )


def test_no_memory_is_the_frozen_llm(list_store):
    jit = JitRL(None, cfg())
    d = jit.decide("dark room", CANDS, logits=[-1.0, -2.0, -3.0])
    assert d.action == "go north" and d.estimates is None
    assert d.logits == d.base_logits


def test_memory_steers_away_from_a_bad_action_and_toward_a_good_one(list_store):
    jit = JitRL(list_store, cfg())
    state = State("dark room lamp", "k1")
    for i in range(3):  # the LLM likes "go north", which keeps failing
        with jit.episode("t", f"bad{i}") as ep:
            ep.decide(state, CANDS, logits=[0.0, -50.0, -50.0])
            ep.reward(0.0)
            ep.finish(failed=True)
    d = jit.decide(state, CANDS, logits=[-1.0, -2.0, -3.0])
    n = d.estimates
    assert n is not None and n.counts == (3, 0, 0)
    assert n.q[0] == pytest.approx(-10.0)  # failed: one step, terminal penalty
    assert n.advantages[0] == 0.0 < n.advantages[1]  # all took it: A = 0; untried: bonus
    assert d.action == "go south"
    with jit.episode("t", "good") as ep:
        ep.decide(state, CANDS, logits=[-1.0, -2.0, -3.0])
        ep.reward(10.0)
    assert len(list_store) == 4  # context exit finished and stored the episode
    d2 = jit.decide(state, CANDS, logits=[-1.0, -2.0, -3.0])
    assert d2.action == "go south" and d2.estimates.q[1] == pytest.approx(10.0)


def test_with_the_kind_backoff_an_untried_action_of_a_failing_kind_waits(list_store):
    config = cfg()
    config = replace(config, values=replace(config.values, kind_backoff=True))
    jit = JitRL(list_store, config)
    state = State("dark room lamp", "k1")
    for i in range(3):  # "go north" keeps failing; "go south" is of the same kind
        with jit.episode("t", f"bad{i}") as ep:
            ep.decide(state, CANDS, logits=[0.0, -50.0, -50.0])
            ep.reward(0.0)
            ep.finish(failed=True)
    d = jit.decide(state, CANDS, logits=[-1.0, -2.0, -3.0])
    assert d.estimates is not None
    assert d.estimates.q[0] < d.estimates.q[1] < d.estimates.q[2]
    assert d.action == "eat lamp"


def test_returns_are_stored_discounted(list_store):
    jit = JitRL(list_store, cfg())
    ep = jit.episode("t", "e1")
    for t, r in enumerate([0.0, 0.0, 4.0]):
        ep.decide(f"room {t}", CANDS, logits=[0.0, 0.0, 0.0])
        ep.reward(r)
    exps = ep.finish()
    assert [e.ret for e in exps] == [1.0, 2.0, 4.0]
    assert [e.step for e in exps] == [0, 1, 2]
    assert [e.reward for e in list_store] == [0.0, 0.0, 4.0]


def test_with_td_lambda_a_step_is_credited_with_memorys_value_of_the_next_state(list_store):
    config = cfg()
    config = replace(config, returns=replace(config.returns, td_lambda=0.0))
    jit = JitRL(list_store, config)
    with jit.episode("t", "past") as ep:  # memory learns that "hall" is worth 4
        ep.decide(State("hall", "h"), CANDS, logits=[0.0, 0.0, 0.0])
        ep.reward(4.0)
    ep = jit.episode("t", "now")
    ep.decide(State("cellar", "c"), CANDS, logits=[0.0, 0.0, 0.0])  # no neighbours here
    ep.reward(0.0)
    ep.decide(State("hall", "h"), CANDS, logits=[0.0, 0.0, 0.0])  # V(hall) = 4
    ep.reward(0.0)  # ... but this time nothing came of it
    exps = ep.finish()
    # one-step TD: the cellar's step is credited with gamma * V(hall), not with the bad luck
    # that followed; the hall's own step is the last one, never bootstrapped
    assert [e.ret for e in exps] == [pytest.approx(0.5 * 4.0), 0.0]


def test_abandoned_episode_stores_nothing(list_store):
    jit = JitRL(list_store, cfg())
    with pytest.raises(RuntimeError, match="boom"), jit.episode("t", "e1") as ep:
        ep.decide("room", CANDS, logits=[0.0, 0.0, 0.0])
        raise RuntimeError("boom")
    assert len(list_store) == 0


def test_memory_proposes_valid_actions_it_knows(list_store):
    jit = JitRL(list_store, cfg())
    with jit.episode("t", "e1") as ep:
        ep.decide("kitchen", ["open window"], logits=[0.0])
        ep.reward(10.0)
    d = jit.decide("kitchen", ["look"], logits=[0.0], valid=lambda a: a == "open window")
    assert d.proposed == ("open window",) and d.candidates == ("look", "open window")
    assert d.base_logits == (0.0, 0.0)  # floor logit = lowest base logit
    none = jit.decide("kitchen", ["look"], logits=[0.0], valid=lambda a: False)
    assert none.proposed == ()


def test_model_scores_when_no_logits_given(list_store):
    model = ScriptedModel({"go south": -0.1}, default=-5.0)
    jit = JitRL(list_store, cfg(), model=model)
    d = jit.decide("room", CANDS, prompt=Prompt("sys", "user"))
    assert d.action == "go south"
    assert d.llm_usage["prompt_tokens"] >= 0


def test_bad_input_is_rejected_clearly(list_store):
    jit = JitRL(list_store, cfg())
    with pytest.raises(ValueError, match="at least one candidate"):
        jit.decide("room", [], logits=[])
    with pytest.raises(ValueError, match="2 candidates but 1 logits"):
        jit.decide("room", ["a", "b"], logits=[0.0])
    with pytest.raises(ValueError, match="finite"):
        jit.decide("room", ["a"], logits=[float("nan")])
    with pytest.raises(ValueError, match="prompt"):
        jit.decide("room", ["a"])
    with pytest.raises(TypeError):
        jit.decide("room", "abc", logits=[0.0])
    ep = jit.episode("t")
    with pytest.raises(RuntimeError):
        ep.reward(1.0)


def test_working_memory_breaks_a_loop_within_the_episode(list_store):
    jit = JitRL(list_store, cfg())
    ep = jit.episode("t", "loop")
    logits = [0.0, -1.0]  # the LLM prefers "open", which loops between two states
    seen = []
    for t in range(6):
        state = (
            State(f"room {'ab'[t % 2]}", "ab"[t % 2]) if "close" not in seen else State("c", "c")
        )
        d = ep.decide(state, ["open", "close"], logits=logits)
        seen.append(d.action)
        ep.reward(0.0)
    assert "close" in seen[:4]  # the loop open -> open -> ... is broken within the episode
    assert len(list_store) == 0  # nothing is stored before finish()


def _door_cycle(store, loop_on_repeat: bool) -> list[str]:
    """A room with two doors: each open or close leads to a new combination until all four are
    seen, so no step leads back to a visited state before a whole round; the model likes the
    door actions better than the way out."""
    config = cfg()
    values = replace(config.values, alpha=0.0, loop_on_repeat=loop_on_repeat)  # no optimism
    jit = JitRL(store, replace(config, values=values))
    ep = jit.episode("t", "doors")
    doors = {"a": False, "b": False}
    taken = []
    for _ in range(12):
        view = "".join(k for k, v in doors.items() if v) or "-"
        cands = [f"{'close' if v else 'open'} {k}" for k, v in doors.items()] + ["go out"]
        d = ep.decide(State(f"room {view}", view), cands, logits=[0.0, 0.0, -1.5])
        taken.append(f"{view}:{d.action}")
        if d.action == "go out":
            break
        verb, _, door = d.action.partition(" ")
        doors[door] = verb == "open"
        ep.reward(0.0)
    return taken


def test_loop_on_repeat_penalises_a_repeated_action_before_a_round_closes(tmp_path):
    off = _door_cycle(tmp_path / "off.sqlite", loop_on_repeat=False)
    on = _door_cycle(tmp_path / "on.sqlite", loop_on_repeat=True)
    assert len(set(off)) < len(off)  # without: a door action repeated in its state ...
    assert len(set(on)) == len(on)  # with: never; the way out is taken once all were tried
    assert on[-1].endswith("go out") and len(on) < len(off)


def test_working_memory_off_repeats_the_llm(list_store):
    off = JitRLConfig(retrieval=RetrievalConfig(working_memory=False))
    jit = JitRL(list_store, off)
    ep = jit.episode("t", "loop")
    acts = []
    for _t in range(4):
        d = ep.decide(State("room", "r"), ["open", "close"], logits=[0.0, -1.0])
        acts.append(d.action)
        ep.reward(0.0)
    assert acts == ["open"] * 4


def test_episodic_memory_off_retrieves_the_current_episode_only(tmp_path):
    path = tmp_path / "m.sqlite"
    full = JitRL(path, JitRLConfig())
    with full.episode("t", "first") as ep:
        ep.decide("dark room", ["open", "close"], logits=[0.0, 0.0])
        ep.reward(-1.0)
        ep.finish()
    reset = JitRL(path, JitRLConfig(retrieval=RetrievalConfig(episodic_memory=False)))
    ep = reset.episode("t", "second")
    first = ep.decide("dark room", ["open", "close"], logits=[0.0, 0.0])
    assert first.neighbours == ()  # the stored episode is not searched...
    ep.reward(0.0)
    again = ep.decide("dark room", ["open", "close"], logits=[0.0, 0.0])
    assert [n.experience.episode_id for n in again.neighbours] == ["second"]  # ...this one is
    assert full.episode("t").decide("dark room", ["open", "close"], logits=[0.0, 0.0]).neighbours


def test_reflection_blends_llm_step_scores_into_stored_rewards():
    from jitrl.llm.scripted import ScriptedModel
    from jitrl.method.config import JitRLConfig
    from jitrl.method.reflection import ReflectionConfig
    from tests.conftest import ListStore

    cfg = JitRLConfig(reflection=ReflectionConfig(weight=0.5))
    model = ScriptedModel(generations=["1, -1, 0]}"])
    store = ListStore()
    jit = JitRL(store, cfg, model=model)
    ep = jit.episode("t")
    for i, reward in enumerate((0.0, 0.0, 2.0)):
        ep.decide(f"room {i}", ["a", "b"], logits=[0.0, 0.0])
        ep.reward(reward)
    exps = ep.finish()
    # zero env rewards become weight * score; a real reward stays as it was
    assert [e.reward for e in exps][:2] == [0.5, -0.5]
    assert exps[2].reward == 2.0
    assert len(model.generate_calls) == 1


def test_reflection_falls_back_to_env_rewards_on_garbage():
    from jitrl.llm.scripted import ScriptedModel
    from jitrl.method.config import JitRLConfig
    from jitrl.method.reflection import ReflectionConfig
    from tests.conftest import ListStore

    cfg = JitRLConfig(reflection=ReflectionConfig(weight=0.5))
    jit = JitRL(ListStore(), cfg, model=ScriptedModel(generations=["no idea"]))
    ep = jit.episode("t")
    for i, reward in enumerate((0.0, 3.0)):
        ep.decide(f"room {i}", ["a", "b"], logits=[0.0, 0.0])
        ep.reward(reward)
    assert [e.reward for e in ep.finish()] == [0.0, 3.0]


def _probs_after(store, rewards: list[float], beta_unit: str) -> list[float]:
    """The corrected distribution in a state after two episodes with these rewards."""
    config = JitRLConfig(
        returns=ReturnConfig(gamma=0.5, terminal_penalty=0.0, revisit_penalty=0.0),
        retrieval=RetrievalConfig(k=10, threshold=0.5, similarity="mix"),
        values=ValueConfig(alpha=0.0, action_similarity="exact", loop_penalty=0.0, kind_prior=0.0),
        policy=PolicyConfig(
            beta=0.5,
            beta_unit=beta_unit,
            selection="sample",
            calibrate=False,  # type: ignore[arg-type]
        ),
    )
    jit = JitRL(type(store)(), config)
    state = State("dark room lamp", "k1")
    for i, (action, reward) in enumerate(zip(CANDS[:2], rewards, strict=True)):
        with jit.episode("t", f"e{i}") as ep:
            ep.decide(state, [action], logits=[0.0])
            ep.reward(reward)
    return list(jit.decide(state, CANDS, logits=[-1.0, -2.0, -3.0], task_id="t").probs)


def test_beta_in_reward_units_means_the_same_on_every_scale(list_store) -> None:
    small = _probs_after(list_store, [1.0, 0.5], "reward")
    large = _probs_after(list_store, [100.0, 50.0], "reward")
    assert large == pytest.approx(small)
    # in points, the same evidence a hundred times larger swamps the model
    points_small = _probs_after(list_store, [1.0, 0.5], "points")
    points_large = _probs_after(list_store, [100.0, 50.0], "points")
    assert max(points_large) > 0.999 > max(points_small)
