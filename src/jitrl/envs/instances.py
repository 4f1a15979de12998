"""What environments with instance variation share (TextWorldExpress, ScienceWorld).

Such an environment has folds of instances (``train``, ``dev``, ``test``); ``reset(seed=s,
fold=f)`` plays the instance of ``f`` that ``s`` draws (:func:`draw`, a stable hash), so every
episode of a run meets a new instance and a test episode never meets a training one. Both run
their game in a bundled Java server; their states are text made of the same parts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jitrl.envs.base import BaseTextEnv, Fold
from jitrl.envs.jericho import normalise_observation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstanceConfig:
    """Settings every instance environment has."""

    max_part_chars: int = 300
    """Each part of the state text (task, room, inventory, observation) is cut to this many
    characters."""
    step_limit: int = 10_000
    """The Java server's own step limit (episodes are cut by the run's ``max_steps``)."""

    def __post_init__(self) -> None:
        if self.max_part_chars < 1 or self.step_limit < 1:
            raise ValueError("max_part_chars and step_limit must be >= 1")


def draw(seed: int, choices: list[int]) -> int:
    """The instance seed ``seed`` draws from a fold's valid seeds (a stable hash)."""
    digest = hashlib.sha256(f"jitrl-instance-{seed}".encode()).digest()
    return choices[int.from_bytes(digest[:8], "big") % len(choices)]


def state_text(parts: Mapping[str, str], cap: int) -> str:
    """``task: ... | room: ... | inventory: ... | observation: ...``, each part normalised
    (lower case, noise and extra spaces removed) and cut to ``cap`` characters."""
    return " | ".join(f"{k}: {normalise_observation(v, cap)}" for k, v in parts.items())


class InstanceEnv(BaseTextEnv):
    """Folds of instances, the instance drawn, and the Java server's life.

    Subclasses set ``_env`` (the server's client) and ``_folds`` (fold -> instance ids).
    """

    _env: Any = None
    _folds: dict[str, list[int]]
    name = "the game"

    def _draw(self, seed: int | None, fold: Fold) -> int:
        if fold not in self._folds:
            raise ValueError(f"fold must be train, dev or test, got {fold!r}")
        return draw(seed or 0, self._folds[fold])

    def close(self) -> None:
        """Stop the Java server."""
        env, self._env = self._env, None
        if env is not None:
            try:
                env.close()
            except Exception as exc:  # the server may be gone already
                log.debug("closing %s: %s", self.name, exc)
