"""Labelled mode: candidates listed as A, B, C... in a chat request; each scored by its label.

One request shows the options with letters and asks for the letter of the best one, with
``max_tokens=1``, ``logprobs=True`` and ``top_logprobs`` alternatives. A label's log-prob is read
from the alternatives (:func:`label_logprobs`): tokens that are the label once spaces and light
punctuation are stripped (``"A"``, ``" A"``, ``"A."``) add up; a label missing from them gets the
lowest listed log-prob minus ``missing_label_margin`` (it is less likely than every listed token).

Small models favour a position whatever it holds, so the options are shown in ``permutations``
orders (:func:`option_orders`) and each option's raw label log-prob is averaged over them; the
result is normalised over the candidates. More than ``max_labels`` candidates are split into
balanced chunks, one request each; raw label log-probs (not normalised per request) keep the
chunks comparable. The cost is ``permutations x chunks`` requests a decision.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
import time
from collections.abc import Sequence
from typing import Any

from jitrl.llm.base import LLMError, Prompt, ScoreResult
from jitrl.llm.openai.client import ApiClient, Usage
from jitrl.llm.openai.config import OpenAIConfig
from jitrl.llm.openai.response import (
    MIN_LOGPROB,
    as_list,
    as_number,
    field,
    first_choice,
)

LABELS = string.ascii_uppercase
LABEL_PUNCTUATION = " \t\r\n.:)(]['\"*"
"""Stripped from a generated token before comparing it with a label."""
LABELLED_INSTRUCTION = "Reply with the letter of the best option only."
OPTIONS_HEADER = "Options:"
Messages = list[dict[str, str]]


def labelled_user(prompt: Prompt, options: Sequence[str], instruction: str) -> str:
    """The user message: the prompt's user part, the lettered options, the instruction."""
    lines = [f"{LABELS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join([prompt.user, "", OPTIONS_HEADER, *lines, "", instruction])


def labelled_messages(
    prompt: Prompt, options: Sequence[str], instruction: str = LABELLED_INSTRUCTION
) -> Messages:
    """Chat messages of one labelled (or verbal) request."""
    return [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": labelled_user(prompt, options, instruction)},
    ]


def option_orders(
    candidates: Sequence[str], permutations: int, seed: int | None
) -> list[list[int]]:
    """``min(permutations, n)`` orders of the candidate indices: evenly spaced rotations of a
    shuffle seeded by ``seed`` and the candidates (the identity when ``seed`` is None)."""
    n = len(candidates)
    base = list(range(n))
    if seed is not None:
        digest = hashlib.sha256("\x1f".join([str(seed), *candidates]).encode()).digest()
        random.Random(digest).shuffle(base)
    count = min(permutations, n)
    return [base[k * n // count :] + base[: k * n // count] for k in range(count)]


def chunked(order: Sequence[int], max_size: int) -> list[list[int]]:
    """``order`` split into the fewest chunks of at most ``max_size``, sizes differing by <= 1."""
    count = math.ceil(len(order) / max_size)
    bounds = [len(order) * k // count for k in range(count + 1)]
    return [list(order[bounds[k] : bounds[k + 1]]) for k in range(count)]


def normalise_label(token: str) -> str:
    """A generated token as a label candidate: spaces and light punctuation stripped."""
    return token.strip(LABEL_PUNCTUATION)


def logsumexp(values: Sequence[float]) -> float:
    """``log(sum(exp(values)))``, stable; ``-inf`` for no values."""
    if not values:
        return -math.inf
    top = max(values)
    if math.isinf(top):
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def log_normalise(values: Sequence[float]) -> tuple[float, ...]:
    """``values - logsumexp(values)``: log-probs of a distribution."""
    total = logsumexp(values)
    return tuple(v - total for v in values)


def label_logprobs(
    alternatives: Sequence[tuple[str, float]], labels: Sequence[str], margin: float
) -> list[float]:
    """Log-prob of each label as the generated token, read from ``(token, logprob)`` pairs.

    Non-finite log-probs are ignored; the others are clamped into ``[MIN_LOGPROB, 0]``.

    Raises:
        ValueError: when no alternative has a finite log-prob (nothing to read a floor from).
    """
    by_label: dict[str, list[float]] = {}
    floor = math.inf
    for token, logprob in alternatives:
        if math.isfinite(logprob):
            value = min(0.0, max(MIN_LOGPROB, logprob))
            by_label.setdefault(normalise_label(token), []).append(value)
            floor = min(floor, value)
    if not by_label:
        raise ValueError("no finite log-probs among the alternatives")
    return [logsumexp(by_label[label]) if label in by_label else floor - margin for label in labels]


def parse_alternatives(response: Any) -> list[tuple[str, float]]:
    """``(token, logprob)`` pairs for the first generated token of a chat response: its
    ``top_logprobs``, plus the generated token itself when they do not list it.

    Raises:
        LLMError: when the response has no such log-probs (whatever its shape).
    """
    content = as_list(field(field(first_choice(response, "chat"), "logprobs"), "content"))
    if not content:
        raise LLMError("the chat response has no log-probs (logprobs/top_logprobs unsupported?)")
    first = content[0]
    top = as_list(field(first, "top_logprobs")) or []
    valid = [pair for pair in map(_pair, top) if pair is not None]
    if not valid:
        raise LLMError("the chat response lists no top_logprobs for the generated token")
    chosen = _pair(first)
    if chosen is not None and chosen not in valid:
        valid.append(chosen)
    return valid


def _pair(entry: Any) -> tuple[str, float] | None:
    """``(token, logprob)`` of a log-prob entry, or None when either is missing or the log-prob
    is not finite."""
    token, logprob = field(entry, "token"), as_number(field(entry, "logprob"))
    if isinstance(token, str) and logprob is not None and math.isfinite(logprob):
        return token, logprob
    return None


class LabelledScorer:
    """Scores candidates by the log-prob of their label, debiased over several orders."""

    def __init__(self, client: ApiClient, config: OpenAIConfig) -> None:
        self.client = client
        self.config = config
        self.last_calls: list[tuple[list[int], list[float]]] = []
        """The last :meth:`score`'s requests: candidate indices shown and their label log-probs."""

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Label log-probs averaged over the orders, normalised over the candidates."""
        if not candidates:
            raise ValueError("score() needs at least one candidate")
        start, usage, cfg = time.perf_counter(), Usage(), self.config
        self.last_calls = []
        orders = option_orders(candidates, cfg.permutations, cfg.shuffle_seed)
        sums = [0.0] * len(candidates)
        for order in orders if len(candidates) > 1 else []:
            for chunk in chunked(order, cfg.max_labels):
                values = self.request(prompt, [candidates[i] for i in chunk], usage)
                self.last_calls.append((chunk, values))
                for i, value in zip(chunk, values, strict=True):
                    sums[i] += value
        mean = [total / len(orders) for total in sums]
        per_request = usage.prompt_tokens // max(usage.requests, 1)
        return ScoreResult(
            log_normalise(mean), (1,) * len(candidates), per_request, usage.prompt_tokens,
            0.0, time.perf_counter() - start, calls=usage.requests,
            completion_tokens=usage.completion_tokens, input_tokens=usage.prompt_tokens,
        )  # fmt: skip

    def request(
        self, prompt: Prompt, options: Sequence[str], usage: Usage | None = None
    ) -> list[float]:
        """One request: the raw log-prob of each option's label as the generated token."""
        cfg = self.config
        response = self.client.chat(
            messages=labelled_messages(prompt, options),
            max_tokens=1, logprobs=True, top_logprobs=cfg.top_logprobs, temperature=0.0,
        )  # fmt: skip
        if usage is not None:
            usage.add(response)
        try:
            return label_logprobs(
                parse_alternatives(response), LABELS[: len(options)], cfg.missing_label_margin
            )
        except ValueError as exc:
            raise LLMError(f"labelled mode: {exc}") from exc
