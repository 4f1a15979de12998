"""A deterministic, dependency-free language model for tests and dry runs.

:class:`ScriptedModel` returns log-probabilities from a fixed mapping ``{candidate: logprob}``
(with a default for unknown candidates) or from a user callable, and records every call so that
tests can check what an agent asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from jitrl.llm.base import Prompt, ScoreResult

ScoreFn = Callable[[Prompt, Sequence[str]], Sequence[float]]
"""A scoring callable: ``(prompt, candidates) -> one log-probability per candidate``."""

DEFAULT_LOGPROB = -5.0
"""Log-probability given to candidates missing from the mapping (unless told otherwise)."""

SCRIPTED_NAME = "scripted"
"""Default :attr:`ScriptedModel.name`."""


@dataclass(frozen=True)
class ScoreCall:
    """One recorded :meth:`ScriptedModel.score` call.

    Attributes:
        prompt: the prompt passed in.
        candidates: the candidates passed in, in order.
        result: what the model returned.
    """

    prompt: Prompt
    candidates: tuple[str, ...]
    result: ScoreResult


@dataclass(frozen=True)
class GenerateCall:
    """One recorded :meth:`ScriptedModel.generate` call.

    Attributes:
        prompt: the prompt passed in.
        max_tokens: the token budget passed in.
        text: what the model returned.
    """

    prompt: Prompt
    max_tokens: int
    text: str


class ScriptedModel:
    """A :class:`~jitrl.llm.base.LanguageModel` whose answers are fixed in advance.

    Scores come from ``scores``: either a mapping ``{candidate: logprob}`` (candidates absent
    from it get ``default``) or a callable ``(prompt, candidates) -> list[float]``. Token counts
    are the number of whitespace-separated words of each candidate (at least 1), so that length
    normalisation can be exercised. Every call is appended to :attr:`score_calls` or
    :attr:`generate_calls`.

    Args:
        scores: the mapping or callable that gives the log-probabilities.
        default: log-probability of candidates missing from a mapping.
        generations: strings returned by successive :meth:`generate` calls; the last one is
            repeated once the sequence is exhausted. Empty: ``generate`` returns ``""``.
        name: the model's name.
    """

    def __init__(
        self,
        scores: Mapping[str, float] | ScoreFn | None = None,
        *,
        default: float = DEFAULT_LOGPROB,
        generations: Sequence[str] = (),
        name: str = SCRIPTED_NAME,
    ) -> None:
        self.name = name
        self._scores: Mapping[str, float] | ScoreFn = {} if scores is None else scores
        self._default = default
        self._generations = tuple(generations)
        self.score_calls: list[ScoreCall] = []
        self.generate_calls: list[GenerateCall] = []
        self.closed = False

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Return the scripted log-probability of each candidate and record the call.

        Raises:
            ValueError: if ``candidates`` is empty, or a callable returns the wrong number of
                values.
            RuntimeError: if the model was closed.
        """
        self._check_open()
        if not candidates:
            raise ValueError("score() needs at least one candidate")
        if callable(self._scores):
            values = [float(v) for v in self._scores(prompt, candidates)]
            if len(values) != len(candidates):
                raise ValueError(
                    f"scoring callable returned {len(values)} values for "
                    f"{len(candidates)} candidates"
                )
        else:
            values = [float(self._scores.get(c, self._default)) for c in candidates]
        result = ScoreResult(
            logprobs=tuple(values),
            token_counts=tuple(max(len(c.split()), 1) for c in candidates),
        )
        self.score_calls.append(ScoreCall(prompt, tuple(candidates), result))
        return result

    def generate(self, prompt: Prompt, max_tokens: int = 32) -> str:
        """Return the next scripted generation and record the call."""
        self._check_open()
        index = min(len(self.generate_calls), len(self._generations) - 1)
        text = self._generations[index] if self._generations else ""
        self.generate_calls.append(GenerateCall(prompt, max_tokens, text))
        return text

    def close(self) -> None:
        """Mark the model closed; later calls raise :class:`RuntimeError`."""
        self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"model {self.name!r} is closed")
