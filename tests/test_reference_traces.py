"""Decisions identical, bit for bit, to traces recorded before the redesign (issue 14).

``tests/data/reference_traces/*.json`` were recorded on the main branch before the layout,
settings and protocol redesign (commit ed859fd), with the embedded model (one thread), fresh
memory, seed 1, three episodes of eight steps, for every agent on a generated TextWorld game and
on detective. Every state, candidate list, base logit, neighbour, Q value, corrected logit,
probability and action is compared as the exact ``repr`` of the float.

The method's defaults have moved on since (text-only states, generalising similarity, action
correspondence, calibrated prior, working proposals, the pace bandit); :data:`LEGACY` switches
each new piece off, so this test shows that with the settings of that time the code decides
exactly as it did.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jitrl.agents import AgentContext, make_agent
from jitrl.agents.prompts import prompt_config_for
from jitrl.envs import make_env
from jitrl.memory import open_store
from jitrl.method.config import (
    JitRLConfig,
    PolicyConfig,
    PruneConfig,
    RetrievalConfig,
    ReturnConfig,
    ValueConfig,
)
from jitrl.running.loop import run_episode
from tests.conftest import jericho_dir

DATA = Path(__file__).parent / "data" / "reference_traces"
LEGACY = JitRLConfig(
    returns=ReturnConfig(terminal_penalty=10.0, revisit_penalty=1.0, reward_unit=1.0),
    retrieval=RetrievalConfig(k=10, threshold=0.5, similarity="mix"),
    values=ValueConfig(
        action_similarity="exact", loop_penalty=0.0, kind_backoff=False, kind_prior=0.0
    ),
    policy=PolicyConfig(propose=False, tie_break="first", calibrate=False, pace="calibrated"),
    pruning=PruneConfig(prune_to=None),
)
"""The method as it was when the traces were recorded: penalties in raw points, exact states
and actions, no kind backoff or kind prior, no loop count, no calibration, first-maximum ties,
no pruning, and no proposals (the episode loop gave Jericho and TextWorld no validity check
then, so memory never proposed)."""


def _env_spec(trace: dict[str, Any]) -> str | None:
    if trace["env"].startswith("textworld"):
        return trace["env"]
    games = jericho_dir()
    return None if games is None else f"jericho:{games / trace['env']}"


def _record(decision: Any) -> dict[str, Any]:
    est = decision.estimates
    return {
        "state": [decision.state.text, decision.state.key],
        "candidates": list(decision.candidates),
        "proposed": list(decision.proposed),
        "base_logits": [repr(x) for x in decision.base_logits],
        "logits": [repr(x) for x in decision.logits],
        "probs": [repr(x) for x in decision.probs],
        "q": [repr(x) for x in est.q] if est else None,
        "v": repr(est.v) if est else None,
        "neighbours": [
            [nb.experience.action, repr(nb.experience.ret), repr(nb.similarity)]
            for nb in decision.neighbours
        ],
        "action": decision.action,
    }


def replay(trace: dict[str, Any], spec: str, model: Any, tmp: Path, config: JitRLConfig) -> Any:
    """Play the trace's episodes again and return what they decided."""
    env = make_env(spec, max_steps=trace["max_steps"], seed=1, privileged_key=True)
    store = open_store(tmp / "m.sqlite")
    context = AgentContext(
        model=model, store=store, config=config, seed=1, prompts=prompt_config_for(spec)
    )
    agent = make_agent(trace["agent"], context)
    decisions: list[dict[str, Any]] = []
    original = agent.act

    def act(observation: str, info: Any, valid: Any) -> Any:
        decision = original(observation, info, valid)
        decisions.append(_record(decision))
        return decision

    agent.act = act  # type: ignore[method-assign]
    scores = []
    try:
        for i in range(trace["episodes"]):
            result, _ = run_episode(env, agent, index=i, seed=1 + i, episode_id=f"ref-{i}")
            scores.append(result.score)
    finally:
        agent.close()
        env.close()
        store.close()
    return scores, decisions


TRACES = sorted(DATA.glob("*.json"))


@pytest.fixture(scope="module")
def model() -> Any:
    pytest.importorskip("llama_cpp")
    from jitrl.agents import agent_model

    loaded = agent_model("jitrl", "llamacpp", 1)
    yield loaded
    assert loaded is not None
    loaded.close()


@pytest.mark.slow
@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_decisions_match_the_recorded_traces(path: Path, model: Any, tmp_path: Path) -> None:
    pytest.importorskip("textworld")
    trace = json.loads(path.read_text())
    spec = _env_spec(trace)
    if spec is None:
        pytest.skip("no Jericho games: set JITRL_JERICHO_DIR")
    os.environ.setdefault("JITRL_CACHE", str(tmp_path / "cache"))
    config = LEGACY
    if trace["agent"] == "icl":  # the icl agent of that time: memory in the prompt only
        config = replace(LEGACY, policy=replace(LEGACY.policy, correction="none"))
    if path.stem.endswith("-sample"):
        config = replace(LEGACY, policy=replace(LEGACY.policy, selection="sample"))
    scores, decisions = replay(trace, spec, model, tmp_path, config)
    assert len(decisions) == len(trace["decisions"])
    for i, (got, want) in enumerate(zip(decisions, trace["decisions"], strict=True)):
        assert got == want, f"decision {i} differs"
    assert scores == trace["scores"]
