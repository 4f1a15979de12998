"""LLM state abstraction: a raw observation and recent actions rewritten as a compact state.

Memory compares states by their text, and a game's raw observation carries noise (flavour text,
messages about the last command) that makes similar situations look different.
:class:`StateAbstractor` asks the language model to rewrite the observation and the last actions
as one line of fields, e.g. ``location: Kitchen; inventory: lamp; visible: table, sack; goal
progress: found food``, which then serves as :attr:`jitrl.method.types.State.text`.

The model is frozen, so the same input always gives the same state: answers are cached by the
sha256 of the exact prompt and model name, in an LRU (cachetools) and optionally in a JSON-lines
file (one ``{"key": ..., "text": ...}`` per line, appended once per new input) so that later runs
never ask again. The answer is cleaned (lines joined with ``"; "``, whitespace collapsed, cut at
a word boundary to ``max_output_chars``). An empty or garbage answer (fewer than
``min_output_chars`` characters, no letter, or a loop repeating a few words) gives the caller's
``fallback`` (the environment's own state text), logged; the verdict is cached too (``"text":
null``), so the fallback is not asked for again. A model error gives the fallback uncached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from jitrl.fileio import read_jsonl
from jitrl.llm.base import LanguageModel, Prompt

log = logging.getLogger(__name__)

SYSTEM = (
    "You summarise the state of a text game for a memory of past situations. Keep only facts "
    "that matter for choosing the next command. Answer with one line: {fields}."
)
_SPACES = re.compile(r"\s+")
_BULLET = re.compile(r"^[\s\-*•>#`]+")
_LETTER = re.compile(r"[^\W\d_]")
_LOOP_MIN_WORDS = 12
"""Answers of at least this many words are checked for loops."""
_LOOP_MAX_DISTINCT = 0.25
"""An answer whose distinct words are at most this fraction of its words is a loop."""

CacheKey = str
CacheValue = str | None
"""A cleaned state, or ``None`` when the model's answer was garbage (use the fallback)."""


@dataclass(frozen=True)
class AbstractionConfig:
    """What the model sees and how much it may write."""

    fields: tuple[str, ...] = ("location", "inventory", "visible", "goal progress")
    """Fields asked for, in order; the answer is opened with the first one (``location:``)."""
    history: int = 3
    """Number of recent actions shown with the observation."""
    max_input_chars: int = 1200
    """The observation (whitespace collapsed) is cut to this many characters."""
    max_output_tokens: int = 64
    """Token budget of the answer."""
    max_output_chars: int = 300
    """The cleaned state is cut to this many characters (at a word boundary)."""
    min_output_chars: int = 3
    """Shorter answers (after the opening field name) are garbage."""
    cache_entries: int = 4096
    """Size of the in-memory LRU of states."""

    def __post_init__(self) -> None:
        if not self.fields or not all(f.strip() and ":" not in f for f in self.fields):
            raise ValueError("fields must be non-empty names without ':'")
        if self.history < 0:
            raise ValueError("history must be >= 0")
        if min(self.max_input_chars, self.max_output_tokens, self.cache_entries) < 1:
            raise ValueError("max_input_chars, max_output_tokens and cache_entries must be >= 1")
        if not 1 <= self.min_output_chars <= self.max_output_chars:
            raise ValueError("need 1 <= min_output_chars <= max_output_chars")


def build_prompt(observation: str, history: Sequence[str], config: AbstractionConfig) -> Prompt:
    """The prompt for one observation (its recent actions first)."""
    fields = "; ".join(f"{name}: ..." for name in config.fields)
    lines = []
    recent = [a for a in history if a.strip()][-config.history :] if config.history else []
    if recent:
        lines.append(f"Recent commands: {', '.join(recent)}")
    lines.append(f"Observation: {_SPACES.sub(' ', observation).strip()[: config.max_input_chars]}")
    return Prompt(
        system=SYSTEM.format(fields=fields),
        user="\n".join(lines),
        answer_prefix=f"{config.fields[0]}:",
    )


def clean(text: str, max_chars: int) -> str:
    """One line: bullets stripped, repeated lines dropped, lines joined with ``"; "``,
    whitespace collapsed, cut at a word boundary to ``max_chars``."""
    parts: list[str] = []
    for line in text.splitlines():
        part = _SPACES.sub(" ", _BULLET.sub("", line)).strip(" ;`")
        if part and part not in parts:
            parts.append(part)
    out = "; ".join(parts)
    if len(out) > max_chars:
        head = out[: max_chars + 1]
        head = head.rsplit(" ", 1)[0] if " " in head else head
        out = head[:max_chars].rstrip(" ;,")
    return out


def is_garbage(answer: str, config: AbstractionConfig) -> bool:
    """An answer too short, without letters, or looping over a few words."""
    if len(answer) < config.min_output_chars or not _LETTER.search(answer):
        return True
    words = answer.lower().split()
    return len(words) >= _LOOP_MIN_WORDS and len(set(words)) <= _LOOP_MAX_DISTINCT * len(words)


def cache_key(model_name: str, prompt: Prompt, max_tokens: int) -> CacheKey:
    """sha256 of everything that determines the answer of a frozen model."""
    payload = json.dumps(
        [model_name, prompt.system, prompt.user, prompt.answer_prefix, max_tokens],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_cache(path: Path) -> dict[CacheKey, CacheValue]:
    """The entries of a JSON-lines cache file (missing file: none; bad lines skipped, logged)."""
    entries: dict[CacheKey, CacheValue] = {}
    if not path.exists():
        return entries
    malformed: list[int] = []
    bad = 0
    for _, row in read_jsonl(path, skipped=malformed):
        try:
            key, text = row["key"], row["text"]
        except (TypeError, KeyError):
            bad += 1
            continue
        if isinstance(key, str) and (text is None or isinstance(text, str)):
            entries[key] = text
        else:
            bad += 1
    bad += len(malformed)
    if bad:
        log.warning("state cache %s: %d unreadable lines skipped", path, bad)
    return entries


class StateAbstractor:
    """Rewrites observations into compact states with a language model, cached.

    Args:
        model: the language model (only ``generate`` is used).
        config: prompt and output settings.
        cache_path: JSON-lines file that keeps states across runs (created on the first new
            state; each state is one appended line); ``None`` keeps them in memory only.

    Attributes:
        calls: model calls made. hits: answers served from a cache (memory or file).
        fallbacks: times the caller's fallback was returned (garbage answer or model error).
    """

    def __init__(
        self,
        model: LanguageModel,
        config: AbstractionConfig | None = None,
        cache_path: str | Path | None = None,
    ) -> None:
        self.model = model
        self.config = config or AbstractionConfig()
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self._lru: LRUCache[CacheKey, CacheValue] = LRUCache(maxsize=self.config.cache_entries)
        self._disk = load_cache(self.cache_path) if self.cache_path is not None else {}
        self.calls = 0
        self.hits = 0
        self.fallbacks = 0

    def __call__(self, observation: str, history: Sequence[str], fallback: str) -> str:
        """The compact state of ``observation`` after ``history``; ``fallback`` if the model
        gives nothing usable."""
        prompt = build_prompt(observation, history, self.config)
        key = cache_key(self.model.name, prompt, self.config.max_output_tokens)
        if key in self._lru or key in self._disk:
            self.hits += 1
            value = self._lru[key] if key in self._lru else self._disk[key]
            self._lru[key] = value
        else:
            try:
                value = self._ask(prompt)
            except Exception as exc:  # an optional component must not stop the episode
                log.warning("state abstraction failed (%r); using fallback", exc)
                self.fallbacks += 1
                return fallback
            self._store(key, value)
        if value is None:
            self.fallbacks += 1
            return fallback
        return value

    def _ask(self, prompt: Prompt) -> CacheValue:
        """The cleaned state from one model call, or ``None`` for a garbage answer."""
        self.calls += 1
        raw = self.model.generate(prompt, self.config.max_output_tokens)
        answer = clean(raw, self.config.max_output_chars)
        if is_garbage(answer, self.config):
            log.warning("state abstraction gave garbage %r; using fallback", raw[:80])
            return None
        return clean(f"{prompt.answer_prefix} {answer}", self.config.max_output_chars)

    def _store(self, key: CacheKey, value: CacheValue) -> None:
        self._lru[key] = value
        if self.cache_path is None:
            return
        self._disk[key] = value
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": key, "text": value}, ensure_ascii=False) + "\n"
        with self.cache_path.open("a", encoding="utf-8") as f:
            f.write(line)  # one write per line: concurrent appenders do not interleave lines


__all__ = ["AbstractionConfig", "StateAbstractor", "build_prompt", "clean", "is_garbage"]
