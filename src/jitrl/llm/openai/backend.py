""":class:`OpenAIModel`: a :class:`~jitrl.llm.base.LanguageModel` on an OpenAI-compatible API.

The mode is settled when the model is built (see :class:`~jitrl.llm.openai.OpenAIConfig.mode`):
``exact`` runs the alignment probe and raises
:class:`~jitrl.llm.openai.exact.ExactModeRefused` when the server fails it; ``auto`` tries exact,
then labelled (one small probe request that must return ``top_logprobs``), then verbal, logging
why each was passed over. A server that cannot be reached at all raises
:class:`~jitrl.llm.base.LLMError` in every mode rather than falling back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from jitrl.llm.base import LLMError, Prompt, ScoreResult
from jitrl.llm.openai.client import ApiClient
from jitrl.llm.openai.config import Mode, OpenAIConfig
from jitrl.llm.openai.exact import ExactScorer, ProbeReport
from jitrl.llm.openai.labelled import LabelledScorer
from jitrl.llm.openai.response import message_content
from jitrl.llm.openai.verbal import VerbalScorer

logger = logging.getLogger(__name__)

LABELLED_PROBE = Prompt(
    system="You answer questions.", user="Which colour is the sky on a clear day?"
)
LABELLED_PROBE_OPTIONS = ("blue", "green")
Scorer = ExactScorer | LabelledScorer | VerbalScorer


class OpenAIModel:
    """Scores candidates through an OpenAI-compatible server in the mode its config asks for.

    Attributes:
        mode: the mode in use (never ``auto`` once built).
        fallbacks: why each mode tried before ``mode`` was passed over (``auto`` only).
        probe: the exact mode's alignment probe report, when it ran and passed.
    """

    def __init__(self, config: OpenAIConfig, *, sdk_client: Any = None) -> None:
        """Connect and settle the mode. ``sdk_client`` replaces the SDK client (for tests)."""
        self.config = config
        self.client = ApiClient(config, sdk_client)
        self.fallbacks: list[str] = []
        self.probe: ProbeReport | None = None
        try:
            self.mode, self._scorer = self._settle()
        except BaseException:
            self.client.close()
            raise
        self.name = f"openai:{config.model}:{self.mode}"
        logger.info("%s at %s", self.name, self.client.base_url)

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Log-probability of each candidate (how it is computed depends on :attr:`mode`)."""
        return self._scorer.score(prompt, candidates)

    def generate(self, prompt: Prompt, max_tokens: int = 32) -> str:
        """A chat completion of the prompt (greedy); a leading answer prefix is removed.

        The answer prefix is asked for in the request, since a chat API cannot be made to start
        its answer with given text. ``max_tokens`` must be >= 1 (0 means "no limit" on some
        servers).
        """
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        user = f"{prompt.user}\n\nStart your answer with {prompt.answer_prefix!r}."
        response = self.client.chat(
            messages=[
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": user},
            ],
            max_tokens=max_tokens,
            temperature=0.0,
        )
        text = message_content(response)
        if text is None:
            raise LLMError("the chat response has no message content")
        text = text.strip()
        if text.startswith(prompt.answer_prefix):
            text = text[len(prompt.answer_prefix) :]
        return text.strip()

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def __enter__(self) -> OpenAIModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _settle(self) -> tuple[Mode, Scorer]:
        """The mode to use and its scorer (probing the server for ``exact`` and ``auto``)."""
        mode = self.config.mode
        if mode == "labelled":
            return mode, LabelledScorer(self.client, self.config)
        if mode == "verbal":
            return mode, VerbalScorer(self.client, self.config)
        exact = ExactScorer(self.client, self.config)
        if mode == "exact":
            self.probe = exact.connect()
            return mode, exact
        try:
            self.probe = exact.connect()
            return "exact", exact
        except LLMError as exc:
            self._fall_back("exact", exc)
        labelled = LabelledScorer(self.client, self.config)
        try:
            labelled.request(LABELLED_PROBE, LABELLED_PROBE_OPTIONS)
            return "labelled", labelled
        except LLMError as exc:
            self._fall_back("labelled", exc)
        return "verbal", VerbalScorer(self.client, self.config)

    def _fall_back(self, mode: str, exc: LLMError) -> None:
        """Record and log why ``mode`` is not used; re-raise when the server is unreachable."""
        if exc.unreachable:
            raise exc
        reason = f"{mode} mode unavailable: {exc}"
        self.fallbacks.append(reason)
        logger.warning("%s; trying the next mode", reason)
