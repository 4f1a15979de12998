"""Agents that play text environments. They all share one decision path (:class:`JitRL`).

- ``jitrl``: the frozen LLM's distribution corrected by memory.
- ``static``: the same LLM and prompts with no memory (every advantage is 0).
- ``icl``: in-context memory: the same neighbours, written into the prompt as text (action and
  return) instead of entering the logits (the Reflexion/AWM family of methods).
- ``qlearn``: tabular Q-learning over the exact state key, optimistic initialisation, no LLM.
- ``random``: uniform over the candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from jitrl.agents.abstraction import StateAbstractor
from jitrl.agents.baselines import QLearnAgent, RandomAgent
from jitrl.agents.prompts import PromptConfig, build_prompt
from jitrl.llm.base import LanguageModel, Prompt
from jitrl.llm.cache import CachedModel
from jitrl.memory import open_store
from jitrl.memory.base import ExperienceStore
from jitrl.method.config import JitRLConfig
from jitrl.method.learner import Episode, JitRL, PromptBuilder
from jitrl.method.types import Decision, Experience, Neighbour, State

AGENTS = ("jitrl", "static", "icl", "qlearn", "random")
LLM_AGENTS = ("jitrl", "static", "icl")
"""Agents that need a language model."""
MEMORY_AGENTS = ("jitrl", "icl", "qlearn")
"""Agents that keep an experience store."""


class Agent(Protocol):
    """What the episode loop needs from an agent."""

    name: str

    def reseed(self, seed: int) -> None:
        """Restart the agent's random generator (the episode loop seeds every episode)."""
        ...

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

    def __init__(
        self,
        name: str,
        learner: JitRL,
        prompts: PromptConfig | None = None,
        *,
        in_context: bool = False,
        abstractor: StateAbstractor | None = None,
    ) -> None:
        if learner.model is None:
            raise ValueError("LLMAgent needs a JitRL with a model")
        self.name = name
        self.learner = learner
        self.prompts = prompts or PromptConfig()
        self.in_context = in_context
        """Write the retrieved neighbours into the prompt (the ``icl`` agent)."""
        self.abstractor = abstractor
        """Rewrites the environment's state with the LLM before memory sees it (optional)."""
        self._episode: Episode | None = None
        self._history: list[str] = []
        self.last_episode: list[Experience] = []
        """Records of the last finished episode (what a shared learner leaves to be stored)."""

    def begin(self, task_id: str, episode_id: str) -> None:
        self._episode = self.learner.episode(task_id=task_id, episode_id=episode_id)
        self._history = []

    def act(
        self, observation: str, info: dict[str, Any], valid: Callable[[str], bool] | None
    ) -> Decision:
        if self._episode is None:
            raise RuntimeError("act() before begin()")
        state: State = info["state"]
        if self.abstractor is not None:
            text = self.abstractor(observation, self._history, fallback=state.text)
            state = State(text, state.key)
        history = list(self._history)

        def with_memory(experience: Sequence[Neighbour]) -> Prompt:
            return build_prompt(observation, info, history, self.prompts, experience)

        prompt: Prompt | PromptBuilder = with_memory
        if not self.in_context:
            prompt = build_prompt(observation, info, history, self.prompts)
        decision = self._episode.decide(state, info["candidates"], prompt=prompt, valid=valid)
        self._history.append(decision.action)
        return decision

    def reward(self, reward: float) -> None:
        if self._episode is not None:
            self._episode.reward(reward)

    def reseed(self, seed: int) -> None:
        self.learner.reseed(seed)

    def end(self, *, failed: bool) -> None:
        if self._episode is not None and not self._episode.finished:
            self.last_episode = self._episode.finish(failed=failed)
        self._episode = None

    def memory_size(self) -> int:
        return len(self.learner.index)

    def close(self) -> None:
        """Close the learner's store (the model belongs to the caller)."""
        self.learner.close()


def agent_model(name: str, spec: str, threads: int | None = None) -> CachedModel | None:
    """The score-cached model that agent ``name`` needs; ``None`` for agents without one."""
    if name not in LLM_AGENTS:
        return None
    from jitrl.llm import load_model

    return CachedModel(load_model(spec, n_threads=threads))


def make_agent(
    name: str,
    model: LanguageModel | None,
    memory: ExperienceStore | str | Path | None,
    config: JitRLConfig | None = None,
    *,
    seed: int = 1,
    prompts: PromptConfig | None = None,
    abstractor: StateAbstractor | None = None,
    episodes: Sequence[str] | None = None,
) -> Agent:
    """Build a named agent (see the module docstring).

    ``static`` and ``random`` ignore ``memory``; ``qlearn`` and ``random`` ignore ``model``.
    ``episodes`` (``jitrl``/``icl``): load only these stored episodes and let the memory follow
    a store shared with other workers (:class:`JitRL` with ``shared=True``).
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; choose from {', '.join(AGENTS)}")
    store = memory if name in MEMORY_AGENTS else None
    if isinstance(store, (str, Path)):
        store = open_store(store)
    if name == "random":
        return RandomAgent(seed=seed)
    if name == "qlearn":
        return QLearnAgent(store, seed=seed)
    if model is None:
        raise ValueError(f"agent {name!r} needs a language model")
    cfg = config or JitRLConfig()
    if name == "static":
        return LLMAgent(
            name, JitRL(None, cfg, model=model, seed=seed), prompts, abstractor=abstractor
        )
    if name == "icl":
        cfg = replace(cfg, policy=replace(cfg.policy, correct=False))
    shared = episodes is not None
    learner = JitRL(store, cfg, model=model, seed=seed, episodes=episodes, shared=shared)
    return LLMAgent(name, learner, prompts, in_context=name == "icl", abstractor=abstractor)
