"""make_agent and the in-context-memory baseline (icl)."""

from __future__ import annotations

import pytest

from jitrl.agents import LLMAgent, agent_names
from jitrl.agents.baselines import QLearnAgent, RandomAgent
from jitrl.llm.scripted import ScriptedModel
from jitrl.memory import open_store
from tests.conftest import ListStore, build_agent
from tests.test_baselines import ChainEnv, play

# the LLM prefers to wait; only memory can teach it to go right
SCORES = {"wait": -1.0, "go right": -3.0, "go left": -3.0, "jump": -6.0}


def test_make_agent_builds_every_agent(tmp_path):
    model = ScriptedModel(SCORES)
    kinds = {
        name: type(build_agent(name, model, tmp_path / f"{name}.sqlite")) for name in agent_names()
    }
    assert kinds == {
        "jitrl": LLMAgent,
        "static": LLMAgent,
        "icl": LLMAgent,
        "qlearn": QLearnAgent,
        "random": RandomAgent,
    }
    with pytest.raises(ValueError, match="unknown agent"):
        build_agent("oracle", model, None)
    with pytest.raises(ValueError, match="needs a language model"):
        build_agent("icl", None, None)


def test_icl_writes_neighbours_into_the_prompt_and_adds_only_exploration_to_logits():
    model = ScriptedModel(SCORES)
    agent = build_agent("icl", model, ListStore())
    play(agent, 2, ChainEnv(max_steps=4))
    first = [c.prompt.user for c in model.score_calls[:4]]
    later = [c.prompt.user for c in model.score_calls[4:]]
    assert not any("Past experience" in p for p in first[:1])  # nothing to recall at the start
    assert all("Past experience in similar situations" in p for p in later)
    assert any("- wait: " in p for p in later)  # the action taken, with its return
    # memory's returns reach the logits only through the prompt: a seen action keeps the
    # (calibrated) base logit, an untried one gets jitrl's exploration bonus
    assert isinstance(agent, LLMAgent)
    ep = agent.learner.episode("chain")
    d = ep.decide("room 0", ["wait", "go right", "fly"], logits=[-1.0, -3.0, -3.0], key="room0")
    est = d.estimates
    assert est is not None and d.neighbours and est.counts[2] == 0 and est.counts[0] > 0
    beta = agent.learner.config.policy.beta
    assert d.logits[0] == pytest.approx(d.prior_weight * -1.0)
    assert d.logits[2] == pytest.approx(d.prior_weight * -3.0 + (est.q[2] - est.v) / beta)


def test_jitrl_with_the_same_memory_moves_the_logits():
    store = ListStore()
    for agent in (build_agent("icl", ScriptedModel(SCORES), store),):
        play(agent, 2, ChainEnv(max_steps=4))
    jit = build_agent("jitrl", ScriptedModel(SCORES), store)
    assert isinstance(jit, LLMAgent)
    d = jit.learner.decide("room 0", ["wait", "go right"], logits=[-1.0, -3.0], key="room0")
    est = d.estimates
    assert est is not None and d.logits != d.base_logits
    # waiting looped back (a revisit penalty) while going right made progress: memory raises
    # "go right" relative to the model's preference for waiting
    assert est.q[1] > est.q[0]
    assert d.logits[1] - d.logits[0] > d.base_logits[1] - d.base_logits[0]


def test_icl_memory_persists(tmp_path):
    path = tmp_path / "icl.sqlite"
    agent = build_agent("icl", ScriptedModel(SCORES), path)
    play(agent, 1, ChainEnv(max_steps=3))
    agent.close()
    store = open_store(path, create=False)
    assert len(store) == 3
    store.close()
