"""TextWorldExpress adapter: families of text games where every episode is a new instance.

``twx:GAME[?k=v,...]`` (``twx:coin``, ``twx:twc``, ``twx:cookingworld?numLocations=3``) plays
TextWorldExpress's game ``GAME`` with the given generation parameters. The games ship inside the
``textworld-express`` package and run in its bundled Java server (Java 17 on the machine); nothing
is downloaded.

Instances: each fold (``train``, ``dev``, ``test``) has its own instances. ``reset(seed=s,
fold=f)`` plays the instance of fold ``f`` that ``s`` draws (a hash of ``s`` picks one of the
fold's valid seeds), so every episode of a run meets a new instance and a test episode never
meets a training one.

States are text: the task, what the agent sees of its room, its inventory and the last
observation, lower-cased. Their key is the view (task, room, inventory; see
:mod:`jitrl.envs.instances`), which the agent reads itself; the engine's own state is never used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from jitrl.envs.base import Fold, StepInfo, StepResult
from jitrl.envs.instances import InstanceConfig, InstanceEnv

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'jitrl[twx]' (TextWorldExpress; it runs on Java 17)"
GAMES = (
    "coin",
    "twc",
    "cookingworld",
    "mapreader",
    "sorting",
    "arithmetic",
    "simonsays",
    "peckingorder",
)
"""TextWorldExpress's games (``getGameNames()``)."""
_ROOM = re.compile(r"you are in the ([^.]+)\.", re.I)
_PARAM = re.compile(r"^[A-Za-z]+=[0-9A-Za-z.]+$")


@dataclass(frozen=True)
class TWXConfig(InstanceConfig):
    """Settings of a :class:`TWXEnv`."""

    game: str = "coin"
    """The game (see :data:`GAMES`)."""
    params: str = ""
    """Generation parameters, ``k=v`` comma-separated (e.g. ``numLocations=4``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.game not in GAMES:
            raise ValueError(
                f"unknown TextWorldExpress game {self.game!r}; one of {', '.join(GAMES)}"
            )
        for part in filter(None, self.params.split(",")):
            if not _PARAM.match(part.strip()):
                raise ValueError(f"bad TextWorldExpress parameter {part!r}: use name=value")


def parse_spec(target: str) -> TWXConfig:
    """``GAME[?k=v,...]`` as a :class:`TWXConfig`."""
    game, _, params = target.partition("?")
    return TWXConfig(game=game.strip(), params=params.strip())


def _import_twx() -> Any:
    try:
        from textworld_express import TextWorldExpressEnv
    except ImportError as exc:
        raise ImportError(f"twx environments need textworld-express: {INSTALL_HINT}") from exc
    return TextWorldExpressEnv


def _inventory(text: str) -> tuple[str, ...]:
    lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
    return tuple(ln for ln in lines if "empty" not in ln.lower())


class TWXEnv(InstanceEnv):
    """A TextWorldExpress game behind the :class:`~jitrl.envs.base.TextEnv` protocol.

    ``info.goal`` is the task description; ``info.extra`` carries ``"instance"`` (the instance
    seed played), ``"fold"``, ``"success"`` and ``"failure"``.
    """

    name = "TextWorldExpress"

    config: TWXConfig

    def __init__(self, config: TWXConfig | None = None) -> None:
        self.config = config if config is not None else TWXConfig()
        self.task_id = f"twx:{self.config.game}" + (
            f"?{self.config.params}" if self.config.params else ""
        )
        env_class = _import_twx()
        try:
            self._env: Any = env_class(envStepLimit=self.config.step_limit)
            self._env.load(gameName=self.config.game, gameParams=self.config.params)
        except Exception as exc:  # the Java server did not start (no java?) or refused
            raise RuntimeError(
                f"TextWorldExpress could not start ({exc}); it needs Java 17"
            ) from exc
        self._folds = {
            "train": list(self._env.getValidSeedsTrain()),
            "dev": list(self._env.getValidSeedsDev()),
            "test": list(self._env.getValidSeedsTest()),
        }
        self._over = True
        self._instance = -1
        self._fold: Fold = "train"

    def gold_path(self) -> list[str]:
        """A winning action sequence for the current instance (computed by the engine)."""
        return [str(a) for a in self._env.getGoldActionSequence()]

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        """Play the instance of ``fold`` that ``seed`` draws."""
        self._instance = self._draw(seed, fold)
        self._fold = fold
        obs, infos = self._env.reset(seed=self._instance, gameFold=fold, generateGoldPath=True)
        self._over = False
        return str(obs), self._observe(str(obs), infos)

    def step(self, action: str) -> StepResult:
        """Send ``action``; the reward is the change of the game's (normalised) score."""
        if self._over:
            raise RuntimeError("the episode is over (or was never started): call reset() first")
        obs, reward, done, infos = self._env.step(action)
        self._over = bool(done)
        return str(obs), float(reward), self._over, False, self._observe(str(obs), infos)

    def _observe(self, obs: str, infos: dict[str, Any]) -> StepInfo:
        task = str(infos.get("taskDescription", ""))
        look = str(infos.get("look", ""))
        inventory_text = str(infos.get("inventory", ""))
        room = _ROOM.search(look)
        parts = {"task": task, "room": look, "inventory": inventory_text, "observation": obs}
        success, failure = bool(infos.get("tasksuccess")), bool(infos.get("taskfailure"))
        candidates = () if self._over else tuple(dict.fromkeys(infos.get("validActions", ())))
        return self._remember(
            StepInfo(
                candidates=candidates,
                state=self._state(parts),
                score=float(infos.get("score", 0.0)),
                won=success,
                lost=failure,
                max_score=1.0,
                goal=task,
                location=room.group(1) if room else "",
                inventory=_inventory(inventory_text),
                extra={
                    "instance": self._instance,
                    "fold": self._fold,
                    "success": success,
                    "failure": failure,
                },
            )
        )
