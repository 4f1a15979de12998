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
        input_tokens: input tokens an API reported as billed (its ``usage.prompt_tokens`` summed
            over every request of the call), when the backend knows them; ``None`` otherwise.
    """

    logprobs: tuple[float, ...]
    token_counts: tuple[int, ...]
    prompt_tokens: int = 0
    prefill_tokens: int = 0
    prefill_seconds: float = 0.0
    scoring_seconds: float = 0.0
    calls: int = 1
    completion_tokens: int = 0
    input_tokens: int | None = None

    @property
    def billed_tokens(self) -> int:
        """Input tokens an API would bill: ``input_tokens`` when the backend reported them,
        else the prompt plus every scored candidate (a prompt cached across candidates)."""
        if not self.calls:
            return 0
        if self.input_tokens is not None:
            return self.input_tokens
        return self.prompt_tokens + sum(self.token_counts)

    def logits(self, length_normalise: bool) -> tuple[float, ...]:
        """Base logits: summed log-probs, or their per-token mean when ``length_normalise``."""
        if not length_normalise:
            return self.logprobs
        return tuple(lp / max(n, 1) for lp, n in zip(self.logprobs, self.token_counts, strict=True))

    @property
    def seconds(self) -> float:
        """Total LLM wall time of the call."""
        return self.prefill_seconds + self.scoring_seconds


class LLMError(RuntimeError):
    """A language model could not give what was asked (server error, retries exhausted, a
    response without the log-probs a scoring mode needs, ...).

    Attributes:
        status: the HTTP status of the last failed request, when there was one.
        attempts: requests made before giving up (1 when the error was not retried).
        transient: the last failure was of a kind worth retrying (HTTP 429 or 5xx, a timeout,
            a lost connection): the server may do better later.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.transient = transient

    @property
    def unreachable(self) -> bool:
        """No HTTP answer at all (timeouts, refused or lost connections)."""
        return self.transient and self.status is None


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
