"""ScienceWorld adapter: science tasks whose variations change objects, places and answers.

``scienceworld:TASK`` (``scienceworld:find-living-thing``) plays one of ScienceWorld's 30 tasks
with its ``easy`` simplifications. The simulator ships inside the ``scienceworld`` package and
runs in its bundled Java server (Java 17 on the machine); nothing is downloaded.

Variations: ``reset(seed=s, fold=f)`` plays the variation of split ``f`` (train, dev, test)
that ``s`` draws, so every episode meets a new variation and test episodes unseen ones.

ScienceWorld lists hundreds of valid actions per state (over a thousand in a kitchen); the
candidates are all of them, deduplicated, and the decision's pruning step
(:mod:`jitrl.method.pruning`) keeps the few worth scoring. The score is 0-100 with partial
credit; a failed task ends the episode with a negative score.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from jitrl.envs.base import Fold, StepInfo, StepResult
from jitrl.envs.instances import InstanceConfig, InstanceEnv

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'jitrl[scienceworld]' (ScienceWorld; it runs on Java 17)"
_ROOM = re.compile(r"this room is called the ([^.]+)\.", re.I)
_TASK_PREFIX = re.compile(r"^\s*task description:\s*", re.I)


@dataclass(frozen=True)
class ScienceWorldConfig(InstanceConfig):
    """Settings of a :class:`ScienceWorldEnv`."""

    task: str = "find-living-thing"
    """The task (``ScienceWorldEnv.get_task_names()``)."""
    simplifications: str = "easy"
    """ScienceWorld's simplification string (``easy``: teleporting, open doors, ...)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.task.strip():
            raise ValueError("a ScienceWorld task name is required (scienceworld:TASK)")


def _import_scienceworld() -> Any:
    try:
        from scienceworld import ScienceWorldEnv as Simulator
    except ImportError as exc:
        raise ImportError(f"scienceworld environments need scienceworld: {INSTALL_HINT}") from exc
    return Simulator


def _inventory(text: str) -> tuple[str, ...]:
    items = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
    return tuple(items)


class ScienceWorldEnv(InstanceEnv):
    """A ScienceWorld task behind the :class:`~jitrl.envs.base.TextEnv` protocol.

    ``info.goal`` is the task description; ``info.extra`` carries ``"variation"``, ``"fold"``
    and ``"moves"``.
    """

    name = "ScienceWorld"

    config: ScienceWorldConfig

    def __init__(self, config: ScienceWorldConfig | None = None) -> None:
        self.config = config if config is not None else ScienceWorldConfig()
        self.task_id = f"scienceworld:{self.config.task}"
        simulator = _import_scienceworld()
        try:
            self._env: Any = simulator("", envStepLimit=self.config.step_limit)
        except Exception as exc:  # the Java server did not start
            raise RuntimeError(f"ScienceWorld could not start ({exc}); it needs Java 17") from exc
        names = list(self._env.get_task_names())
        if self.config.task not in names:
            self._env.close()
            raise ValueError(
                f"unknown ScienceWorld task {self.config.task!r}; one of {', '.join(names)}"
            )
        self._env.load(self.config.task, 0, self.config.simplifications)
        self._folds = {
            "train": list(self._env.get_variations_train()),
            "dev": list(self._env.get_variations_dev()),
            "test": list(self._env.get_variations_test()),
        }
        self._over = True
        self._variation = -1
        self._fold: Fold = "train"
        self._score = 0.0

    def gold_path(self) -> list[str]:
        """A winning action sequence for the current variation."""
        return [str(a) for a in self._env.get_gold_action_sequence()]

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        """Play the variation of ``fold`` that ``seed`` draws."""
        self._variation = self._draw(seed, fold)
        self._fold = fold
        self._env.load(
            self.config.task, self._variation, self.config.simplifications, generateGoldPath=True
        )
        obs, infos = self._env.reset()
        self._over = False
        self._score = float(infos.get("score", 0.0))
        return str(obs), self._observe(str(obs), infos)

    def step(self, action: str) -> StepResult:
        """Send ``action``; the reward is the change of score (0-100, partial credit)."""
        if self._over:
            raise RuntimeError("the episode is over (or was never started): call reset() first")
        obs, _, done, infos = self._env.step(action)
        score = float(infos.get("score", self._score))
        reward, self._score = score - self._score, score
        self._over = bool(done)
        return str(obs), reward, self._over, False, self._observe(str(obs), infos)

    def _observe(self, obs: str, infos: dict[str, Any]) -> StepInfo:
        task = _TASK_PREFIX.sub("", str(infos.get("taskDesc", "")))
        look = str(infos.get("look", ""))
        inventory_text = str(infos.get("inv", ""))
        room = _ROOM.search(look)
        parts = {"task": task, "room": look, "inventory": inventory_text, "observation": obs}
        candidates = () if self._over else tuple(dict.fromkeys(infos.get("valid", ())))
        return self._remember(
            StepInfo(
                candidates=candidates,
                state=self._state(parts),
                score=self._score,
                won=self._over and self._score >= 100.0,
                lost=self._over and self._score < 0.0,
                max_score=100.0,
                goal=task,
                location=room.group(1) if room else "",
                inventory=_inventory(inventory_text),
                extra={
                    "variation": self._variation,
                    "fold": self._fold,
                    "moves": infos.get("moves"),
                },
            )
        )
