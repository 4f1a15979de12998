"""A memoising wrapper: the same prompt and candidates are scored once.

Games revisit states, and an episode's first steps repeat every episode, so many decisions see a
prompt they have seen before. The frozen model gives the same scores, so they are kept in an LRU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cachetools import LRUCache

from jitrl.llm.base import LanguageModel, Prompt, ScoreResult


class CachedModel:
    """Wraps a :class:`LanguageModel`; a cache hit costs nothing (0 calls, 0 s, 0 tokens)."""

    def __init__(self, model: LanguageModel, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.model = model
        self.name = model.name
        self._cache: LRUCache[tuple[str, str, str, tuple[str, ...]], ScoreResult] = LRUCache(
            maxsize=max_entries
        )
        self.hits = 0
        self.misses = 0

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Scores from the cache, or from the model (then cached)."""
        key = (prompt.system, prompt.user, prompt.answer_prefix, tuple(candidates))
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return replace(
                cached,
                prefill_tokens=0,
                prefill_seconds=0.0,
                scoring_seconds=0.0,
                calls=0,
                completion_tokens=0,
            )
        self.misses += 1
        result = self.model.score(prompt, candidates)
        self._cache[key] = result
        return result

    def generate(self, prompt: Prompt, max_tokens: int = 32) -> str:
        """Not cached: generation is passed through."""
        return self.model.generate(prompt, max_tokens)

    def close(self) -> None:
        """Close the wrapped model."""
        self.model.close()
