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
from jitrl.llm.openai.response import as_list, as_logprob, excerpt, field

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
        LLMError: when the entries do not end with the candidate on a token boundary, or
            ``n_generated`` is not between 0 and the number of entries.
    """
    if not 0 <= n_generated <= len(tokens):
        raise LLMError(f"the server reports {n_generated} generated tokens of {len(tokens)} echoed")
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
            f"prompt (found {excerpt(joined)}); the prompt and candidate tokenise jointly"
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
    """The echoed entries of a completion choice.

    Log-probs are clamped (:func:`~jitrl.llm.openai.response.as_logprob`); alternatives that are
    not ``{token: number}`` count as none.

    Raises:
        LLMError: when the tokens or their log-probs are missing or malformed.
    """
    logprobs = field(choice, "logprobs")
    tokens = as_list(field(logprobs, "tokens"))
    values = as_list(field(logprobs, "token_logprobs"))
    if tokens is None or values is None or len(values) != len(tokens):
        raise LLMError("the completion has no echoed prompt log-probs (tokens/token_logprobs)")
    if not all(isinstance(t, str) for t in tokens):
        raise LLMError("the completion's echoed tokens are not all text")
    raw_top = field(logprobs, "top_logprobs")
    top = [None] * len(tokens) if raw_top is None or raw_top == [] else as_list(raw_top)
    if top is None or len(top) != len(tokens):
        raise LLMError("the completion's top_logprobs do not match its tokens")
    clamped = [None if v is None else as_logprob(v) for v in values]
    if any(c is None and v is not None for c, v in zip(clamped, values, strict=True)):
        raise LLMError("the completion's token_logprobs are not all numbers")
    finish = field(choice, "finish_reason")
    finish_reason = finish if isinstance(finish, str) else None
    return Echo(tokens, clamped, [_alternatives(t) for t in top], finish_reason)


def _alternatives(entry: Any) -> dict[str, float] | None:
    """``{token: log-prob}`` of one entry's alternatives; None when it lists no usable one."""
    if not isinstance(entry, dict):
        return None
    pairs = ((token, as_logprob(value)) for token, value in entry.items())
    found = {token: value for token, value in pairs if isinstance(token, str) and value is not None}
    return found or None
