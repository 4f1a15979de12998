"""The language-model protocol: score candidate actions after a prompt, or generate text.

A backend turns a :class:`Prompt` into base logits ``z(a|s)`` over candidates. The prompt is
split in two so that backends can keep the fixed part (system instructions) evaluated once and
reuse it across steps; only ``user`` and ``answer_prefix`` change from step to step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Prompt:
    """A chat prompt in three parts.

    Attributes:
        system: instructions that stay the same across steps (cached by backends that can).
        user: the part that changes every step (state, history).
        answer_prefix: text that opens the assistant's answer; candidates are scored after it,
            each preceded by one space. It must not end with whitespace.
    """

    system: str
    user: str
    answer_prefix: str = "Action:"

    def __post_init__(self) -> None:
        if self.answer_prefix != self.answer_prefix.rstrip():
            raise ValueError("Prompt.answer_prefix must not end with whitespace")


@dataclass(frozen=True)
class ScoreResult:
    """Log-probabilities of candidates after a prompt, with the cost of computing them.

    Attributes:
        logprobs: summed ``log p(candidate tokens | prompt)`` per candidate.
        token_counts: number of tokens of each candidate (for length normalisation).
        prompt_tokens: tokens in the whole rendered prompt.
        prefill_tokens: prompt tokens actually evaluated for this call (the rest came from cache).
        prefill_seconds: wall time spent evaluating the prompt.
        scoring_seconds: wall time spent evaluating the candidates after the prompt.
        calls: model calls (requests) made; 0 when the result came from a cache.
        completion_tokens: tokens generated (0 for exact scoring; label tokens for API modes).
    """

    logprobs: tuple[float, ...]
    token_counts: tuple[int, ...]
    prompt_tokens: int = 0
    prefill_tokens: int = 0
    prefill_seconds: float = 0.0
    scoring_seconds: float = 0.0
    calls: int = 1
    completion_tokens: int = 0

    @property
    def billed_tokens(self) -> int:
        """Input tokens an API would bill: the prompt plus every scored candidate."""
        return self.prompt_tokens + sum(self.token_counts) if self.calls else 0

    def logits(self, length_normalise: bool) -> tuple[float, ...]:
        """Base logits: summed log-probs, or their per-token mean when ``length_normalise``."""
        if not length_normalise:
            return self.logprobs
        return tuple(lp / max(n, 1) for lp, n in zip(self.logprobs, self.token_counts, strict=True))

    @property
    def seconds(self) -> float:
        """Total LLM wall time of the call."""
        return self.prefill_seconds + self.scoring_seconds


@runtime_checkable
class LanguageModel(Protocol):
    """What jitrl needs from a language model."""

    name: str

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Return the log-probability of each candidate as the answer to ``prompt``."""
        ...

    def generate(self, prompt: Prompt, max_tokens: int = 32) -> str:
        """Generate a continuation of ``prompt`` (after ``answer_prefix``)."""
        ...

    def close(self) -> None:
        """Release the model's resources."""
        ...
