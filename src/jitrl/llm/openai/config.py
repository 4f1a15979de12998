"""Settings of the OpenAI-compatible backend, and the ``MODEL@URL?key=value`` spec parser.

Every knob is a documented field of :class:`OpenAIConfig`; :meth:`OpenAIConfig.from_spec` builds
one from the short spec string that :func:`jitrl.llm.load_model` receives after ``"openai:"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

Mode = Literal["auto", "exact", "labelled", "verbal"]
"""How candidates are scored: see :class:`OpenAIConfig.mode`."""
MODES: tuple[str, ...] = get_args(Mode)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DUMMY_API_KEY = "sk-no-key-required"
"""Sent when the key's environment variable is unset: local servers ignore the key."""
CHATML_SYSTEM_TEMPLATE = "<|im_start|>system\n{system}<|im_end|>\n"
CHATML_TURN_TEMPLATE = "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{answer_prefix}"
CHATML_END_OF_TURN = "<|im_end|>"
MAX_LABELS = 26
"""Labels are the letters ``A``-``Z``: at most this many options in one request."""
SPEC_OPTIONS = ("mode", "permutations", "max_labels", "timeout", "max_retries", "api_key_env")
"""Keys accepted in the query part of a spec (``openai:MODEL@URL?mode=labelled``)."""


@dataclass(frozen=True)
class OpenAIConfig:
    """Settings of :class:`~jitrl.llm.openai.OpenAIModel`."""

    model: str
    """Model name sent with every request (``/v1/models`` lists what a server serves)."""
    base_url: str = "https://api.openai.com/v1"
    """Root of the API, ending in ``/v1`` (e.g. ``http://127.0.0.1:8000/v1``)."""
    api_key_env: str = DEFAULT_API_KEY_ENV
    """Environment variable holding the API key; unset: a dummy key (fine for local servers)."""
    mode: Mode = "auto"
    """``exact``: prompt log-probs of each candidate through ``/v1/completions`` with ``echo``
    (refused at connect time when the server cannot give aligned ones); ``labelled``: the
    candidates listed as A, B, C... in a chat request, scored by the log-prob of each label as
    the one generated token; ``verbal``: the model writes a JSON object of confidences (last
    resort, for servers without log-probs); ``auto``: the first of exact, labelled, verbal that
    the server supports, chosen at connect time (the reasons are logged)."""
    timeout: float = 60.0
    """Seconds allowed for one request (connect, send, wait, read)."""
    max_retries: int = 3
    """Retries of a request after HTTP 429, HTTP 5xx, a timeout or a connection error."""
    backoff_base: float = 0.5
    """Seconds before the first retry; doubled at each further retry."""
    backoff_cap: float = 8.0
    """Longest wait between two attempts, in seconds (also caps a server's ``Retry-After``)."""
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
        problems = [
            (not self.model.strip(), "model is empty"),
            (not self.base_url.startswith(("http://", "https://")), "base_url must be http(s)"),
            (not self.api_key_env.strip(), "api_key_env is empty"),
            (self.mode not in MODES, f"mode must be one of {', '.join(MODES)}"),
            (self.timeout <= 0, "timeout must be > 0"),
            (self.max_retries < 0, "max_retries must be >= 0"),
            (self.backoff_base < 0 or self.backoff_cap < 0, "backoff times must be >= 0"),
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
        """Parse ``MODEL@URL`` with an optional ``?key=value&...`` query (keys: SPEC_OPTIONS).

        Examples: ``smollm2@http://127.0.0.1:8000/v1``,
        ``gpt-4o-mini@https://api.openai.com/v1?mode=labelled&permutations=2``.

        Raises:
            ValueError: for a missing model or URL, an unknown key or a bad value.
        """
        model, at, rest = spec.strip().partition("@")
        url, _, query = rest.partition("?")
        if not (model and at and url):
            raise ValueError(f"expected MODEL@URL[?key=value&...], got {spec!r}")
        options: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
            if key not in SPEC_OPTIONS:
                raise ValueError(f"unknown option {key!r} in {spec!r}; known: {SPEC_OPTIONS}")
            options[key] = _convert(value, str(types[key]), key)
        return cls(model=model, base_url=url.rstrip("/"), **options)


def _convert(value: str, type_name: str, key: str) -> Any:
    """A spec option's text as the field's type (``int``, ``float`` or text)."""
    try:
        if type_name == "int":
            return int(value)
        if type_name == "float":
            return float(value)
    except ValueError as exc:
        raise ValueError(f"option {key}={value!r} is not a {type_name}") from exc
    return value
