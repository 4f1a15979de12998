"""Settings of the OpenAI-compatible backend, and the ``MODEL[@URL][?key=value&...]`` parser.

Every knob is a documented field of :class:`OpenAIConfig`; :meth:`OpenAIConfig.from_spec` builds
one from the short spec string that :func:`jitrl.llm.load_model` receives after ``"openai:"``.
Without ``@URL`` the SDK chooses the endpoint: ``$OPENAI_BASE_URL``, else OpenAI's API.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import unquote_plus

Mode = Literal["auto", "exact", "labelled", "verbal"]
"""How candidates are scored: see :class:`OpenAIConfig.mode`."""
MODES: tuple[str, ...] = get_args(Mode)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DUMMY_API_KEY = "sk-no-key-required"
"""Sent when the key's environment variable is unset: local servers ignore the key."""
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 2
CHATML_SYSTEM_TEMPLATE = "<|im_start|>system\n{system}<|im_end|>\n"
CHATML_TURN_TEMPLATE = "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{answer_prefix}"
CHATML_END_OF_TURN = "<|im_end|>"
MAX_LABELS = 26
"""Labels are the letters ``A``-``Z``: at most this many options in one request."""


@dataclass(frozen=True)
class OpenAIConfig:
    """Settings of :class:`~jitrl.llm.openai.OpenAIModel`."""

    model: str
    """Model name sent with every request (``/v1/models`` lists what a server serves)."""
    base_url: str | None = None
    """Root of the API, ending in ``/v1`` (e.g. ``http://127.0.0.1:8000/v1``); ``None`` leaves
    it to the SDK: ``$OPENAI_BASE_URL`` when set, else ``https://api.openai.com/v1``."""
    api_key_env: str = DEFAULT_API_KEY_ENV
    """Environment variable holding the API key; unset: a dummy key (fine for local servers)."""
    mode: Mode = "auto"
    """``exact``: prompt log-probs of each candidate through ``/v1/completions`` with ``echo``
    (refused at connect time when the server cannot give aligned ones); ``labelled``: the
    candidates listed as A, B, C... in a chat request, scored by the log-prob of each label as
    the one generated token; ``verbal``: the model writes a JSON object of confidences (last
    resort, for servers without log-probs); ``auto``: the first of exact, labelled, verbal that
    the server supports, chosen at connect time (the reasons are logged)."""
    timeout: float = DEFAULT_TIMEOUT_S
    """Seconds one attempt of a request may wait: the SDK client's ``timeout``, which bounds
    connecting and every wait for the server (a server that stops answering is given up after
    this long). A request costs at most ``timeout * (1 + max_retries)`` plus the SDK's waits
    between attempts."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """The SDK client's ``max_retries``: retries of a request after a timeout, a lost
    connection, HTTP 408, 409, 429 or 5xx (with the SDK's backoff and ``Retry-After``)."""
    permutations: int = 4
    """Labelled mode: orders in which the options are shown; each option's log-prob is averaged
    over them. Small models give the first label a large share whatever it labels (SmolLM2:
    35-42% on "A"); the orders are rotations of a seeded shuffle, so with ``permutations`` equal
    to the number of options every option takes every label once. 4 costs 4 requests a decision
    and already spreads each option over 4 positions; 1 disables the debiasing."""
    shuffle_seed: int | None = 0
    """Seed of the shuffle that the labelled orders rotate (mixed with the candidates, so a
    decision always gets the same orders); ``None`` keeps the candidates' own order first."""
    max_labels: int = 20
    """Options shown in one labelled or verbal request; more candidates are split over several
    requests (20 matches the most ``top_logprobs`` an OpenAI API returns)."""
    top_logprobs: int = 20
    """Labelled mode: alternatives requested for the generated token (OpenAI allows 0-20)."""
    missing_label_margin: float = 1.0
    """Labelled mode: a label absent from the returned alternatives is less likely than each of
    them; it gets the lowest returned log-prob minus this margin (nats)."""
    verbal_max_tokens: int = 200
    """Verbal mode: tokens allowed for the JSON answer."""
    score_end_token: bool = True
    """Exact mode: append ``end_of_turn`` to each candidate, so that a score is that of a
    complete answer (as :class:`~jitrl.llm.llamacpp.LlamaCppModel` does by default)."""
    system_template: str = CHATML_SYSTEM_TEMPLATE
    """Exact mode: text rendering of the system part; must contain ``{system}``."""
    turn_template: str = CHATML_TURN_TEMPLATE
    """Exact mode: rendering of the variable part; must contain ``{user}`` and end with
    ``{answer_prefix}``. The completions endpoint applies no chat template: the prompt is sent
    as rendered here, and must be the model's own template for the scores to mean anything."""
    end_of_turn: str = CHATML_END_OF_TURN
    """Exact mode: end-of-turn marker of the template (one special token of the model)."""

    def __post_init__(self) -> None:
        url = self.base_url
        problems = [
            (not self.model.strip(), "model is empty"),
            (url is not None and not url.startswith(("http://", "https://")), BAD_URL),
            (not self.api_key_env.strip(), "api_key_env is empty"),
            (self.mode not in MODES, f"mode must be one of {', '.join(MODES)}"),
            (not (math.isfinite(self.timeout) and self.timeout > 0), "timeout must be > 0"),
            (self.max_retries < 0, "max_retries must be >= 0"),
            (self.permutations < 1, "permutations must be >= 1"),
            (not 2 <= self.max_labels <= MAX_LABELS, f"max_labels must be in [2, {MAX_LABELS}]"),
            (not 1 <= self.top_logprobs <= 20, "top_logprobs must be in [1, 20]"),
            (self.missing_label_margin < 0, "missing_label_margin must be >= 0"),
            (self.verbal_max_tokens < 1, "verbal_max_tokens must be >= 1"),
            ("{system}" not in self.system_template, "system_template lacks '{system}'"),
            ("{user}" not in self.turn_template, "turn_template lacks '{user}'"),
            (not self.turn_template.endswith("{answer_prefix}"), "bad turn_template end"),
        ]
        if errors := [message for failed, message in problems if failed]:
            raise ValueError("invalid OpenAIConfig: " + "; ".join(errors))

    @property
    def api_key(self) -> str:
        """The key from ``api_key_env``, or a dummy one when that variable is unset or empty."""
        return os.environ.get(self.api_key_env) or DUMMY_API_KEY

    @classmethod
    def from_spec(cls, spec: str) -> OpenAIConfig:
        """Parse ``MODEL[@URL][?key=value&...]`` (query keys: :data:`SPEC_OPTIONS`).

        Examples: ``gpt-4o-mini`` (the SDK's endpoint: ``$OPENAI_BASE_URL``, else OpenAI's),
        ``smollm2@http://127.0.0.1:8000/v1``, ``smollm2@http://127.0.0.1:8000/v1?mode=labelled``,
        ``gpt-4o-mini?mode=labelled&permutations=2&timeout=30&max_retries=1``.

        Raises:
            ValueError: one line, for a missing model, an empty URL after ``@``, an unknown or
                repeated option, or a value outside what the option allows (both named).
        """
        head, _, query = spec.strip().partition("?")
        model, at, url = head.partition("@")
        if not model.strip():
            raise ValueError(f"the model name is empty; expected {SPEC_FORM}")
        if at and not url.strip():
            raise ValueError(f"the URL after '@' is empty; expected {SPEC_FORM}")
        options: dict[str, Any] = {}
        for key, value in _query_pairs(query):
            if key in options:
                raise ValueError(f"option {key!r} is given twice in the openai spec")
            options[key] = _option_value(key, value)
        return cls(model=model.strip(), base_url=url.strip().rstrip("/") or None, **options)


@dataclass(frozen=True)
class SpecOption:
    """How a spec option's text becomes a value: ``parse`` it, check it is ``valid``;
    ``allowed`` says what is accepted (for error messages)."""

    parse: Callable[[str], Any]
    valid: Callable[[Any], bool]
    allowed: str


SPEC_FORM = "openai:MODEL[@URL][?key=value&...]"
BAD_URL = "base_url must be an http:// or https:// URL (openai:MODEL@http://HOST:PORT/v1)"
SPEC_OPTIONS: dict[str, SpecOption] = {
    "mode": SpecOption(str, lambda v: v in MODES, "one of " + ", ".join(MODES)),
    "permutations": SpecOption(int, lambda v: v >= 1, "an integer >= 1"),
    "max_labels": SpecOption(
        int, lambda v: 2 <= v <= MAX_LABELS, f"an integer from 2 to {MAX_LABELS}"
    ),
    "timeout": SpecOption(
        float, lambda v: math.isfinite(v) and v > 0, "a number of seconds > 0 (e.g. 60)"
    ),
    "max_retries": SpecOption(int, lambda v: v >= 0, "an integer >= 0"),
    "api_key_env": SpecOption(
        str, lambda v: bool(v.strip()), "the name of an environment variable"
    ),
}
"""Keys accepted in the query part of a spec (``openai:MODEL@URL?mode=labelled``)."""


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``key=value`` pairs of a spec's query; ValueError (one line) for a malformed one."""
    pairs = []
    for part in query.split("&") if query else []:
        key, eq, value = part.partition("=")
        if not (key and eq):
            raise ValueError(
                f"malformed option {part!r} in the openai spec; expected key=value with key one "
                f"of {', '.join(SPEC_OPTIONS)}"
            )
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def _option_value(key: str, text: str) -> Any:
    """The value of spec option ``key`` given as ``text``; ValueError naming what is allowed."""
    option = SPEC_OPTIONS.get(key)
    if option is None:
        raise ValueError(
            f"unknown option {key!r} in the openai spec; known options: {', '.join(SPEC_OPTIONS)}"
        )
    try:
        value = option.parse(text)
        valid = option.valid(value)
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"bad value {text!r} for option {key!r}: {key} must be {option.allowed}")
    return value
