"""Baseline agents without a language model: a uniform random policy and tabular Q-learning.

Both follow :class:`jitrl.agents.Agent` and choose among the environment's candidate actions
(``info.shown``); the ``valid`` hook of the episode loop is not needed and is ignored.

:class:`QLearnAgent` keeps its table in memory and its episodes in an
:class:`~jitrl.memory.base.ExperienceStore`. Its choice is greedy, so the value of the action
it takes next *is* ``max_a' Q(s', a')``; every update can therefore be recomputed from stored
``(state, action, reward)`` records alone, and reopening the store rebuilds the same table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from jitrl.envs.base import StepInfo
from jitrl.memory.base import ExperienceStore
from jitrl.method.returns import discounted_returns
from jitrl.method.types import Decision, Experience, Lead, State

TableKey = tuple[str, str]  # (state.identity, action)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class QLearnConfig:
    """Settings of the tabular Q-learning baseline."""

    learning_rate: float = 0.5
    """Step size ``lr`` in ``Q(s, a) += lr * (target - Q(s, a))``, in ``(0, 1]``."""
    gamma: float = 0.9
    """Discount of the bootstrapped target and of the stored returns (jitrl's default)."""
    optimistic_value: float = 10.0
    """``Q`` of an action never tried in a state. Chosen above what ordinary steps earn, it
    makes the greedy policy try every untried action before settling, and the optimism flows
    back through the bootstrap towards states that still have untried actions: systematic
    exploration without an epsilon. Tried actions sink below it as their real returns show."""
    terminal_penalty: float = 10.0
    """Subtracted from the last reward when the episode ends in a loss (death), as jitrl's
    ``ReturnConfig.terminal_penalty`` does, so both agents see the same cost of dying. The
    stored reward of that step includes it; otherwise a replay could not tell a loss apart."""

    def __post_init__(self) -> None:
        _check(0.0 < self.learning_rate <= 1.0, "learning_rate must be in (0, 1]")
        _check(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        _check(math.isfinite(self.optimistic_value), "optimistic_value must be finite")
        _check(0.0 <= self.terminal_penalty < math.inf, "terminal_penalty must be finite and >= 0")


def _observe(info: StepInfo) -> tuple[State, tuple[str, ...]]:
    """The abstracted state and the candidate actions (raises if there are none)."""
    state, candidates = info.state, info.shown
    if not candidates:
        raise ValueError("no candidate actions to choose from")
    return state, candidates


def _decision(
    state: State,
    candidates: tuple[str, ...],
    logits: tuple[float, ...],
    probs: tuple[float, ...],
    chosen: int,
    t0: float,
) -> Decision:
    """A decision without LLM or neighbours; all time since ``t0`` counts as memory time."""
    return Decision(
        state=state,
        candidates=candidates,
        base_logits=logits,
        neighbours=(),
        estimates=None,
        logits=logits,
        probs=probs,
        action=candidates[chosen],
        memory_seconds=time.perf_counter() - t0,
    )


class RandomAgent:
    """Uniform choice among the candidates; learns and stores nothing."""

    def __init__(self, seed: int = 1) -> None:
        self.name = "random"
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        """Restart the generator (parallel runs seed every episode)."""
        self.rng = np.random.default_rng(seed)

    def begin(self, task_id: str, episode_id: str, *, learn: bool = True) -> None:
        """Nothing to prepare."""

    def act(
        self, observation: str, info: StepInfo, valid: Callable[[str], bool] | None
    ) -> Decision:
        """Draw one candidate uniformly at random."""
        t0 = time.perf_counter()
        state, candidates = _observe(info)
        n = len(candidates)
        chosen = int(self.rng.integers(n))
        return _decision(state, candidates, (0.0,) * n, (1.0 / n,) * n, chosen, t0)

    def reward(self, reward: float) -> None:
        """Ignored."""

    def end(self, *, failed: bool) -> None:
        """Ignored."""

    def recall(self, task_id: str, lead: Lead, score: float) -> None:
        """Ignored: nothing depends on earlier episodes."""

    def memory_size(self) -> int:
        """Always 0."""
        return 0

    def close(self) -> None:
        """Nothing to release."""


class QLearnAgent:
    """Tabular Q-learning over exact state keys with optimistic initial values.

    The update of step ``t`` waits for the next :meth:`act`, which knows ``s_{t+1}`` and its
    candidates: ``Q(s_t, a_t) += lr * (r_t + gamma * max_a' Q(s_{t+1}, a') - Q(s_t, a_t))``,
    untried ``a'`` counting ``optimistic_value``. The last step of an episode is terminal (no
    bootstrap): :meth:`end` only learns whether it was lost, not where a truncated episode
    stopped, so a step-limited episode's last step is valued by its reward alone.
    """

    def __init__(
        self, store: ExperienceStore | None, config: QLearnConfig | None = None, seed: int = 1
    ) -> None:
        self.name = "qlearn"
        self.store = store
        self.config = config or QLearnConfig()
        self.rng = np.random.default_rng(seed)
        self._q: dict[TableKey, float] = {}
        self._learn = True
        self._undo: list[tuple[TableKey, float | None]] = []
        self._episode: tuple[str, str] | None = None
        self._steps: list[tuple[State, str]] = []
        self._rewards: list[float] = []
        if store is not None:
            self._replay(store)

    def reseed(self, seed: int) -> None:
        """Restart the tie-breaking generator (the episode loop seeds every episode)."""
        self.rng = np.random.default_rng(seed)

    @property
    def table(self) -> dict[TableKey, float]:
        """A copy of the Q table (only tried actions have entries)."""
        return dict(self._q)

    def q_value(self, state: State, action: str) -> float:
        """``Q(state, action)``; ``optimistic_value`` when the action was never tried there."""
        return self._q.get((state.identity, action), self.config.optimistic_value)

    def begin(self, task_id: str, episode_id: str, *, learn: bool = True) -> None:
        """Start recording a new episode; ``learn=False`` leaves the table and store as they
        are (a test episode)."""
        self._episode = (task_id, episode_id)
        self._learn = learn
        self._steps, self._rewards, self._undo = [], [], []

    def act(
        self, observation: str, info: StepInfo, valid: Callable[[str], bool] | None
    ) -> Decision:
        """Greedy choice (ties at random), then the update of the previous step."""
        if self._episode is None:
            raise RuntimeError("act() before begin()")
        t0 = time.perf_counter()
        state, candidates = _observe(info)
        values = tuple(self.q_value(state, a) for a in candidates)
        best = max(values)
        ties = [i for i, v in enumerate(values) if v == best]
        chosen = ties[int(self.rng.integers(len(ties)))]
        if self._steps and self._learn:
            if len(self._rewards) < len(self._steps):
                self._rewards.append(0.0)  # the previous step got no explicit reward
            prev_state, prev_action = self._steps[-1]
            self._update((prev_state.identity, prev_action), self._rewards[-1], best)
        self._steps.append((state, candidates[chosen]))
        one_hot = tuple(1.0 if i == chosen else 0.0 for i in range(len(candidates)))
        return _decision(state, candidates, values, one_hot, chosen, t0)

    def reward(self, reward: float) -> None:
        """The reward that followed the latest action (at most one per action)."""
        if len(self._rewards) >= len(self._steps):
            raise RuntimeError("reward() must follow an act()")
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward}")
        self._rewards.append(float(reward))

    def end(self, *, failed: bool) -> None:
        """Apply the terminal update and store the episode (all of it, or none of it).

        If the store refuses the episode, the episode's updates are undone, so the table stays
        the one a replay of the store gives, and the error is raised.
        """
        if self._episode is None or not self._steps:
            self._episode = None
            return
        task_id, episode_id = self._episode
        self._episode = None
        if not self._learn:
            return
        rewards = self._rewards + [0.0] * (len(self._steps) - len(self._rewards))
        if failed:
            rewards[-1] -= self.config.terminal_penalty
        last_state, last_action = self._steps[-1]
        self._update((last_state.identity, last_action), rewards[-1], None)
        if self.store is None:
            return
        now = time.time()
        returns = discounted_returns(rewards, self.config.gamma)
        records = [
            Experience(s, a, g, episode_id, t, task_id, r, now)
            for t, ((s, a), r, g) in enumerate(zip(self._steps, rewards, returns, strict=True))
        ]
        try:
            self.store.add_episode(records)
        except Exception:
            for key, old in reversed(self._undo):
                if old is None:
                    del self._q[key]
                else:
                    self._q[key] = old
            raise
        finally:
            self._undo = []

    def recall(self, task_id: str, lead: Lead, score: float) -> None:
        """Ignored: the table is rebuilt from the store."""

    def memory_size(self) -> int:
        """Number of ``(state, action)`` entries in the table."""
        return len(self._q)

    def close(self) -> None:
        """Close the store."""
        if self.store is not None:
            self.store.close()

    def _update(self, key: TableKey, reward: float, bootstrap: float | None) -> None:
        """One Q-learning step towards ``reward + gamma * bootstrap`` (``None``: terminal)."""
        cfg = self.config
        old = self._q.get(key)
        current = cfg.optimistic_value if old is None else old
        target = reward + (cfg.gamma * bootstrap if bootstrap is not None else 0.0)
        self._undo.append((key, old))
        self._q[key] = current + cfg.learning_rate * (target - current)

    def _replay(self, experiences: Iterable[Experience]) -> None:
        """Rebuild the table from stored episodes, in storage order and step order.

        Play was greedy, so the bootstrap of step ``t`` is the value that step ``t + 1``'s
        action had just before the update: exactly the ``max`` used when the step was played.
        """
        episodes: dict[str, list[Experience]] = {}
        for exp in experiences:
            episodes.setdefault(exp.episode_id, []).append(exp)
        for records in episodes.values():
            records.sort(key=lambda e: e.step)
            for t, exp in enumerate(records):
                nxt = records[t + 1] if t + 1 < len(records) else None
                bootstrap = None if nxt is None else self.q_value(nxt.state, nxt.action)
                self._update((exp.state.identity, exp.action), exp.reward, bootstrap)
        self._undo = []
