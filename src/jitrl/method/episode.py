"""One episode of the library API: decisions and rewards recorded, returns computed and the
episode stored whole when it finishes (:meth:`jitrl.method.learner.JitRL.episode`)."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

from jitrl.llm.base import LanguageModel, Prompt
from jitrl.memory.base import ExperienceStore
from jitrl.method.config import JitRLConfig
from jitrl.method.frontier import Step, ways_back
from jitrl.method.pace import Lead, PaceBandit
from jitrl.method.reflection import TrajectoryStep, reflect
from jitrl.method.returns import (
    RewardUnits,
    episode_returns,
    returns_of,
    revisits,
    step_rewards,
)
from jitrl.method.types import Decision, Experience, Neighbour, State

log = logging.getLogger(__name__)

Validator = Callable[[str], bool]
"""Tells whether an action the agent may take now (memory proposes actions of similar states)."""
PromptBuilder = Callable[[Sequence[Neighbour]], Prompt]
"""Builds the prompt once the neighbours are known (memory written into the prompt)."""


class Indexed(Protocol):
    """What an episode adds its records to (:class:`jitrl.retrieval.index.MemoryIndex`)."""

    def add(self, experiences: Sequence[Experience]) -> None:
        """Index more records."""
        ...


class Learner(Protocol):
    """What an :class:`Episode` needs from its learner (:class:`jitrl.method.learner.JitRL`)."""

    config: JitRLConfig
    model: LanguageModel | None
    store: ExperienceStore | None
    shared: bool
    reward_units: RewardUnits
    pace: PaceBandit

    @property
    def index(self) -> Indexed:
        """The searchable memory."""
        ...

    @property
    def uses_memory(self) -> bool:
        """Whether the learner keeps a memory."""
        ...

    @property
    def decide(self) -> Callable[..., Decision]:
        """Correct the base distribution with memory and choose (``JitRL.decide``)."""
        ...


def as_state(state: State | str, key: str | None) -> State:
    """A :class:`State` from a text (and key), or the state given (its key replaced).

    Raises:
        TypeError: ``state`` is neither a text nor a State.
        ValueError: the state's text is blank (a store would refuse the episode at its end).
    """
    if isinstance(state, State):
        out = state if key is None else State(state.text, key)
    elif isinstance(state, str):
        out = State(state, key)
    else:
        raise TypeError(f"state must be a str or State, got {type(state).__name__}")
    if not out.text.strip():
        raise ValueError("the state's text is blank (describe the state in a few words)")
    return out


class Episode:
    """Records one episode's decisions and rewards; ``finish`` stores it whole.

    The episode's own earlier steps (its *working memory*) are retrieved with the stored memory,
    valued by the rewards and revisit penalties seen so far, so a loop is discouraged as soon as
    it closes. With ``learn=False`` nothing is stored (a test episode: memory frozen).
    """

    def __init__(
        self,
        jit: Learner,
        task_id: str,
        episode_id: str,
        *,
        learn: bool = True,
        lead: Lead = "model",
    ) -> None:
        self.jit = jit
        self.task_id = task_id
        self.episode_id = episode_id
        self.learn = learn
        """Store the episode when it finishes (``False``: memory is frozen)."""
        self.lead: Lead = lead
        """Who leads the decisions, the model or memory alone (:mod:`jitrl.method.pace`)."""
        self.decisions: list[Decision] = []
        self.rewards: list[float] = []
        self.finished = False

    def decide(
        self,
        state: State | str,
        candidates: Sequence[str],
        logits: Sequence[float] | None = None,
        *,
        key: str | None = None,
        prompt: Prompt | PromptBuilder | None = None,
        valid: Validator | None = None,
    ) -> Decision:
        """Like :meth:`JitRL.decide`, and remembers the decision for this episode."""
        if self.finished:
            raise RuntimeError("this episode is finished")
        if len(self.rewards) < len(self.decisions):
            self.rewards.append(0.0)  # the previous decision got no explicit reward
        st = as_state(state, key)
        working, looped = self._working(st, candidates)
        decision = self.jit.decide(
            st,
            candidates,
            logits,
            prompt=prompt,
            valid=valid,
            working=working if self.jit.config.retrieval.working_memory else (),
            task_id=self.task_id,
            looped=looped,
            lead=self.lead,
        )
        self.decisions.append(decision)
        return decision

    def _working(
        self, current: State, offered: Sequence[str]
    ) -> tuple[list[Experience], dict[str, int]]:
        """This episode's steps so far, valued by the returns observed up to now, and the
        actions that led back to a visited state when taken in ``current``'s state (less the
        ways back towards untried actions, with ``loop_frontier``)."""
        if not self.decisions or not self.jit.uses_memory:
            return [], {}
        states = [d.state.identity for d in self.decisions] + [current.identity]
        flags = revisits(states)[: len(self.decisions)]
        unit = self.jit.reward_units.unit(self.task_id)
        cfg = self.jit.config.returns
        shaped = step_rewards(self.rewards, failed=False, config=cfg, revisited=flags, unit=unit)
        rets = returns_of(shaped, cfg, self._values()[: len(shaped)])
        repeats = self.jit.config.values.loop_on_repeat
        looped = Counter(
            d.action
            for d, flag in zip(self.decisions, flags, strict=True)
            if (flag or repeats) and d.state.identity == current.identity
        )
        if self.jit.config.values.loop_frontier:
            steps = [Step(d.state.identity, d.candidates, d.action) for d in self.decisions]
            for action in ways_back(steps, current.identity, offered):
                looped.pop(action, None)
        working = [
            Experience(d.state, d.action, g, self.episode_id, t, self.task_id, r)
            for t, (d, r, g) in enumerate(zip(self.decisions, shaped, rets, strict=False))
        ]
        return working, dict(looped)

    def _values(self) -> list[float | None]:
        """Memory's ``V`` of each decision's state (``None`` where it had no neighbours)."""
        return [
            d.estimates.v if d.estimates is not None and d.neighbours else None
            for d in self.decisions
        ]

    def reward(self, reward: float) -> None:
        """The reward that followed the latest decision (call at most once per decision)."""
        if len(self.rewards) >= len(self.decisions):
            raise RuntimeError("reward() must follow a decide()")
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward}")
        self.rewards.append(float(reward))

    def finish(self, *, failed: bool = False) -> list[Experience]:
        """Compute returns and store the episode atomically; returns the stored experiences
        (none when memory is frozen)."""
        if self.finished:
            raise RuntimeError("this episode is finished")
        self.finished = True
        rewards = self.rewards + [0.0] * (len(self.decisions) - len(self.rewards))
        if not self.decisions or not self.learn:
            return []
        cfg = self.jit.config.returns
        unit = self.jit.reward_units.unit(self.task_id)
        score = math.fsum(rewards)  # the episode's score, as the pace bandit weighs it
        rewards = self._reflect(rewards, failed)
        states = [d.state.identity for d in self.decisions]
        shaped, rets = episode_returns(
            rewards, failed=failed, config=cfg, states=states, unit=unit, values=self._values()
        )
        if not all(math.isfinite(g) for g in rets):
            raise ValueError("the episode's returns are not finite (rewards too large)")
        now, space = time.time(), self.jit.config.scope.namespace
        exps = [
            Experience(d.state, d.action, g, self.episode_id, t, self.task_id, r, now, space)
            for t, (d, r, g) in enumerate(zip(self.decisions, shaped, rets, strict=False))
        ]
        if self.jit.store is not None and not self.jit.shared:
            self.jit.store.add_episode(exps)
            self.jit.index.add(exps)
        # counted once stored: a finish that failed to store is retried and must not count twice
        self.jit.reward_units.observe(self.task_id, self.rewards)
        if not self.jit.shared:
            self.jit.pace.observe(self.task_id, self.lead, score)
        return exps

    def _reflect(self, rewards: list[float], failed: bool) -> list[float]:
        """Blend the model's step scores into the rewards when reflection is configured."""
        cfg = self.jit.config.reflection
        if cfg.weight == 0.0 or self.jit.model is None or not self.jit.uses_memory:
            return rewards
        steps = [TrajectoryStep(d.state.text, d.action) for d in self.decisions]
        res = reflect(self.jit.model, steps, rewards, cfg, outcome="lost" if failed else "")
        return list(res.rewards)  # on a fallback: the environment's rewards (logged there)

    def __enter__(self) -> Episode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.finished:
            return
        if exc_type is None:
            self.finish()
            return
        log.warning("episode %s abandoned after an error; nothing stored", self.episode_id)
        self.finished = True


__all__ = ["Episode", "Learner", "PromptBuilder", "Validator", "as_state"]
