"""Verbalised mode (last resort): the model writes a confidence for each lettered option.

For servers that give no log-probs at all. The options are listed as in labelled mode and the
model is asked for a JSON object ``{"A": 0.7, "B": 0.2, ...}``. :func:`parse_confidences` is
tolerant: the first JSON object with label keys anywhere in the text (code fences, prose around
it), else ``A: 0.7``-style pairs; keys like ``"a"``, ``"Option A"`` or ``"A. north"`` count, and
numbers may be strings or percentages. Negative or non-finite values are dropped.
:func:`confidences_to_logprobs` turns them into log-probs of a distribution: a label without a
positive confidence gets half the smallest positive one. When the answer has nothing usable (or
the model wrote no text), the options get a uniform distribution and a warning is logged; a
response without choices, or whose content is not text, raises
:class:`~jitrl.llm.base.LLMError`. More than ``max_labels`` candidates go in balanced chunks,
each normalised and weighted by its share of the candidates.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from jitrl.llm.base import Prompt, ScoreResult
from jitrl.llm.openai.client import ApiClient, Usage
from jitrl.llm.openai.config import OpenAIConfig
from jitrl.llm.openai.labelled import LABELS, chunked, labelled_messages, log_normalise
from jitrl.llm.openai.response import as_number, excerpt, message_content

logger = logging.getLogger(__name__)

VERBAL_INSTRUCTION = (
    "Rate how good each option is as the answer. Reply with only a JSON object that maps each "
    'option letter to a confidence between 0 and 1, for example {"A": 0.7, "B": 0.2, "C": 0.1}.'
)
MISSING_SHARE = 0.5
"""A label without a positive confidence gets this fraction of the smallest positive one."""
MAX_ANSWER_CHARS = 20_000
"""Characters of an answer searched for confidences (``verbal_max_tokens`` yields far fewer)."""
_KEY = re.compile(r"^\W*(?:option\s+)?([A-Za-z])(?:\W.*)?$", re.IGNORECASE | re.DOTALL)
_PAIR = re.compile(
    r"""(?<![A-Za-z0-9])["']?(?:option\s+)?([A-Za-z])["']?\s*[:=]\s*["']?"""
    r"""(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)\s*(%?)""",
    re.IGNORECASE,
)


def _label_of(key: str, labels: Sequence[str]) -> str | None:
    """The label a JSON key or a pair's name refers to (``"a"``, ``"Option A"``, ``"A. x"``)."""
    match = _KEY.match(key.strip())
    label = match.group(1).upper() if match else None
    return label if label in labels else None


def _number(value: Any) -> float | None:
    """A confidence: a number, or a numeric string (``"0.7"``, ``"70%"``); None otherwise."""
    if isinstance(value, str):
        text = value.strip()
        scale = 0.01 if text.endswith("%") else 1.0
        try:
            value = float(text.rstrip("%").strip()) * scale
        except ValueError:
            return None
    number = as_number(value)  # None for bools, NaN and non-numbers
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def _from_json(text: str, labels: Sequence[str]) -> dict[str, float]:
    """Label confidences of the first JSON object in ``text`` that has any."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):  # not JSON there, or nested too deep
            continue
        if not isinstance(obj, dict):
            continue
        found: dict[str, float] = {}
        for key, value in obj.items():
            label, number = _label_of(str(key), labels), _number(value)
            if label is not None and number is not None:
                found.setdefault(label, number)
        if found:
            return found
    return {}


def parse_confidences(text: str, labels: Sequence[str]) -> dict[str, float]:
    """Confidence per label found in a model's answer (finite, >= 0; labels only; may be empty)."""
    found = _from_json(text, labels)
    if found:
        return found
    for match in _PAIR.finditer(text):
        label = _label_of(match.group(1), labels)
        number = _number(match.group(2) + match.group(3))
        if label is not None and number is not None:
            found.setdefault(label, number)
    return found


def confidences_to_logprobs(
    confidences: dict[str, float], labels: Sequence[str]
) -> tuple[float, ...] | None:
    """Log-probs over ``labels`` from confidences; None when no confidence is positive."""
    logs = {
        label: math.log(v)
        for label, v in confidences.items()
        if label in labels and 0 < v < math.inf
    }
    if not logs:
        return None
    floor = min(logs.values()) + math.log(MISSING_SHARE)  # in logs: no underflow to log(0)
    return log_normalise([logs.get(label, floor) for label in labels])


class VerbalScorer:
    """Scores candidates from the confidences the model writes down."""

    def __init__(self, client: ApiClient, config: OpenAIConfig) -> None:
        self.client = client
        self.config = config

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """One request per chunk of candidates; uniform (with a warning) where parsing fails."""
        if not candidates:
            raise ValueError("score() needs at least one candidate")
        start, usage, n = time.perf_counter(), Usage(), len(candidates)
        logprobs = [-math.log(n)] * n
        for chunk in chunked(range(n), self.config.max_labels) if n > 1 else []:
            values = self.request(prompt, [candidates[i] for i in chunk], usage)
            weight = math.log(len(chunk) / n)
            for i, value in zip(chunk, values, strict=True):
                logprobs[i] = value + weight
        per_request = usage.prompt_tokens // max(usage.requests, 1)
        return ScoreResult(
            log_normalise(logprobs), (1,) * n, per_request, usage.prompt_tokens,
            0.0, time.perf_counter() - start, calls=usage.requests,
            completion_tokens=usage.completion_tokens, input_tokens=usage.prompt_tokens,
        )  # fmt: skip

    def request(
        self, prompt: Prompt, options: Sequence[str], usage: Usage | None = None
    ) -> tuple[float, ...]:
        """One request: log-probs over ``options`` (uniform when the answer is unusable)."""
        response = self.client.chat(
            messages=labelled_messages(prompt, options, VERBAL_INSTRUCTION),
            max_tokens=self.config.verbal_max_tokens, temperature=0.0,
        )  # fmt: skip
        if usage is not None:
            usage.add(response)
        text = message_content(response)
        labels = LABELS[: len(options)]
        answer = (text or "")[:MAX_ANSWER_CHARS]
        result = confidences_to_logprobs(parse_confidences(answer, labels), labels)
        if result is None:
            logger.warning("verbal mode: no usable confidences in %s; uniform", excerpt(text))
            return (-math.log(len(options)),) * len(options)
        return result
