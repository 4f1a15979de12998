"""Agents that play text environments. They all share one decision path (:class:`JitRL`).

- ``jitrl``: the frozen LLM's distribution corrected by memory.
- ``static``: the same LLM and prompts with no memory (every advantage is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from jitrl.config import JitRLConfig
from jitrl.learner import Episode, JitRL
from jitrl.llm.base import LanguageModel
from jitrl.memory.base import ExperienceStore
from jitrl.prompts import PromptConfig, build_prompt
from jitrl.types import Decision, State

AGENTS = ("jitrl", "static")


class Agent(Protocol):
    """What the episode loop needs from an agent."""

    name: str

    def begin(self, task_id: str, episode_id: str) -> None:
        """A new episode starts."""
        ...

    def act(
        self, observation: str, info: dict[str, Any], valid: Callable[[str], bool] | None
    ) -> Decision:
        """Choose the next action."""
        ...

    def reward(self, reward: float) -> None:
        """The reward that followed the last action."""
        ...

    def end(self, *, failed: bool) -> None:
        """The episode is over; learn from it."""
        ...

    def memory_size(self) -> int:
        """Experiences (or table entries) the agent has learnt so far."""
        ...

    def close(self) -> None:
        """Release the agent's store (models belong to the caller)."""
        ...


class LLMAgent:
    """Scores candidates with the learner's model and lets the learner correct and choose."""

    def __init__(self, name: str, learner: JitRL, prompts: PromptConfig | None = None) -> None:
        if learner.model is None:
            raise ValueError("LLMAgent needs a JitRL with a model")
        self.name = name
        self.learner = learner
        self.prompts = prompts or PromptConfig()
        self._episode: Episode | None = None
        self._history: list[str] = []

    def begin(self, task_id: str, episode_id: str) -> None:
        self._episode = self.learner.episode(task_id=task_id, episode_id=episode_id)
        self._history = []

    def act(
        self, observation: str, info: dict[str, Any], valid: Callable[[str], bool] | None
    ) -> Decision:
        if self._episode is None:
            raise RuntimeError("act() before begin()")
        state: State = info["state"]
        prompt = build_prompt(observation, info, self._history, self.prompts)
        decision = self._episode.decide(state, info["candidates"], prompt=prompt, valid=valid)
        self._history.append(decision.action)
        return decision

    def reward(self, reward: float) -> None:
        if self._episode is not None:
            self._episode.reward(reward)

    def end(self, *, failed: bool) -> None:
        if self._episode is not None and not self._episode.finished:
            self._episode.finish(failed=failed)
        self._episode = None

    def memory_size(self) -> int:
        return len(self.learner.index)

    def close(self) -> None:
        """Close the learner's store (the model belongs to the caller)."""
        self.learner.close()


def make_agent(
    name: str,
    model: LanguageModel,
    memory: ExperienceStore | str | Path | None,
    config: JitRLConfig | None = None,
    *,
    seed: int = 1,
    prompts: PromptConfig | None = None,
) -> LLMAgent:
    """Build a named agent. ``static`` ignores ``memory`` (it has none by definition)."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; choose from {', '.join(AGENTS)}")
    store = memory if name == "jitrl" else None
    return LLMAgent(name, JitRL(store, config, model=model, seed=seed), prompts)
