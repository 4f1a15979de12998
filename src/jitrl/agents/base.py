"""What the episode loop needs from an agent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from jitrl.envs.base import StepInfo
from jitrl.method.types import Decision, Lead


class Agent(Protocol):
    """What the episode loop needs from an agent."""

    name: str

    def reseed(self, seed: int) -> None:
        """Restart the agent's random generator (the episode loop seeds every episode)."""
        ...

    def begin(self, task_id: str, episode_id: str, *, learn: bool = True) -> None:
        """A new episode starts; with ``learn=False`` (a test episode) the agent must not
        change what it has learnt (it may still use what it sees within the episode)."""
        ...

    def act(
        self, observation: str, info: StepInfo, valid: Callable[[str], bool] | None
    ) -> Decision:
        """Choose the next action among ``info.shown`` (``valid`` tells whether another action
        is allowed now). The decision's ``action`` is resolved by the environment."""
        ...

    def reward(self, reward: float) -> None:
        """The reward that followed the last action."""
        ...

    def end(self, *, failed: bool) -> None:
        """The episode is over; learn from it."""
        ...

    def recall(self, task_id: str, lead: Lead, score: float) -> None:
        """A learning episode that an earlier process played into this run (a resumed run):
        who led it and the sum of its rewards. An agent whose choices depend on such history
        outside its memory (the pace bandit) restores it; others ignore it."""
        ...

    def memory_size(self) -> int:
        """Experiences (or table entries) the agent has learnt so far."""
        ...

    def close(self) -> None:
        """Release the agent's store (models belong to the caller)."""
        ...
