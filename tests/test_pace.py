"""Who leads an episode: the pace bandit over the model-led and memory-led episodes of a task."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.agents import LLMAgent
from jitrl.agents.baselines import RandomAgent
from jitrl.llm.base import Prompt
from jitrl.llm.scripted import ScriptedModel
from jitrl.method.config import JitRLConfig, PolicyConfig, ReturnConfig
from jitrl.method.learner import JitRL
from jitrl.method.pace import LEADS, TOLERANCE, PaceBandit
from jitrl.running.run_folder import RunWriter, catch_up, run_episodes
from tests.conftest import ListStore, build_agent
from tests.test_baselines import ChainEnv

BANDIT = PolicyConfig(pace="bandit", pace_window=10, pace_bonus=1.0)


def test_the_model_always_leads_unless_the_bandit_is_asked_for() -> None:
    pace = PaceBandit(PolicyConfig(pace="calibrated"))
    for _ in range(5):
        pace.observe("t", "model", -1.0)
    assert not pace.active
    assert pace.choose("t") == "model"


def test_each_lead_is_tried_once_then_the_better_one_leads() -> None:
    pace = PaceBandit(BANDIT)
    assert pace.choose("t") == "model"  # the model first
    pace.observe("t", "model", 0.0)
    assert pace.choose("t") == "memory"
    pace.observe("t", "memory", 1.0)
    assert pace.choose("t") == "memory"
    assert pace.choose("other") == "model"  # per task


def test_ties_go_to_the_model_and_a_test_episode_takes_the_best_mean() -> None:
    pace = PaceBandit(BANDIT)
    pace.observe("t", "model", 0.5)
    pace.observe("t", "memory", 0.5)
    assert pace.choose("t") == "model"
    fresh = PaceBandit(BANDIT)
    fresh.observe("t", "model", -1.0)
    assert fresh.choose("t", explore=False) == "model"  # memory untried: no exploring in a test
    fresh.observe("t", "memory", 0.0)
    assert fresh.choose("t", explore=False) == "memory"


def test_the_less_tried_lead_is_explored_within_the_scores_spread() -> None:
    pace = PaceBandit(BANDIT)
    for value in (1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0):
        pace.observe("t", "model", value)  # mean 0.5, spread 0.5
    pace.observe("t", "memory", 0.45)  # a little worse, but tried once
    assert pace.choose("t", explore=False) == "model"
    assert pace.choose("t") == "memory"
    no_bonus = PaceBandit(PolicyConfig(pace="bandit", pace_bonus=0.0))
    for lead, value in [("model", 1.0), ("model", 0.0), ("memory", 0.45)]:
        no_bonus.observe("t", lead, value)  # type: ignore[arg-type]
    assert no_bonus.choose("t") == "model"


def test_the_window_forgets_old_episodes() -> None:
    pace = PaceBandit(PolicyConfig(pace="bandit", pace_window=4, pace_bonus=0.0))
    for lead, value in [("model", 0.0), ("memory", 1.0), ("memory", 1.0)]:
        pace.observe("t", lead, value)  # type: ignore[arg-type]
    assert pace.choose("t") == "memory"
    for _ in range(3):
        pace.observe("t", "model", 2.0)  # the model's early episodes leave the window
    assert pace.played("t") == {"model": 3, "memory": 1}
    assert pace.choose("t") == "model"
    for _ in range(4):
        pace.observe("t", "model", 2.0)
    assert pace.choose("t") == "memory"  # gone from the window: tried again
    with pytest.raises(ValueError, match="finite"):
        pace.observe("t", "model", float("nan"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(LEADS), st.floats(-10, 10)), min_size=1, max_size=30),
    st.integers(2, 12),
)
def test_without_exploring_the_best_mean_in_the_window_leads(history, window) -> None:
    pace = PaceBandit(PolicyConfig(pace="bandit", pace_window=window))
    for lead, value in history:
        pace.observe("t", lead, value)
    kept = history[-window:]
    means = {lead: [v for who, v in kept if who == lead] for lead in LEADS}
    chosen = pace.choose("t", explore=False)
    assert means[chosen], "a test episode takes a lead the window has scores of"
    best = max(float(np.mean(v)) for v in means.values() if v)
    scale = max(1.0, max(abs(v) for _, v in kept))
    assert float(np.mean(means[chosen])) >= best - TOLERANCE * scale
    assert pace.choose("t") in LEADS


def test_a_test_episode_takes_the_only_lead_in_the_window() -> None:
    """The model's episodes have left the window: memory's scores are all there is."""
    pace = PaceBandit(PolicyConfig(pace="bandit", pace_window=3))
    for lead, value in [("model", 5.0), ("memory", 1.0), ("memory", 1.0), ("memory", 1.0)]:
        pace.observe("t", lead, value)  # type: ignore[arg-type]
    assert pace.played("t") == {"model": 0, "memory": 3}
    assert pace.choose("t", explore=False) == "memory"
    assert pace.choose("t") == "model"  # a learning episode tries the model again
    assert PaceBandit(BANDIT).choose("t", explore=False) == "model"  # nothing seen yet


def test_equal_scores_summed_from_fractions_leave_the_lead_to_the_model() -> None:
    """0.1 + 0.2 differs from 0.3 in its last bit; that must neither win nor make a spread."""
    pace = PaceBandit(BANDIT)
    pace.observe("t", "model", 0.3)
    pace.observe("t", "memory", 0.1 + 0.2)
    assert pace.choose("t") == "model"
    for value in (0.1, 0.3, 0.6, 1 / 3):
        steady = PaceBandit(BANDIT)
        leads = []
        for _ in range(33):  # the same score every episode: memory only when it must be tried
            leads.append(steady.choose("t"))
            steady.observe("t", leads[-1], value)
        memory_at = [i for i, lead in enumerate(leads) if lead == "memory"]
        assert memory_at == [1, 12, 23], (value, memory_at)


def test_an_episode_is_counted_once_when_storing_it_failed_and_is_retried(list_store) -> None:
    """The service retries a finish whose store write failed: one episode, counted once."""
    calls = {"n": 0}
    add = list_store.add_episode

    def flaky(experiences, meta=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        add(experiences, meta)

    list_store.add_episode = flaky
    jit = _learner(list_store, ScriptedModel(default=-1.0), pace="bandit")
    ep = jit.episode("task")
    ep.decide("room", ["look"], prompt=Prompt("sys", "user"))
    ep.reward(1.0)
    with pytest.raises(OSError, match="disk full"):
        ep.finish()
    assert jit.pace.played("task") == {"model": 0, "memory": 0}
    assert jit.reward_units.unit("task") == 1.0  # nothing learnt from an unstored episode
    ep.finished = False  # what the service does before a retry
    ep.finish()
    assert len(list_store.episodes) == 1
    assert jit.pace.played("task") == {"model": 1, "memory": 0}


def _learner(list_store, model=None, **policy) -> JitRL:
    config = JitRLConfig(returns=ReturnConfig(terminal_penalty=1.0), policy=PolicyConfig(**policy))
    return JitRL(list_store, config, model=model)


def _play(jit: JitRL, reward: float, *, learn: bool = True) -> str:
    with jit.episode("task", learn=learn) as ep:
        ep.decide("room", ["look", "go north"], prompt=Prompt("sys", "user"))
        ep.reward(reward)
        return ep.lead


def test_memory_led_episodes_do_not_ask_the_model_and_the_scores_pick_the_lead(
    list_store,
) -> None:
    model = ScriptedModel({"look": -0.1}, default=-5.0)
    jit = _learner(list_store, model, pace="bandit")
    assert _play(jit, 0.0) == "model"
    assert len(model.score_calls) == 1
    with jit.episode("task") as ep:
        assert ep.lead == "memory"
        d = ep.decide("room", ["look", "go north"], prompt=Prompt("sys", "user"))
        assert d.prior_weight == 0.0 and d.llm_seconds == 0.0
        assert len(model.score_calls) == 1  # the model was not asked
        ep.reward(1.0)
    assert jit.pace.played("task") == {"model": 1, "memory": 1}
    assert _play(jit, 1.0) == "memory"  # memory scored higher
    assert _play(jit, 0.0, learn=False) == "memory"  # a test episode: the best mean, not counted
    assert jit.pace.played("task") == {"model": 1, "memory": 2}
    with jit.episode("task") as ep, pytest.raises(ValueError, match="needs logits"):
        assert ep.lead == "memory"  # the model would not be asked, yet a call without
        ep.decide("room", ["look", "go north"])  # logits or prompt is refused all the same


def test_an_episode_is_judged_by_the_sum_of_its_rewards_alone(list_store) -> None:
    """Penalties are left out: their size in reward units changes as the unit is learnt, and
    two lost games with the same score would look different."""
    jit = _learner(list_store, ScriptedModel(default=-1.0), pace="bandit")
    for lead in ("model", "memory"):
        with jit.episode("task") as ep:
            assert ep.lead == lead
            ep.decide("room", ["look"], prompt=Prompt("sys", "user"))
            ep.reward(0.25)
            ep.decide("room", ["look"], prompt=Prompt("sys", "user"))  # a revisit
            ep.reward(-1.25)
            ep.finish(failed=True)
    assert jit.pace.played("task") == {"model": 1, "memory": 1}
    assert _play(jit, 0.0) == "model"  # equal scores (-1 and -1): the model keeps the lead


def test_the_model_always_leads_without_the_bandit_a_memory_or_the_advantages(
    list_store,
) -> None:
    model = ScriptedModel(default=-1.0)
    for jit in (
        _learner(list_store, model, pace="calibrated"),
        _learner(None, model, pace="bandit"),
        _learner(list_store, model, pace="bandit", correction="exploration"),
        JitRL(list_store, JitRLConfig(policy=BANDIT), model=model, shared=True),
    ):
        assert [_play(jit, float(i % 2)) for i in range(3)] == ["model"] * 3


def _leads(folder) -> list[str | None]:
    with RunWriter(folder, {}) as writer:
        return [r.lead for r in writer.results]


def test_a_resumed_run_rebuilds_the_window_of_the_uninterrupted_one(tmp_path) -> None:
    """The window lives in the process; a resumed run rebuilds it from its folder."""
    model = ScriptedModel({"wait": -1.0, "go right": -3.0, "go left": -3.0, "jump": -6.0})
    store = ListStore()
    first = build_agent("jitrl", model, store)
    with RunWriter(tmp_path / "run", {}) as writer:
        run_episodes(ChainEnv(max_steps=6), first, writer, episodes=13, seed=1)
    assert isinstance(first, LLMAgent)
    played = first.learner.pace.window("chain")
    assert len(played) == 10 and {lead for lead, _ in played} == {"model", "memory"}
    assert [lead for lead, _ in played] == _leads(tmp_path / "run")[3:]
    resumed, forgot = build_agent("jitrl", model, store), build_agent("jitrl", model, store)
    assert isinstance(resumed, LLMAgent) and isinstance(forgot, LLMAgent)
    with RunWriter(tmp_path / "run", {}) as writer:
        catch_up(resumed, writer)
    assert resumed.learner.pace.window("chain") == played
    assert resumed.learner.pace.choose("chain") == first.learner.pace.choose("chain")
    assert forgot.learner.pace.window("chain") == ()  # without catching up: tried afresh
    assert forgot.learner.pace.choose("chain") == "model"


class _OldAgent(RandomAgent):
    """An agent of a user's own, written before ``recall`` was part of the protocol."""

    recall = None  # type: ignore[assignment]


def test_an_agent_without_recall_resumes_as_before(tmp_path) -> None:
    for _ in range(2):
        with RunWriter(tmp_path / "run", {}) as writer:
            catch_up(_OldAgent(), writer)  # type: ignore[arg-type]
            run_episodes(ChainEnv(max_steps=3), _OldAgent(), writer, episodes=2, seed=1)  # type: ignore[arg-type]
    assert _leads(tmp_path / "run") == ["model"] * 4


def test_the_window_must_be_a_whole_number_of_episodes() -> None:
    for bad in (2.5, 1, True):
        with pytest.raises(ValueError, match="pace_window must be an int >= 2"):
            PolicyConfig(pace_window=bad)  # type: ignore[arg-type]
