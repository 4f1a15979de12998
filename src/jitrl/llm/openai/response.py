"""Defensive reading of what an OpenAI-compatible server answers.

The SDK builds its response objects without validation, so a malformed body comes through as
is: a field may be missing, ``None``, of another JSON type, or the whole body may be a list, a
string or a number. The scorers read responses only through these helpers, which accept the
SDK's objects and plain JSON (dicts), never raise on an unexpected shape, and say what they
found in a single line when it cannot be used (:func:`excerpt`). Log-probs are clamped into
``[MIN_LOGPROB, 0]``: a probability cannot exceed 1, and a log-prob of ``-inf`` (or one far
below what a float32 softmax can give) becomes a very unlikely but finite value, so that the
sums and means taken from them stay finite.
"""

from __future__ import annotations

import math
from typing import Any

from jitrl.llm.base import LLMError

MIN_LOGPROB = -1.0e4
"""Lowest log-prob kept (a float32 softmax gives nothing below about -104)."""
EXCERPT_CHARS = 200
_SCALARS = (str, bytes, bool, int, float, list, tuple)


def field(obj: Any, name: str) -> Any:
    """``obj.name`` of an SDK object, ``obj[name]`` of a dict, else None (never a method)."""
    if isinstance(obj, dict):
        return obj.get(name)
    if obj is None or isinstance(obj, _SCALARS):
        return None
    value = getattr(obj, name, None)
    return None if callable(value) else value


def as_list(value: Any) -> list[Any] | None:
    """``value`` when it is a list (a JSON array), else None."""
    return value if isinstance(value, list) else None


def as_count(value: Any) -> int | None:
    """A token count: a non-negative int (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def as_number(value: Any) -> float | None:
    """A real number that is not NaN (infinities kept), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf if value > 0 else -math.inf
    return None if math.isnan(number) else number


def as_logprob(value: Any) -> float | None:
    """A log-prob clamped into ``[MIN_LOGPROB, 0]``; None for non-numbers, NaN and ``+inf``."""
    number = as_number(value)
    if number is None or number == math.inf:
        return None
    return min(0.0, max(MIN_LOGPROB, number))


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, on one line."""
    text = " ".join(repr(value)[: limit * 2].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace runs collapsed to single spaces, cut to ``limit``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def first_choice(response: Any, what: str) -> Any:
    """The first of the response's ``choices``.

    Raises:
        LLMError: when ``choices`` is missing, not a list or empty.
    """
    choices = as_list(field(response, "choices"))
    if not choices:
        found = excerpt(field(response, "choices") if choices is None else choices)
        raise LLMError(f"the {what} response has no choices (found {found})")
    return choices[0]


def message_content(response: Any) -> str | None:
    """The text of a chat response's first message; None when the model gave none.

    Raises:
        LLMError: when the response has no choices, or the content is neither text nor null.
    """
    content = field(field(first_choice(response, "chat"), "message"), "content")
    if content is None or isinstance(content, str):
        return content
    raise LLMError(f"the chat response's message content is not text: {excerpt(content)}")
