"""Structured answers from plain generation: tolerant parsing.

Small local models are asked for JSON but often wrap it in prose, cut it short or answer with
``Step i: x`` lines instead. :func:`parse_numbers` recovers a list of numbers from such text and
never raises. No backend constrains its decoding to a schema, so none is asked to: the
:class:`~jitrl.llm.base.LanguageModel` protocol's ``generate`` takes a prompt and a token budget.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

log = logging.getLogger(__name__)

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_STEP_LINE = re.compile(
    rf"^[^\w\n]*step[^\w\n]*(\d+)\s*(?::|=|\)|-(?=\s))\s*({_NUMBER})", re.IGNORECASE | re.MULTILINE
)
_MAX_JSON_STARTS = 64
"""Openings (``{`` or ``[``) tried by the tolerant JSON stage before it gives up."""
_MAX_INDEX_DIGITS = 6
_LIST_SEPARATOR = re.compile(r"[,;\s]+")
_LIST_ENDS = "[](){}.\n\t "


def _number(value: Any) -> float | None:
    """A finite float from a JSON number or numeric string; ``None`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        out = float(value)
    except (ValueError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def _numbers(value: Any, key: str, bare: bool) -> list[float] | None:
    """The numbers of ``{key: [...]}`` (or of a bare ``[...]`` when ``bare``)."""
    if isinstance(value, dict):
        value = value.get(key)
    elif not bare:
        return None
    if not isinstance(value, list):
        return None
    numbers = [_number(v) for v in value]
    return None if any(n is None for n in numbers) else [n for n in numbers if n is not None]


def _whole_json(text: str, key: str) -> list[float] | None:
    try:
        return _numbers(json.loads(text), key, bare=True)
    except (ValueError, RecursionError):
        return None


def _first_json(text: str, key: str, bare: bool) -> list[float] | None:
    """Numbers of the first JSON value embedded in ``text`` that holds a usable list."""
    decoder = json.JSONDecoder()
    starts = [i for i, ch in enumerate(text) if ch in "{["][:_MAX_JSON_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        found = _numbers(value, key, bare)
        if found is not None:
            return found
    return None


def step_lines(text: str) -> list[float] | None:
    """Numbers of ``step i: x`` lines, ordered by ``i``; ``None`` unless the indices run from 0
    or 1 without gaps or repeats."""
    by_index: dict[int, float] = {}
    matches = _STEP_LINE.findall(text)
    for index, raw in matches:
        value = _number(raw)
        if value is None or len(index) > _MAX_INDEX_DIGITS:
            return None
        by_index[int(index)] = value
    first = min(by_index, default=0)
    if not by_index or len(by_index) != len(matches) or first > 1:
        return None
    if sorted(by_index) != list(range(first, first + len(by_index))):
        return None
    return [by_index[i] for i in sorted(by_index)]


def bare_list(text: str) -> list[float] | None:
    """Numbers of a text that is only numbers separated by commas, semicolons or spaces
    (optionally in brackets), e.g. ``1, 0.5, -1``; ``None`` for anything else."""
    tokens = [t for t in _LIST_SEPARATOR.split(text.strip(_LIST_ENDS)) if t]
    numbers = [_number(t) for t in tokens]
    if not tokens or any(n is None for n in numbers):
        return None
    return [n for n in numbers if n is not None]


def parse_numbers(text: str, key: str = "scores") -> list[float] | None:
    """A list of finite numbers recovered from generated ``text``; never raises.

    Tried in order: the whole text as JSON (``{key: [...]}`` or ``[...]``); the first embedded
    JSON object with ``key``; ``step i: x`` lines; the first embedded JSON array of numbers; a
    bare list (:func:`bare_list`).
    Returns ``None`` when none of them gives a list (numbers are not clamped or counted here).
    """
    for stage in (
        lambda: _whole_json(text, key),
        lambda: _first_json(text, key, bare=False),
        lambda: step_lines(text),
        lambda: _first_json(text, key, bare=True),
        lambda: bare_list(text),
    ):
        found = stage()
        if found is not None:
            return found
    return None


__all__ = ["bare_list", "parse_numbers", "step_lines"]
