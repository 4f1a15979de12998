"""Echoed prompt log-probs of ``/v1/completions``: parsing, the candidate's entries, alignment.

Pure functions on what a server returns with ``echo=True`` and ``logprobs``; used by
:mod:`jitrl.llm.openai.exact`. An entry is one prompt token: its text, its log-prob and the most
likely alternatives at that position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jitrl.llm.base import LLMError

Verdict = Literal["aligned", "shifted", "unclear"]
MIN_VOTES = 6
"""Fewest decisive votes (entries whose best alternative is their own or the next token)."""
MIN_SHARE = 0.8
"""Share of the decisive votes that a verdict needs."""
FINISH_LENGTH = "length"


@dataclass(frozen=True)
class Echo:
    """The echoed entries of one choice: token texts, log-probs, best alternatives."""

    tokens: list[str]
    logprobs: list[float | None]
    top: list[dict[str, float] | None]
    finish_reason: str | None


@dataclass(frozen=True)
class Alignment:
    """Votes of the alignment probe and the verdict drawn from them."""

    aligned_votes: int
    shifted_votes: int
    verdict: Verdict

    def __str__(self) -> str:
        return f"{self.verdict}: {self.aligned_votes} aligned vs {self.shifted_votes} shifted votes"


def detect_alignment(tokens: Sequence[str], top: Sequence[dict[str, float] | None]) -> Alignment:
    """Vote on whether entry ``i``'s alternatives predict token ``i`` or token ``i + 1``.

    Entries without alternatives, and those whose token equals the next, do not vote.
    """
    aligned = shifted = 0
    for i, alternatives in enumerate(top[: len(tokens) - 1]):
        if not alternatives or tokens[i] == tokens[i + 1]:
            continue
        best = max(alternatives, key=lambda key: alternatives[key])
        aligned += best == tokens[i]
        shifted += best == tokens[i + 1]
    total = aligned + shifted
    verdict: Verdict = "unclear"
    if total >= MIN_VOTES and aligned >= MIN_SHARE * total:
        verdict = "aligned"
    elif total >= MIN_VOTES and shifted >= MIN_SHARE * total:
        verdict = "shifted"
    return Alignment(aligned, shifted, verdict)


def locate_candidate(
    tokens: Sequence[str], n_generated: int, target: str, end_of_turn: str | None
) -> slice:
    """Entries of ``target`` (``" " + candidate``), which ends the prompt before ``end_of_turn``.

    The last ``n_generated`` entries are the generated tokens; then comes the marker entry (its
    text is the marker or empty), then the entries whose texts join to ``target``. Text outside
    ASCII is compared loosely (servers drop the parts of a character split between tokens).

    Raises:
        LLMError: when the entries do not end with the candidate on a token boundary.
    """
    end = len(tokens) - n_generated
    if end_of_turn is not None:
        if end < 1 or tokens[end - 1] not in ("", end_of_turn):
            raise LLMError(f"echoed tokens do not end with the end-of-turn marker {end_of_turn!r}")
        end -= 1
    wanted, joined, start = _ascii(target), "", end
    while start > 0 and len(_ascii(joined)) < len(wanted):
        start -= 1
        joined = tokens[start] + joined
    if _ascii(joined) != wanted or start == 0:
        raise LLMError(
            f"cannot find candidate {target!r} on a token boundary at the end of the echoed "
            f"prompt (found {joined!r}); the prompt and candidate tokenise jointly"
        )
    return slice(start, end)


def generated_count(echo: Echo, completion_tokens: int | None) -> int | None:
    """Generated entries at the end of ``echo`` (``max_tokens=1``): the response's own count
    for a single prompt, else 1 when ``max_tokens`` stopped the generation, else unknown."""
    if completion_tokens is not None:
        return completion_tokens
    return 1 if echo.finish_reason == FINISH_LENGTH else None


def _ascii(text: str) -> str:
    return text.encode("ascii", errors="ignore").decode("ascii")


def parse_echo(choice: Any) -> Echo:
    """The echoed entries of an SDK completion choice (LLMError when they are missing)."""
    logprobs = getattr(choice, "logprobs", None)
    tokens = getattr(logprobs, "tokens", None)
    values = getattr(logprobs, "token_logprobs", None)
    top = getattr(logprobs, "top_logprobs", None) or [None] * len(tokens or ())
    if not isinstance(tokens, list) or not isinstance(values, list) or len(values) != len(tokens):
        raise LLMError("the completion has no echoed prompt log-probs (tokens/token_logprobs)")
    if not isinstance(top, list) or len(top) != len(tokens):
        raise LLMError("the completion's top_logprobs do not match its tokens")
    if not all(v is None or isinstance(v, int | float) for v in values):
        raise LLMError("the completion's token_logprobs are not all numbers")
    top_dicts = [t if isinstance(t, dict) else None for t in top]
    return Echo([str(t) for t in tokens], values, top_dicts, getattr(choice, "finish_reason", None))
