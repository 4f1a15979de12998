"""Settings of the HTTP service (``jitrl serve``). Every field is validated on construction.

This module imports nothing beyond the standard library and jitrl's own configuration, so the
command line can build a :class:`ServiceConfig` without the ``serve`` extra installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from jitrl.memory.base import DEFAULT_MEMORY
from jitrl.method.config import JitRLConfig

OnExpire = Literal["store", "drop"]
"""What happens to an open episode whose client went quiet for ``episode_ttl_seconds``."""

ON_EXPIRE_CHOICES: tuple[OnExpire, ...] = ("store", "drop")

HARD_MAX_CANDIDATES = 4096
"""Ceiling of :attr:`ServiceConfig.max_candidates` (also the request schema's ``maxItems``)."""
HARD_MAX_TEXT_CHARS = 1_000_000
"""Ceiling of :attr:`ServiceConfig.max_text_chars` (also the request schema's ``maxLength``)."""
MAX_ID_CHARS = 128
"""Longest episode id (and task id) a client may send."""


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``jitrl serve`` needs: the memory, the model, the socket and the limits."""

    memory: str = DEFAULT_MEMORY
    """Experience store: anything :func:`jitrl.memory.open_store` accepts (a SQLite file path,
    a ``sqlite:///path`` URL, ...); created when missing."""
    model: str | None = None
    """Language-model spec for :func:`jitrl.llm.load_model` (``llamacpp``,
    ``llamacpp:PATH.gguf``, ``scripted``), used to score candidates when a decide request sends
    a prompt instead of base logits. ``None``: clients must send logits."""
    model_threads: int | None = None
    """CPU threads of the llama.cpp backend (``None``: all usable cores)."""
    host: str = "127.0.0.1"
    """Interface to listen on. The service has no authentication: keep it on loopback or put
    it behind a proxy that authenticates."""
    port: int = 8000
    """TCP port to listen on (0: any free port)."""
    episode_ttl_seconds: float = 900.0
    """An open episode with no request for this long is expired (its client is presumed
    gone) and handled per ``on_expire``."""
    on_expire: OnExpire = "store"
    """``store``: an expired episode is finished (``failed=False``) and stored like a
    ``finish`` request would; ``drop``: it is discarded. Stored episodes are never touched."""
    sweep_interval_seconds: float = 5.0
    """Period of the background task that expires idle episodes (every request also sweeps)."""
    max_body_bytes: int = 1_000_000
    """Largest request body accepted; a larger one is refused with 413 before it is parsed."""
    max_candidates: int = 256
    """Most candidate actions per decide request (422 above it)."""
    max_text_chars: int = 20_000
    """Longest state text, key, candidate or prompt part, in characters (422 above it)."""
    max_open_episodes: int = 1000
    """Most episodes open at once; opening another is refused with 429."""
    follow_store: bool = True
    """Before opening an episode, index the episodes that other processes (other servers,
    ``jitrl run`` workers) stored in the same memory since the last check."""
    follow_store_seconds: float = 2.0
    """Look at most this often (a look lists the store's episode ids)."""
    seed: int = 0
    """Seed of the learner's generator (used when ``jitrl.policy.selection`` is ``sample``)."""
    log_level: str = "info"
    """uvicorn's log level: critical, error, warning, info, debug or trace."""
    jitrl: JitRLConfig = field(default_factory=JitRLConfig)
    """The method's settings (beta, k, gamma, ...)."""

    def __post_init__(self) -> None:
        _check(isinstance(self.memory, str) and bool(self.memory.strip()), "memory is required")
        _check(self.model is None or isinstance(self.model, str), "model must be a str or None")
        threads = self.model_threads
        _check(threads is None or (_is_int(threads) and threads >= 1), "model_threads must be >= 1")
        _check(isinstance(self.host, str) and bool(self.host), "host must be a non-empty str")
        _check(_is_int(self.port) and 0 <= self.port <= 65535, f"port out of range: {self.port}")
        self._check_seconds("episode_ttl_seconds", self.episode_ttl_seconds)
        self._check_seconds("sweep_interval_seconds", self.sweep_interval_seconds)
        _check(self.on_expire in ON_EXPIRE_CHOICES, f"on_expire must be one of {ON_EXPIRE_CHOICES}")
        self._check_limit("max_body_bytes", self.max_body_bytes, None)
        self._check_limit("max_candidates", self.max_candidates, HARD_MAX_CANDIDATES)
        self._check_limit("max_text_chars", self.max_text_chars, HARD_MAX_TEXT_CHARS)
        self._check_limit("max_open_episodes", self.max_open_episodes, None)
        _check(isinstance(self.follow_store, bool), "follow_store must be a bool")
        self._check_seconds("follow_store_seconds", self.follow_store_seconds)
        _check(_is_int(self.seed), "seed must be an int")
        _check(self.log_level.lower() in _LOG_LEVELS, f"log_level must be one of {_LOG_LEVELS}")
        _check(isinstance(self.jitrl, JitRLConfig), "jitrl must be a JitRLConfig")

    @staticmethod
    def _check_seconds(name: str, value: float) -> None:
        ok = _is_number(value) and math.isfinite(value) and value > 0
        _check(ok, f"{name} must be a positive finite number of seconds, got {value!r}")

    @staticmethod
    def _check_limit(name: str, value: int, ceiling: int | None) -> None:
        _check(_is_int(value) and value >= 1, f"{name} must be an int >= 1, got {value!r}")
        if ceiling is not None:
            _check(value <= ceiling, f"{name} must be <= {ceiling}, got {value!r}")
