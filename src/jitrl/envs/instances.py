"""What environments with instance variation share (TextWorldExpress, ScienceWorld).

Such an environment has folds of instances (``train``, ``dev``, ``test``); ``reset(seed=s,
fold=f)`` plays the instance of ``f`` that ``s`` draws (:func:`draw`, a stable hash), so every
episode of a run meets a new instance and a test episode never meets a training one. Both run
their game in a bundled Java server; their states are text made of the same parts.

A state's key is its *view*: the task, the room and the inventory as the agent reads them,
without the message about its last command (:func:`jitrl.envs.game_text.view_key`). It is no
privileged information (the agent sees every word of it), and it is what makes "the same state"
mean the same place in the same condition: an action that only prints something (``inventory``,
``look around``, ``read map``) or one undone by the next (``open door`` then ``close door``)
leads back to a visited state, so the revisit and loop penalties see it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jitrl.envs.base import BaseTextEnv, Fold
from jitrl.envs.game_text import normalise_observation, view_key
from jitrl.method.types import State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstanceConfig:
    """Settings every instance environment has."""

    max_part_chars: int = 300
    """Each part of the state text (task, room, inventory, observation) is cut to this many
    characters."""
    step_limit: int = 10_000
    """The Java server's own step limit (episodes are cut by the run's ``max_steps``)."""
    view_key: bool = True
    """Give states their view as exact key (:func:`jitrl.envs.game_text.view_key`): task, room
    and inventory, without the last message. ``False``: no key, so a state is its whole text
    and the last message alone makes it new (the first releases)."""

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


VIEW_PARTS = ("task", "room", "inventory")
"""The parts of a state's text that make its view (the last observation is left out)."""


class InstanceEnv(BaseTextEnv):
    """Folds of instances, the instance drawn, and the Java server's life.

    Subclasses set ``_env`` (the server's client) and ``_folds`` (fold -> instance ids).
    """

    _env: Any = None
    _folds: dict[str, list[int]]
    name = "the game"

    config: InstanceConfig

    def _state(self, parts: Mapping[str, str]) -> State:
        """The state of ``parts`` (task, room, inventory, observation): its text, and its view
        as key when the config asks for it."""
        cap = self.config.max_part_chars
        view = [parts.get(name, "") for name in VIEW_PARTS]  # whole: a room's doors come last
        key = view_key(view) if self.config.view_key else None
        return State(state_text(parts, cap), key)

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
