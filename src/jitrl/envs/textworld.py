"""TextWorld adapter: procedurally generated games, generated once per config and cached.

A game is fully determined by its :class:`TextWorldConfig` (generation is byte-for-byte
deterministic per seed), so :func:`ensure_game` writes it under the cache folder with a name
derived from the config and reuses it afterwards. Generation writes into a private temporary
folder and then atomically renames the files into place (the ``.json`` first, the ``.z8``
last), so two processes generating the same game at once both succeed and a reader that sees
the ``.z8`` always finds its ``.json``.

Generated games are deterministic: ``reset(seed=...)`` does not change their dynamics.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jitrl.cachedir import cache_root
from jitrl.envs.base import BaseTextEnv, Fold, StepInfo, StepResult
from jitrl.envs.game_text import (
    dedupe_candidates,
    format_state_text,
    is_meta_command,
    normalise_observation,
    view_key,
)
from jitrl.envs.jericho import DEFAULT_MAX_OBSERVATION_CHARS, validate_seed
from jitrl.method.types import State

logger = logging.getLogger(__name__)

TEXTWORLD_INSTALL_HINT = "pip install 'jitrl[textworld]'"
CACHE_SUBDIR = "textworld"
"""Generated games go to ``$JITRL_CACHE/textworld`` (:func:`jitrl.cachedir.cache_root`)."""
GAME_EXT = ".z8"
JSON_EXT = ".json"
TEMP_PREFIX = ".tmp-"
DEFAULT_WORLD_SIZE = 5
DEFAULT_NB_OBJECTS = 10
DEFAULT_QUEST_LENGTH = 5
GameKind = Literal["custom", "simple"]
Rewards = Literal["dense", "balanced", "sparse"]
Goal = Literal["detailed", "brief", "none"]
SIMPLE_CHALLENGE = "tw-simple"
PLAYER_TYPE = "P"
INVENTORY_TYPE = "I"
AT_PREDICATE = "at"
IN_PREDICATE = "in"
BANNER_CHARS = frozenset("$|_\\/<> ")
"""Characters of TextWorld's ASCII-art logo, printed at the start of every game."""
STATUS_LINE_MIN_PAD = 3
"""The status line is a ``>`` prompt padded with spaces before ``-= Room =-score/moves``."""
JERICHO_UNSUPPORTED_WARNING = ".*is not fully supported.*"


def default_cache_dir() -> Path:
    """``$JITRL_CACHE/textworld`` if the variable is set, else ``~/.cache/jitrl/textworld``."""
    return cache_root() / CACHE_SUBDIR


@dataclass(frozen=True)
class TextWorldConfig:
    """What game to generate and how to present it.

    Attributes:
        seed: generation seed; the same config always yields the same game.
        kind: ``"custom"`` (``tw-make custom``: ``world_size``, ``nb_objects``, ``quest_length``;
            one point for finishing the quest) or ``"simple"`` (the ``tw-simple`` challenge:
            fixed 6-room house, ``rewards`` and ``goal`` apply; denser rewards).
        world_size: number of rooms (custom games).
        nb_objects: number of objects (custom games).
        quest_length: number of actions in the winning quest (custom games).
        rewards: reward density of ``simple`` games.
        goal: how much of the objective ``simple`` games reveal.
        cache_dir: folder for generated games; ``None`` means :func:`default_cache_dir`.
        max_observation_chars: the observation part of ``State.text`` is cut to this length.
        max_candidates: keep at most this many admissible commands; ``None``: all.
        privileged_key: give states a hash of the game's facts as exact key (information the
            engine has and a real agent does not); off by default.
        view_key: without the privileged key, give states their view as key: the location,
            the room's description (what ``look`` prints) and the inventory, hashed
            (:func:`~jitrl.envs.game_text.view_key`), never the last message.
    """

    seed: int = 1
    kind: GameKind = "custom"
    world_size: int = DEFAULT_WORLD_SIZE
    nb_objects: int = DEFAULT_NB_OBJECTS
    quest_length: int = DEFAULT_QUEST_LENGTH
    rewards: Rewards = "dense"
    goal: Goal = "detailed"
    cache_dir: str | None = None
    max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS
    max_candidates: int | None = None
    privileged_key: bool = False
    view_key: bool = True

    def __post_init__(self) -> None:
        validate_seed(self.seed)
        if self.kind not in ("custom", "simple"):
            raise ValueError(f"kind must be 'custom' or 'simple', got {self.kind!r}")
        for name in ("world_size", "nb_objects", "quest_length", "max_observation_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rewards not in ("dense", "balanced", "sparse"):
            raise ValueError(f"rewards must be dense, balanced or sparse, got {self.rewards!r}")
        if self.goal not in ("detailed", "brief", "none"):
            raise ValueError(f"goal must be detailed, brief or none, got {self.goal!r}")
        if self.max_candidates is not None and self.max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1 or None, got {self.max_candidates}")

    @property
    def slug(self) -> str:
        """The game's identity as a file-name-safe string, e.g. ``1-custom-w5-o10-q5``."""
        if self.kind == "simple":
            return f"{self.seed}-simple-{self.rewards}-{self.goal}"
        return f"{self.seed}-custom-w{self.world_size}-o{self.nb_objects}-q{self.quest_length}"

    def resolved_cache_dir(self) -> Path:
        """The cache folder this config uses."""
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()


def _import_textworld() -> Any:
    try:
        import textworld
        import textworld.challenges
        import textworld.generator
    except ImportError as exc:
        raise ImportError(f"TextWorldEnv needs textworld: {TEXTWORLD_INSTALL_HINT}") from exc
    return textworld


@contextmanager
def _quiet_jericho() -> Iterator[None]:
    """Silence jericho's "not fully supported" warning: TextWorld plays its own z8 games."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=JERICHO_UNSUPPORTED_WARNING)
        yield


def game_path(config: TextWorldConfig) -> Path:
    """Where the game for ``config`` lives; the textworld version is part of the path."""
    textworld = _import_textworld()
    folder = config.resolved_cache_dir() / f"tw-{textworld.__version__}"
    return folder / f"{config.slug}{GAME_EXT}"


def _generate(config: TextWorldConfig, output: Path) -> None:
    """Generate and compile the game into ``output`` (``.z8``, plus ``.json`` beside it)."""
    textworld = _import_textworld()
    options = textworld.GameOptions()
    options.seeds = config.seed
    options.path = str(output)
    options.file_ext = GAME_EXT
    if config.kind == "simple":
        make = textworld.challenges.CHALLENGES[SIMPLE_CHALLENGE][1]
        settings = {"rewards": config.rewards, "goal": config.goal, "test": False}
        with _quiet_jericho():  # tw-simple plays a draft of the game to record a walkthrough
            game = make(settings=settings, options=options)
    else:
        options.nb_rooms = config.world_size
        options.nb_objects = config.nb_objects
        options.quest_length = config.quest_length
        game = textworld.generator.make_game(options)
    textworld.generator.compile_game(game, options)


def ensure_game(config: TextWorldConfig) -> Path:
    """Return the path of the game for ``config``, generating it on a cache miss (~2-4 s)."""
    path = game_path(config)
    if path.is_file() and path.with_suffix(JSON_EXT).is_file():
        logger.debug("textworld game cache hit: %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=TEMP_PREFIX) as tmp:
        staged = Path(tmp) / path.name
        _generate(config, staged)
        os.replace(staged.with_suffix(JSON_EXT), path.with_suffix(JSON_EXT))
        os.replace(staged, path)
    logger.info("generated %s in %.1f s", path, time.perf_counter() - start)
    return path


def _location_and_inventory(facts: list[Any]) -> tuple[str, list[str]]:
    """The player's room and carried objects, read from the world's facts."""
    location = ""
    inventory: list[str] = []
    for fact in facts:
        args = fact.arguments
        if fact.name == AT_PREDICATE and args[0].type == PLAYER_TYPE:
            location = str(args[1].name)
        elif fact.name == IN_PREDICATE and args[-1].type == INVENTORY_TYPE:
            inventory.append(str(args[0].name))
    return location, sorted(inventory)


def facts_key(facts: list[Any]) -> str:
    """A stable hash of the set of world facts (order-independent)."""
    text = "\n".join(sorted(str(fact) for fact in facts))
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def clean_feedback(text: str) -> str:
    """Remove TextWorld's rendering artefacts: the ASCII banner and the trailing status line."""
    lines = text.splitlines()
    kept = [line for line in lines if not _is_banner_line(line)]
    text = "\n".join(kept)
    prompt = text.rfind(">" + " " * STATUS_LINE_MIN_PAD)
    if prompt >= 0:
        text = text[:prompt]
    return text.strip()


def _is_banner_line(line: str) -> bool:
    """Lines of the TextWorld logo hold only ``$ | _ \\ / < >`` and spaces (and are not blank)."""
    stripped = line.strip()
    return bool(stripped) and not set(stripped) - BANNER_CHARS


class TextWorldEnv(BaseTextEnv):
    """A generated TextWorld game behind the :class:`jitrl.envs.base.TextEnv` protocol.

    ``info.goal`` is the game's objective; ``info.extra`` carries ``"observation"`` (the game's
    text without the banner and status line) and ``"raw_observation"``. :attr:`walkthrough` is a
    winning command sequence.
    """

    def __init__(self, config: TextWorldConfig | None = None) -> None:
        self.config = config if config is not None else TextWorldConfig()
        textworld = _import_textworld()
        self.task_id = f"textworld:{self.config.slug}"
        self.game_path = ensure_game(self.config)
        infos = textworld.EnvInfos(
            admissible_commands=True,
            inventory=True,
            description=True,
            score=True,
            max_score=True,
            won=True,
            lost=True,
            facts=True,
            objective=True,
            extras=["walkthrough"],
        )
        with _quiet_jericho():
            self._env: Any = textworld.start(str(self.game_path), request_infos=infos)
        self.walkthrough: list[str] = []
        self._score = 0.0
        self._over = True

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        """Restart the game. ``seed`` and ``fold`` are accepted for the protocol; the game is
        one, and deterministic."""
        if seed is not None:
            validate_seed(seed)
            logger.debug("TextWorld games are deterministic; reset seed %d has no effect", seed)
        state = self._tw().reset()
        self.walkthrough = list(state.get("extra.walkthrough") or [])
        self._score = float(state["score"])
        self._over = False
        return str(state.feedback), self._observe(state, initial=True)

    def step(self, action: str) -> StepResult:
        """Send ``action``; reward is the change of score. Raises after the episode ended."""
        if self._over:
            raise RuntimeError("the episode is over (or was never started): call reset() first")
        state, _, done = self._tw().step(action)
        score = float(state["score"])
        reward = score - self._score
        self._score = score
        self._over = bool(done)
        return str(state.feedback), reward, self._over, False, self._observe(state, initial=False)

    def close(self) -> None:
        """Stop the interpreter."""
        if self._env is not None:
            self._env.close()
            self._env = None

    def _tw(self) -> Any:
        if self._env is None:
            raise RuntimeError("the environment is closed")
        return self._env

    def _observe(self, state: Any, *, initial: bool) -> StepInfo:
        facts = list(state["facts"])
        location, inventory = _location_and_inventory(facts)
        observation = clean_feedback(str(state.feedback))
        # At reset the feedback is banner + objective + room; the room alone is the state.
        state_obs = str(state["description"]) if initial else observation
        text = format_state_text(
            location, inventory, normalise_observation(state_obs, self.config.max_observation_chars)
        )
        key = facts_key(facts) if self.config.privileged_key else None
        if key is None and self.config.view_key:
            key = view_key([location, str(state["description"]), *inventory])
        return self._remember(
            StepInfo(
                candidates=() if self._over else tuple(self._candidates(state)),
                state=State(text=text, key=key),
                score=self._score,
                won=bool(state["won"]),
                lost=bool(state["lost"]),
                max_score=float(state["max_score"]),
                goal=str(state["objective"]),
                location=location,
                inventory=tuple(inventory),
                extra={"observation": observation, "raw_observation": str(state.feedback)},
            )
        )

    def _candidates(self, state: Any) -> list[str]:
        commands = [str(c) for c in state["admissible_commands"] or []]
        # "look" and "inventory" are not meta verbs: they stay.
        commands = [c for c in commands if not is_meta_command(c)]
        return dedupe_candidates(commands, self.config.max_candidates)
