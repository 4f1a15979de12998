"""The episode loop, written once: every agent plays every environment through
:func:`run_episode`, which returns the episode's result and its decision trace."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jitrl.agents import Agent
from jitrl.envs.base import TextEnv
from jitrl.envs.errors import WebEnvError, WebTimeoutError
from jitrl.method.types import Decision
from jitrl.running.records import EpisodeResult, decision_record

log = logging.getLogger(__name__)

EpisodeCallback = Callable[["EpisodeResult"], None]
StepCallback = Callable[[int], None]
StepResult = tuple[str, float, bool, bool, dict[str, Any]]


@dataclass
class _Tally:
    """Running totals of one episode."""

    llm_seconds: float = 0.0
    memory_seconds: float = 0.0
    env_seconds: float = 0.0
    reward: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, decision: Decision, reward: float, task_id: str) -> None:
        self.llm_seconds += decision.llm_seconds
        self.memory_seconds += decision.memory_seconds
        self.reward += reward
        usage = decision.llm_usage
        foreign = sum(nb.experience.task_id != task_id for nb in decision.neighbours)
        for name, value in (
            ("prompt_tokens", usage.get("prompt_tokens", 0)),
            ("prefill_tokens", usage.get("prefill_tokens", 0)),
            ("llm_calls", usage.get("calls", 0)),
            ("billed_tokens", usage.get("billed_tokens", 0)),
            ("completion_tokens", usage.get("completion_tokens", 0)),
            ("neighbours", len(decision.neighbours)),
            ("foreign_neighbours", foreign),
        ):
            self.counts[name] = self.counts.get(name, 0) + int(value)


def _valid_hook(env: TextEnv) -> Callable[[str], bool] | None:
    hook = getattr(env, "is_valid", None)
    if hook is None:
        inner = getattr(env, "env", None)
        hook = getattr(inner, "is_valid", None)
    return hook if callable(hook) else None


def _reset(env: TextEnv, seed: int) -> tuple[str, dict[str, Any]]:
    """``env.reset``; a page that times out makes a failed episode of no steps."""
    try:
        return env.reset(seed=seed)
    except WebTimeoutError as err:  # launch and configuration errors stop the run
        log.error("reset failed, episode recorded as failed: %s", err)
        return "", {"candidates": [], "lost": True, "won": False, "error": str(err)}


def _step(env: TextEnv, action: str, info: dict[str, Any]) -> StepResult:
    """``env.step``; an environment failure ends the episode as lost (the run goes on)."""
    try:
        return env.step(action)
    except WebEnvError as err:
        log.error("step failed, episode recorded as failed: %s", err)
        ended = {**info, "candidates": [], "won": False, "lost": True, "error": str(err)}
        return "", 0.0, True, False, ended


def _labelled(info: dict[str, Any], labels: list[str] | None) -> dict[str, Any]:
    """What the agent sees: readable labels as candidates when the environment has them.

    Web actions name volatile element ids (``click("17")``); their labels (``click button
    'Submit'``) read better for the LLM and stay the same across pages, so memory keys on them.
    """
    if not labels or len(labels) != len(info["candidates"]):
        return info
    return {**info, "candidates": list(labels)}


def _action(decision: Decision, info: dict[str, Any], labels: list[str] | None) -> str:
    """The environment's action for the agent's choice (a label maps back to its action)."""
    if not labels or len(labels) != len(info["candidates"]):
        return decision.action
    return dict(zip(labels, info["candidates"], strict=True)).get(decision.action, decision.action)


def run_episode(
    env: TextEnv,
    agent: Agent,
    *,
    index: int,
    seed: int,
    episode_id: str,
    on_step: StepCallback | None = None,
) -> tuple[EpisodeResult, list[dict[str, Any]]]:
    """Play one episode; the agent learns from it at the end. Returns the result and its trace.

    A failing environment (a browser page that times out) does not stop a run: the episode ends
    as lost with the error in ``EpisodeResult.error``, and what was played is still learnt from.
    """
    t_start = time.perf_counter()
    agent.reseed(seed)  # episode i plays the same whatever ran before it (resume, workers)
    obs, info = _reset(env, seed)
    tally = _Tally(env_seconds=time.perf_counter() - t_start)
    agent.begin(env.task_id, episode_id)
    valid = _valid_hook(env)
    trace: list[dict[str, Any]] = []
    terminated = truncated = False
    while not (terminated or truncated) and info.get("candidates"):
        labels = info.get("candidate_labels")
        decision = agent.act(obs, _labelled(info, labels), valid)
        t0 = time.perf_counter()
        action = _action(decision, info, labels)
        obs, reward, terminated, truncated, info = _step(env, action, info)
        tally.env_seconds += time.perf_counter() - t0
        agent.reward(reward)
        tally.add(decision, reward, env.task_id)
        trace.append(decision_record(index, len(trace), decision, reward))
        if action != decision.action:
            trace[-1]["env_action"] = action
        if on_step is not None:
            on_step(1)
    failed = bool(info.get("lost", False))
    agent.end(failed=failed)
    result = EpisodeResult(
        index=index,
        episode_id=episode_id,
        task_id=env.task_id,
        agent=agent.name,
        seed=seed,
        score=float(info.get("score", tally.reward)),
        steps=len(trace),
        reward=tally.reward,
        won=bool(info.get("won", False)),
        lost=failed,
        wall_seconds=time.perf_counter() - t_start,
        llm_seconds=tally.llm_seconds,
        memory_seconds=tally.memory_seconds,
        env_seconds=tally.env_seconds,
        memory_size=agent.memory_size(),
        error=str(info.get("error", "")),
        **{"prompt_tokens": 0, "prefill_tokens": 0, **tally.counts},
    )
    return result, trace
