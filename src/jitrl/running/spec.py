"""What a run plays, and what a comparison runs: the run specifications beside the method's
settings (:class:`jitrl.method.config.JitRLConfig`, nested in both).

Every field is a setting (:mod:`jitrl.settings`): a flag of ``jitrl run`` / ``jitrl compare``, a
key of a ``--config`` TOML file and a ``JITRL_*`` variable.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from jitrl.memory.base import DEFAULT_MEMORY
from jitrl.method.config import JitRLConfig

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 5
"""Episodes in the first and final windows of a run's summary and a comparison's report."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class PlaySpec:
    """What every run shares: the model, episode counts and the method."""

    model: str = "llamacpp"
    """Language model of the LLM agents: ``llamacpp`` (embedded SmolLM2), ``llamacpp:PATH.gguf``,
    ``openai:MODEL[@URL]``, ``hf:NAME_OR_PATH``, ``uniform`` (no model: memory alone) or
    ``scripted``."""
    episodes: int = 5
    """Episodes to play (a run into a folder that has some continues after them)."""
    max_steps: int = 40
    """Steps per episode (the episode is truncated after them)."""
    threads: int | None = None
    """Model threads per worker; ``None`` chooses from the free cores (:func:`model_threads`)."""
    privileged_key: bool = False
    """Give states the emulator's exact state key (Jericho's world-state hash, TextWorld's fact
    hash). It is information a web page, an API or a user's agent does not have, so it is off by
    default and results say when it was on."""
    view_key: bool = True
    """Key the states of text games by their view: what the agent reads of the place (task or
    location, the room's description, the inventory), never the last message, so a step that
    only printed something or was undone counts as a revisit. No privileged information;
    ``False`` leaves states without a key (unless ``privileged_key``)."""
    method: JitRLConfig = field(default_factory=JitRLConfig)
    """The method's settings."""

    def __post_init__(self) -> None:
        _check(bool(self.model.strip()), "model must not be empty")
        _check(self.episodes >= 1, f"episodes must be >= 1, got {self.episodes}")
        _check(self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}")
        _check(
            self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}"
        )


@dataclass(frozen=True)
class RunSpec(PlaySpec):
    """One run: an agent on an environment, its memory, and the method's settings."""

    env: str = "textworld-simple:1"
    """Environment: ``textworld[:SEED]``, ``textworld-simple:SEED``, ``jericho:PATH``,
    ``twx:GAME``, ``scienceworld:TASK``, ``miniwob:TASK``, ``browsergym:ID`` or
    ``module:factory`` (your own :class:`~jitrl.envs.base.TextEnv`). The default, a small
    generated game, shows learning within a few minutes."""
    episodes: int = 10
    """Episodes to play (a run into a folder that has some continues after them)."""
    max_steps: int = 20
    """Steps per episode (the episode is truncated after them)."""
    agent: str = "jitrl"
    """Agent: ``jitrl``, ``static``, ``icl``, ``qlearn``, ``random`` or ``module:factory``."""
    seed: int = 1
    """Base seed: episode ``i`` uses ``seed + i`` (the game's seed, the instance drawn, the
    sampler's seed)."""
    memory: str = DEFAULT_MEMORY
    """Experience store: a SQLite file or a ``postgresql://`` URL (agents with memory only)."""
    abstract_states: bool = False
    """Let the LLM rewrite observations into compact states (cached beside the run)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(bool(self.env.strip()), "env must not be empty")
        _check(bool(self.agent.strip()), "agent must not be empty")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _check(bool(self.memory.strip()), "memory must not be empty")


@dataclass(frozen=True)
class CompareSpec(PlaySpec):
    """A comparison: agents x environments x seeds, each job with its own fresh memory."""

    env: str = "textworld:1"
    """Suites, comma-separated: ``jericho:DIR`` (every game in it), ``jericho:PATH``,
    ``textworld:K`` (K games from ``game_seed`` on), ``textworld-simple:K``, ``twx:GAME``,
    ``scienceworld:TASK``, ``miniwob:TASK``, ``miniwob:all``."""
    agents: str = "jitrl,static,icl,qlearn,random"
    """Agents to compare, comma-separated."""
    seeds: int = 3
    """Number of seeds (1..K); each seed draws its own stream of instances."""
    episodes: int = 20
    """Learning episodes per agent and seed."""
    test_episodes: int = 0
    """After learning, episodes on unseen test instances with memory frozen (0: none)."""
    game_seed: int = 1
    """First TextWorld generation seed of ``textworld:K`` suites."""
    memory: str | None = None
    """A ``postgresql://`` URL holding every job's store, one schema per job; ``None``:
    ``memory.sqlite`` in each run folder."""
    window: int = DEFAULT_WINDOW
    """Episodes in the report's first and final windows."""
    warm_from: str | None = None
    """Store every memory agent starts from (transfer); ``None``: an empty memory."""
    price: str | None = None
    """API prices in $ per million tokens, ``IN`` or ``IN,OUT``, for the report's cost columns."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(bool(self.env.strip()), "env must not be empty")
        _check(bool(self.agent_names), "agents must name at least one agent")
        _check(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        _check(self.test_episodes >= 0, f"test_episodes must be >= 0, got {self.test_episodes}")
        _check(self.game_seed >= 0, f"game_seed must be >= 0, got {self.game_seed}")
        _check(self.window >= 1, f"window must be >= 1, got {self.window}")

    @property
    def agent_names(self) -> tuple[str, ...]:
        """``agents`` as a tuple of names."""
        return tuple(dict.fromkeys(a.strip() for a in self.agents.split(",") if a.strip()))


def model_threads(workers: int = 1, requested: int | None = None) -> int:
    """Model threads for each of ``workers`` workers: ``requested``, else the free cores shared.

    Free cores are the usable cores less the one-minute load average (rounded), at least one per
    worker: on a busy two-core machine every model gets one thread instead of fighting for two.
    """
    if requested is not None:
        return requested
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # not available on this platform
        busy = 0
    free = max(1, cores - busy)
    chosen = max(1, free // max(1, workers))
    log.info(
        "model threads: %d per worker (%d cores, load %d, %d workers)", chosen, cores, busy, workers
    )
    return chosen
