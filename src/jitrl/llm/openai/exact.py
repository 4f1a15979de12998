"""Exact mode: each candidate's summed prompt log-probs from ``/v1/completions`` with ``echo``.

The text sent is the rendered prompt, ``" " + candidate`` and (``score_end_token``) the
end-of-turn marker, with ``echo=True``, ``logprobs=1`` and ``max_tokens=1`` (never 0: on
llama.cpp 0 means "no limit"). The server returns one entry per token: its text, its log-prob
and the most likely alternatives. The candidate's entries are found from the end: the generated
entries are dropped, then the marker, then entries are taken back until their texts spell the
candidate exactly (so a token that straddles the prompt/candidate boundary is an error, never a
silent mismatch). All candidates go in one request (a list prompt) where the server accepts it.

Alignment check at connect time (:meth:`ExactScorer.connect`): a probe prompt lists eight colours
three times and its answer repeats them, so most tokens are predictable. For each entry the most
likely alternative is compared with the entry's own token (the entry is *aligned*: it holds the
distribution that predicted its token) and with the next token (the entry is *shifted*: it holds
the distribution that predicts the next token, as llama-cpp-python 0.3.36's server does when the
prompt does not start with the BOS token). A clear majority of aligned votes, and the repeated
list scoring far above an implausible answer, accept the server; anything else raises
:class:`ExactModeRefused` with one of the ``REFUSED_*`` messages. A shifted server is refused
rather than corrected: the value needed for a token is in the previous entry's alternatives only
when it is among the few most likely tokens, so a correction could not be exact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jitrl.llm.base import LLMError, Prompt, ScoreResult
from jitrl.llm.openai.client import ApiClient, Usage
from jitrl.llm.openai.config import OpenAIConfig
from jitrl.llm.openai.echo import (
    Alignment,
    Echo,
    detect_alignment,
    generated_count,
    locate_candidate,
    parse_echo,
)
from jitrl.llm.openai.response import as_count, as_list, excerpt, field

logger = logging.getLogger(__name__)

PROBE_WORDS = "red green blue yellow purple orange black white"
PROBE_PROMPT = Prompt(
    system="Repeat the list of colours exactly.",
    user=" ".join([PROBE_WORDS] * 3),
    answer_prefix="List:",
)
PROBE_PLAUSIBLE = PROBE_WORDS
PROBE_IMPLAUSIBLE = "xyzzy plugh frobozz quendor"
PROBE_MARGIN = 5.0
"""Nats by which the repeated list must beat the implausible answer on an aligned server."""
ECHO_LOGPROBS = 1
"""Alternatives asked per entry: one is enough for the alignment votes."""

REFUSED_UNSUPPORTED = (
    "exact mode refused: the server gives no prompt log-probs for /v1/completions with "
    "echo=True ({reason}); use mode='labelled'"
)
REFUSED_SHIFTED = (
    "exact mode refused: the server's echoed prompt log-probs are shifted by one position (the "
    "log-prob given for token i belongs to token i+1; llama-cpp-python's server does this when "
    "the prompt does not start with the BOS token) [{votes}]; use mode='labelled', or a template "
    "whose prompts start with the BOS token"
)
REFUSED_UNCLEAR = (
    "exact mode refused: the alignment probe was inconclusive [{votes}]; the echoed log-probs "
    "cannot be trusted, use mode='labelled'"
)


class ExactModeRefused(LLMError):
    """The server cannot give exact candidate log-probs (see the ``REFUSED_*`` messages)."""


@dataclass(frozen=True)
class ProbeReport:
    """What :meth:`ExactScorer.connect` found (kept on the scorer, and logged)."""

    alignment: Alignment
    plausible: float
    implausible: float
    list_prompts: bool


class ExactScorer:
    """Scores candidates from echoed prompt log-probs; :meth:`connect` must accept the server."""

    def __init__(self, client: ApiClient, config: OpenAIConfig) -> None:
        self.client = client
        self.config = config
        self.list_prompts = False
        self.probe: ProbeReport | None = None

    def render(self, prompt: Prompt) -> str:
        """The prompt as sent: system part, then variable part (ends with the answer prefix)."""
        cfg = self.config
        turn = cfg.turn_template.format(user=prompt.user, answer_prefix=prompt.answer_prefix)
        return cfg.system_template.format(system=prompt.system) + turn

    def connect(self) -> ProbeReport:
        """Run the alignment probe; raise :class:`ExactModeRefused` unless the server passes."""
        texts = [self._text(PROBE_PROMPT, c) for c in (PROBE_PLAUSIBLE, PROBE_IMPLAUSIBLE)]
        try:
            (single,), completion = self._request(texts[:1], ECHO_LOGPROBS)
        except LLMError as exc:
            if exc.unreachable:
                raise  # not a verdict on what the server can do
            reason = REFUSED_UNSUPPORTED.format(reason=exc)
            raise ExactModeRefused(reason, status=exc.status) from exc
        alignment = detect_alignment(single.tokens, single.top)
        if alignment.verdict != "aligned":
            template = REFUSED_SHIFTED if alignment.verdict == "shifted" else REFUSED_UNCLEAR
            raise ExactModeRefused(template.format(votes=alignment))
        try:
            generated = generated_count(single, completion) or 0
            plausible, _ = self._candidate_logprob(single, generated, PROBE_PLAUSIBLE)
            self.list_prompts = self._accepts_lists(texts)
            implausible = self.score(PROBE_PROMPT, [PROBE_IMPLAUSIBLE]).logprobs[0]
        except LLMError as exc:
            reason = REFUSED_UNSUPPORTED.format(reason=f"probe answer unreadable: {exc}")
            raise ExactModeRefused(reason, status=exc.status) from exc
        if plausible - implausible < PROBE_MARGIN:
            raise ExactModeRefused(
                REFUSED_UNCLEAR.format(
                    votes=f"{alignment}; but the repeated list scored "
                    f"{plausible:.2f} vs {implausible:.2f} for an implausible answer"
                )
            )
        self.probe = ProbeReport(alignment, plausible, implausible, self.list_prompts)
        logger.info("exact mode accepted: %s", self.probe)
        return self.probe

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Summed log-probs of each candidate's tokens (marker included) after ``prompt``."""
        if not candidates:
            raise ValueError("score() needs at least one candidate")
        start, usage = time.perf_counter(), Usage()
        texts = [self._text(prompt, c) for c in candidates]
        groups = (
            [list(range(len(texts)))] if self.list_prompts else [[i] for i in range(len(texts))]
        )
        scored: dict[int, tuple[float, int]] = {}
        for group in groups:
            echoes, completion = self._request([texts[i] for i in group], 0, usage)
            for i, echo in zip(group, echoes, strict=True):
                generated = generated_count(echo, completion if len(group) == 1 else None)
                if generated is None and len(group) > 1:  # ambiguous in a list: ask alone
                    (echo,), completion = self._request([texts[i]], 0, usage)
                    generated = generated_count(echo, completion)
                if generated is None:
                    raise LLMError("cannot tell how many tokens the server generated")
                scored[i] = self._candidate_logprob(echo, generated, candidates[i])
        logprobs = tuple(scored[i][0] for i in range(len(texts)))
        counts = tuple(scored[i][1] for i in range(len(texts)))
        rendered = max((usage.prompt_tokens - sum(counts)) // len(texts), 0)
        return ScoreResult(
            logprobs, counts, rendered, usage.prompt_tokens, 0.0, time.perf_counter() - start,
            calls=usage.requests, completion_tokens=usage.completion_tokens,
            input_tokens=usage.prompt_tokens,
        )  # fmt: skip

    def _text(self, prompt: Prompt, candidate: str) -> str:
        cfg = self.config
        end = cfg.end_of_turn if cfg.score_end_token else ""
        return f"{self.render(prompt)} {candidate}{end}"

    def _request(
        self, texts: list[str], top: int, usage: Usage | None = None, retry: bool = True
    ) -> tuple[list[Echo], int | None]:
        """Echo ``texts`` (a list prompt when more than one): one :class:`Echo` per text, and
        the generated token count the response reports (``None`` without usage)."""
        response = self.client.completion(
            prompt=texts if len(texts) > 1 else texts[0],
            echo=True, logprobs=top, max_tokens=1, temperature=0.0, retry=retry,
        )  # fmt: skip
        if usage is not None:
            usage.add(response)
        choices = as_list(field(response, "choices"))
        if choices is None or len(choices) != len(texts):
            found = excerpt(choices if choices is not None else field(response, "choices"))
            raise LLMError(f"expected {len(texts)} completion choice(s), got {found}")
        completion = as_count(field(field(response, "usage"), "completion_tokens"))
        return [parse_echo(c) for c in _in_prompt_order(choices)], completion

    def _accepts_lists(self, texts: list[str]) -> bool:
        """Whether the server answers a list prompt (llama-cpp-python's does not)."""
        try:
            self._request(texts, 0, retry=False)
        except LLMError as exc:
            logger.info("list prompts refused (%s): one request per candidate", exc)
            return False
        return True

    def _candidate_logprob(self, echo: Echo, generated: int, candidate: str) -> tuple[float, int]:
        """``(summed log-prob, entry count)`` of the candidate's entries (marker included)."""
        cfg = self.config
        marker = cfg.end_of_turn if cfg.score_end_token else None
        span = locate_candidate(echo.tokens, generated, " " + candidate, marker)
        stop = span.stop + (1 if marker is not None else 0)
        values = echo.logprobs[span.start : stop]
        if any(v is None for v in values):
            raise LLMError(f"the server gave no log-prob for a token of candidate {candidate!r}")
        return float(sum(v for v in values if v is not None)), len(values)


def _in_prompt_order(choices: list[Any]) -> list[Any]:
    """The choices of a list prompt ordered by their ``index`` (0 to n - 1, each once).

    Raises:
        LLMError: when several choices do not carry exactly the indices 0 to n - 1.
    """
    if len(choices) == 1:
        return choices
    indices = [as_count(field(choice, "index")) for choice in choices]
    if sorted(-1 if i is None else i for i in indices) != list(range(len(choices))):
        raise LLMError(f"the completion choices' indices are not 0 to {len(choices) - 1}")
    by_index = dict(zip(indices, choices, strict=True))
    return [by_index[index] for index in range(len(choices))]
