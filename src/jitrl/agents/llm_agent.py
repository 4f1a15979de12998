"""The LLM agents (``jitrl``, ``static``, ``icl``): the model scores the candidates, the learner
corrects the distribution with memory and chooses."""

from __future__ import annotations

from collections.abc import Sequence

from jitrl.agents.abstraction import StateAbstractor
from jitrl.agents.prompts import PromptConfig, build_prompt
from jitrl.envs.base import StepInfo
from jitrl.llm.base import Prompt
from jitrl.method.learner import Episode, JitRL, PromptBuilder, Validator
from jitrl.method.types import Decision, Experience, Lead, Neighbour, State


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

    def begin(self, task_id: str, episode_id: str, *, learn: bool = True) -> None:
        self._episode = self.learner.episode(task_id=task_id, episode_id=episode_id, learn=learn)
        self._history = []

    def act(self, observation: str, info: StepInfo, valid: Validator | None) -> Decision:
        if self._episode is None:
            raise RuntimeError("act() before begin()")
        state = info.state
        if self.abstractor is not None:
            text = self.abstractor(observation, self._history, fallback=state.text)
            state = State(text, state.key)
        history = list(self._history)

        def with_memory(experience: Sequence[Neighbour]) -> Prompt:
            return build_prompt(observation, info, history, self.prompts, experience)

        prompt: Prompt | PromptBuilder = with_memory
        if not self.in_context:
            prompt = build_prompt(observation, info, history, self.prompts)
        decision = self._episode.decide(state, info.shown, prompt=prompt, valid=valid)
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

    def recall(self, task_id: str, lead: Lead, score: float) -> None:
        self.learner.recall(task_id, lead, score)

    def memory_size(self) -> int:
        return len(self.learner.index)

    def close(self) -> None:
        """Close the learner's store (the model belongs to the caller)."""
        self.learner.close()
