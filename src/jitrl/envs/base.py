"""The text-environment protocol and the step-limit wrapper shared by every adapter.

The shape follows Gymnasium: ``reset() -> (observation, info)`` and
``step(action) -> (observation, reward, terminated, truncated, info)``. Observations are the raw
text the game printed. ``info`` always carries:

- ``"candidates"``: ``list[str]``, the actions the agent may take now (may be empty at the end);
- ``"score"``: ``float``, the game's running score;
- ``"state"``: :class:`jitrl.method.types.State`, the abstracted state (location, inventory,
  observation) and an exact key;
- ``"won"`` / ``"lost"``: ``bool``, how a terminated episode ended;
- ``"max_score"``: ``float | None``, when the game tells.

The reward is the change of score made by the step.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Info = dict[str, Any]
StepResult = tuple[str, float, bool, bool, Info]


@runtime_checkable
class TextEnv(Protocol):
    """A text environment with candidate actions."""

    task_id: str

    def reset(self, *, seed: int | None = None) -> tuple[str, Info]:
        """Start a new episode; ``seed`` makes stochastic games repeatable."""
        ...

    def step(self, action: str) -> StepResult:
        """Apply ``action`` and return the next observation, reward and flags."""
        ...

    def close(self) -> None:
        """Release the game's resources."""
        ...


class StepLimit:
    """Truncate episodes after ``max_steps`` steps, like Gymnasium's ``TimeLimit``."""

    def __init__(self, env: TextEnv, max_steps: int) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.env = env
        self.max_steps = max_steps
        self.task_id = env.task_id
        self._steps = 0

    def reset(self, *, seed: int | None = None) -> tuple[str, Info]:
        self._steps = 0
        return self.env.reset(seed=seed)

    def step(self, action: str) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        if self._steps >= self.max_steps and not terminated:
            truncated = True
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.env.close()
