"""The text-environment protocol, the typed step information, and the wrapper base.

The shape follows Gymnasium: ``reset() -> (observation, info)`` and
``step(action) -> (observation, reward, terminated, truncated, info)``. Observations are the raw
text the environment printed; ``info`` is a :class:`StepInfo` (typed, every field documented).
The reward is the change of score made by the step.

To add an environment, implement :class:`TextEnv` (subclass :class:`BaseTextEnv` to get
``is_valid`` and ``resolve`` from the candidates), or pass ``module:factory`` as the environment
spec (:func:`jitrl.envs.make_env`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from jitrl.method.types import State

Fold = Literal["train", "dev", "test"]
"""Which instances an episode draws: environments with instance variation keep them apart."""
FOLDS: tuple[Fold, ...] = ("train", "dev", "test")


@dataclass(frozen=True)
class StepInfo:
    """What an environment says about the state it is in (Gymnasium's ``info``, typed)."""

    candidates: tuple[str, ...] = ()
    """The actions the agent may take now, as the environment expects them (empty at the
    end of an episode)."""
    state: State = field(default_factory=lambda: State(""))
    """The abstracted state memory compares: compact text, and an exact key only when the
    environment has an honest one (a privileged emulator key is opt-in)."""
    score: float = 0.0
    """The running score."""
    won: bool = False
    """The episode ended with the task done."""
    lost: bool = False
    """The episode ended in failure (death, a wrong answer); the terminal penalty applies."""
    max_score: float | None = None
    """The highest score, when the environment tells."""
    labels: tuple[str, ...] | None = None
    """Readable names of the candidates, aligned with them (``click button 'Submit'`` for
    ``click("17")``). Agents and memory see labels; :meth:`TextEnv.resolve` maps one back."""
    goal: str = ""
    """The task, when the environment states one (a web task's goal, a game's objective)."""
    location: str = ""
    """Where the agent is (text games), for prompts."""
    inventory: tuple[str, ...] | None = None
    """What the agent carries (text games); ``None`` when the environment has no inventory."""
    error: str = ""
    """Why the environment failed; the episode then counts as lost."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Adapter-specific details (the raw observation, a page's elements, move counts)."""

    @property
    def shown(self) -> tuple[str, ...]:
        """What the agent sees as candidates: the labels when there are, else the actions."""
        if self.labels is not None and len(self.labels) == len(self.candidates):
            return self.labels
        return self.candidates


StepResult = tuple[str, float, bool, bool, StepInfo]


@runtime_checkable
class TextEnv(Protocol):
    """A text environment with candidate actions.

    Attributes:
        task_id: names the task (game, generated game, web task) in memory and reports.
    """

    task_id: str

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        """Start a new episode.

        Args:
            seed: makes the episode repeatable; environments with instance variation draw the
                instance from it.
            fold: the instances to draw from; environments without instance folds ignore it.
        """
        ...

    def step(self, action: str) -> StepResult:
        """Apply ``action`` (as :meth:`resolve` returns it) and return the next observation,
        the reward, whether the episode ended (``terminated``) or was cut (``truncated``), and
        the new information."""
        ...

    def is_valid(self, action: str) -> bool:
        """Whether the agent may take ``action`` now, even if it is not among the candidates
        (memory proposes actions of similar past states)."""
        ...

    def resolve(self, action: str) -> str:
        """The environment's command for an action the agent chose: the candidate a label
        names, else the action itself."""
        ...

    def close(self) -> None:
        """Release the environment's resources."""
        ...


class BaseTextEnv:
    """Default :meth:`is_valid` and :meth:`resolve` from the last step's candidates and labels.

    Subclasses call :meth:`_remember` with every :class:`StepInfo` they return.
    """

    task_id: str = ""
    _last_info: StepInfo = StepInfo()

    def _remember(self, info: StepInfo) -> StepInfo:
        self._last_info = info
        return info

    def is_valid(self, action: str) -> bool:
        """Valid when it is a current candidate or the label of one."""
        info = self._last_info
        return action in info.candidates or (info.labels is not None and action in info.labels)

    def resolve(self, action: str) -> str:
        """The candidate whose label ``action`` is, else ``action`` unchanged."""
        info = self._last_info
        if info.labels is not None and len(info.labels) == len(info.candidates):
            by_label = dict(zip(info.labels, info.candidates, strict=True))
            return by_label.get(action, action)
        return action


class Wrapper:
    """Wraps an environment; every attribute it does not define is the wrapped one's
    (as Gymnasium's ``Wrapper``)."""

    def __init__(self, env: TextEnv) -> None:
        self.env = env
        self.task_id = env.task_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def unwrapped(self) -> TextEnv:
        """The innermost environment."""
        env = self.env
        return env.unwrapped if isinstance(env, Wrapper) else env

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        return self.env.reset(seed=seed, fold=fold)

    def step(self, action: str) -> StepResult:
        return self.env.step(action)

    def is_valid(self, action: str) -> bool:
        return self.env.is_valid(action)

    def resolve(self, action: str) -> str:
        return self.env.resolve(action)

    def close(self) -> None:
        self.env.close()


class StepLimit(Wrapper):
    """Truncate episodes after ``max_steps`` steps, like Gymnasium's ``TimeLimit``."""

    def __init__(self, env: TextEnv, max_steps: int) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        super().__init__(env)
        self.max_steps = max_steps
        self._steps = 0

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        self._steps = 0
        return self.env.reset(seed=seed, fold=fold)

    def step(self, action: str) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        if self._steps >= self.max_steps and not terminated:
            truncated = True
        return obs, reward, terminated, truncated, info
