"""The episode loop, written once: every agent plays every environment through
:func:`run_episode`, which returns the episode's result and its decision trace."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from jitrl.agents import Agent
from jitrl.envs.base import Fold, StepInfo, StepResult, TextEnv
from jitrl.envs.errors import WebEnvError, WebTimeoutError
from jitrl.method.types import Decision, Lead
from jitrl.running.records import EpisodeResult, decision_record

log = logging.getLogger(__name__)

EpisodeCallback = Callable[["EpisodeResult"], None]
StepCallback = Callable[[int], None]
Phase = Literal["train", "test"]
"""A learning episode on a training instance, or a frozen-memory episode on a test instance."""


@dataclass
class _Tally:
    """Running totals of one episode."""

    llm_seconds: float = 0.0
    memory_seconds: float = 0.0
    env_seconds: float = 0.0
    rewards: list[float] = field(default_factory=list)
    lead: Lead | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def reward(self) -> float:
        """The episode's rewards summed exactly (the same whatever their order)."""
        return math.fsum(self.rewards)

    def add(self, decision: Decision, reward: float, task_id: str) -> None:
        self.llm_seconds += decision.llm_seconds
        self.memory_seconds += decision.memory_seconds
        self.rewards.append(float(reward))
        self.lead = self.lead or decision.lead
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


def _reset(env: TextEnv, seed: int, fold: Fold) -> tuple[str, StepInfo]:
    """``env.reset``; a page that times out makes a failed episode of no steps."""
    try:
        return env.reset(seed=seed, fold=fold)
    except WebTimeoutError as err:  # launch and configuration errors stop the run
        log.error("reset failed, episode recorded as failed: %s", err)
        return "", StepInfo(lost=True, error=str(err))


def _step(env: TextEnv, action: str, info: StepInfo) -> StepResult:
    """``env.step``; an environment failure ends the episode as lost (the run goes on)."""
    try:
        return env.step(action)
    except WebEnvError as err:
        log.error("step failed, episode recorded as failed: %s", err)
        ended = replace(info, candidates=(), labels=None, won=False, lost=True, error=str(err))
        return "", 0.0, True, False, ended


def _play(
    env: TextEnv,
    agent: Agent,
    obs: str,
    info: StepInfo,
    index: int,
    tally: _Tally,
    on_step: StepCallback | None,
) -> tuple[list[dict[str, Any]], StepInfo]:
    """The steps of one episode: the agent acts, the environment answers, until it ends."""
    trace: list[dict[str, Any]] = []
    terminated = truncated = False
    while not (terminated or truncated) and info.candidates:
        decision = agent.act(obs, info, env.is_valid)
        t0 = time.perf_counter()
        action = env.resolve(decision.action)
        obs, reward, terminated, truncated, info = _step(env, action, info)
        tally.env_seconds += time.perf_counter() - t0
        agent.reward(reward)
        tally.add(decision, reward, env.task_id)
        trace.append(decision_record(index, len(trace), decision, reward))
        if action != decision.action:
            trace[-1]["env_action"] = action
        if on_step is not None:
            on_step(1)
    return trace, info


def run_episode(
    env: TextEnv,
    agent: Agent,
    *,
    index: int,
    seed: int,
    episode_id: str,
    phase: Phase = "train",
    on_step: StepCallback | None = None,
) -> tuple[EpisodeResult, list[dict[str, Any]]]:
    """Play one episode; the agent learns from it at the end. Returns the result and its trace.

    Args:
        env: the environment.
        agent: the agent.
        index: the episode's number in its run.
        seed: the episode's seed (the environment's instance, the agent's sampler).
        episode_id: the id memory stores the episode under.
        phase: ``train`` (a training instance; the agent learns) or ``test`` (an unseen test
            instance; memory is frozen).
        on_step: called after every step.

    The agent sees the candidates' labels when the environment gives them, and its choice is
    resolved to the environment's action (:meth:`~jitrl.envs.base.TextEnv.resolve`). A failing
    environment (a browser page that times out) does not stop a run: the episode ends as lost
    with the error in ``EpisodeResult.error``, and what was played is still learnt from.
    """
    t_start = time.perf_counter()
    learn = phase == "train"
    agent.reseed(seed)  # episode i plays the same whatever ran before it (resume, workers)
    obs, info = _reset(env, seed, "train" if learn else "test")
    tally = _Tally(env_seconds=time.perf_counter() - t_start)
    agent.begin(env.task_id, episode_id, learn=learn)
    trace, info = _play(env, agent, obs, info, index, tally, on_step)
    agent.end(failed=info.lost)
    result = EpisodeResult(
        index=index,
        episode_id=episode_id,
        task_id=env.task_id,
        agent=agent.name,
        seed=seed,
        score=info.score,
        steps=len(trace),
        reward=tally.reward,
        won=info.won,
        lost=info.lost,
        wall_seconds=time.perf_counter() - t_start,
        llm_seconds=tally.llm_seconds,
        memory_seconds=tally.memory_seconds,
        env_seconds=tally.env_seconds,
        memory_size=agent.memory_size(),
        error=info.error,
        phase=phase,
        lead=tally.lead,
        **{"prompt_tokens": 0, "prefill_tokens": 0, **tally.counts},
    )
    return result, trace
