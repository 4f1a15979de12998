"""Settings of the HTTP service (``jitrl serve``). Every field is validated on construction.

This module imports nothing beyond the standard library and jitrl's own configuration, so the
command line can build a :class:`ServiceConfig` without the ``serve`` extra installed.
"""

from __future__ import annotations

import math
import re
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
HARD_MAX_ABS_REWARD = 1e12
"""Ceiling of :attr:`ServiceConfig.max_abs_reward`, of the return penalties and of a fixed
reward unit (also the request schema's bound on ``reward``). A shaped step reward is then at
most ``1e12 + 2 * 1e12 * 1e12`` in magnitude and, with ``gamma <= 1``, a discounted return at
most that many times its episode's length: finite for any episode a client can play, squares
(values, calibration) included, as float64 reaches 1.8e308. Within the default bound a reward
still resolves 1e-4."""
MIN_API_KEY_CHARS = 16
"""Shortest API key accepted (generate keys with ``python -c "import secrets;
print(secrets.token_urlsafe(32))"``)."""
MAX_API_KEY_CHARS = 512
"""Longest API key accepted."""
API_KEY_PATTERN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""An API key is an RFC 6750 bearer token: letters, digits, ``- . _ ~ + /``, trailing ``=``."""


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_api_key(key: str, where: str) -> None:
    """Raise ``ValueError`` unless ``key`` is a usable bearer token; the message says where
    the key came from (``where``) and never contains the key."""
    if not MIN_API_KEY_CHARS <= len(key) <= MAX_API_KEY_CHARS:
        raise ValueError(
            f"{where}: an API key must have {MIN_API_KEY_CHARS} to {MAX_API_KEY_CHARS} "
            f"characters, this one has {len(key)}"
        )
    if API_KEY_PATTERN.fullmatch(key) is None:
        raise ValueError(
            f"{where}: an API key may only contain letters, digits, - . _ ~ + / and trailing ="
        )


def split_api_keys(text: str) -> list[str]:
    """The keys of a comma-separated list (blanks around commas ignored, empty items skipped)."""
    return [k.strip() for k in text.split(",") if k.strip()]


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
    """Interface to listen on. Without API keys the service has no authentication: keep it on
    loopback (the default) or put it behind a proxy that authenticates."""
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
    max_abs_reward: float = HARD_MAX_ABS_REWARD
    """Largest reward magnitude accepted (422 above it); at most 1e12, which keeps every
    discounted return finite (see ``docs/service.md``)."""
    api_keys: str | None = field(default=None, repr=False)
    """Comma-separated API keys: every request must then send ``Authorization: Bearer KEY``
    and sees only the episodes and memory of its own key. Prefer ``JITRL_API_KEYS`` or
    ``api_keys_file``: a flag shows in the process list. ``None`` (and no file): no
    authentication."""
    api_keys_file: str | None = None
    """File of API keys, one per line (blank lines and ``#`` comments ignored), read at start;
    combined with ``api_keys``."""
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
        self._check_reward_bounds()
        self._check_api_keys()
        _check(isinstance(self.follow_store, bool), "follow_store must be a bool")
        self._check_seconds("follow_store_seconds", self.follow_store_seconds)
        _check(_is_int(self.seed), "seed must be an int")
        _check(self.log_level.lower() in _LOG_LEVELS, f"log_level must be one of {_LOG_LEVELS}")
        _check(isinstance(self.jitrl, JitRLConfig), "jitrl must be a JitRLConfig")

    def _check_reward_bounds(self) -> None:
        bound = self.max_abs_reward
        _check(
            _is_number(bound) and 0 < bound <= HARD_MAX_ABS_REWARD,
            f"max_abs_reward must be a number in (0, {HARD_MAX_ABS_REWARD:g}], got {bound!r}",
        )
        returns = self.jitrl.returns if isinstance(self.jitrl, JitRLConfig) else None
        for name in ("terminal_penalty", "revisit_penalty", "reward_unit"):
            value = getattr(returns, name, None)  # reward_unit: None, or absent in old configs
            _check(
                value is None or value <= HARD_MAX_ABS_REWARD,
                f"{name} must be <= {HARD_MAX_ABS_REWARD:g} for the service (returns must stay "
                f"finite), got {value!r}",
            )

    def _check_api_keys(self) -> None:
        keys, path = self.api_keys, self.api_keys_file
        _check(keys is None or isinstance(keys, str), "api_keys must be a str or None")
        _check(
            path is None or (isinstance(path, str) and bool(path.strip())),
            "api_keys_file must be a non-empty path or None",
        )
        for i, key in enumerate(split_api_keys(keys or ""), start=1):
            check_api_key(key, f"api_keys: key {i}")

    @staticmethod
    def _check_seconds(name: str, value: float) -> None:
        ok = _is_number(value) and math.isfinite(value) and value > 0
        _check(ok, f"{name} must be a positive finite number of seconds, got {value!r}")

    @staticmethod
    def _check_limit(name: str, value: int, ceiling: int | None) -> None:
        _check(_is_int(value) and value >= 1, f"{name} must be an int >= 1, got {value!r}")
        if ceiling is not None:
            _check(value <= ceiling, f"{name} must be <= {ceiling}, got {value!r}")
