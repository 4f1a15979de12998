"""Requests to an OpenAI-compatible server, with bounded retries and clear errors.

The official SDK's own retries are switched off (``max_retries=0``) so that the policy is ours
and visible: a request is retried after HTTP 429, HTTP 5xx, a timeout or a connection error,
waiting ``min(backoff_cap, backoff_base * 2**k)`` seconds before retry ``k`` (or the server's
``Retry-After``, capped the same way). Any other failure (HTTP 4xx, a body that is not the JSON
expected) is not retried. Whatever fails in the end is raised as :class:`~jitrl.llm.base.LLMError`
with the status, the number of attempts and the server's message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from jitrl.llm.base import LLMError
from jitrl.llm.openai.config import OpenAIConfig

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'jitrl[openai]'"
RETRY_STATUSES = frozenset({408, 409, 429})
"""HTTP statuses retried besides every 5xx (request timeout, conflict, rate limit)."""
SERVER_ERROR = 500
BODY_EXCERPT_CHARS = 300


def import_openai() -> ModuleType:
    """Import the ``openai`` SDK, or say how to install it."""
    try:
        import openai
    except ImportError as exc:
        raise ImportError(
            f"the OpenAI-compatible backend needs the openai SDK: {INSTALL_HINT}"
        ) from exc
    return openai


@dataclass
class Usage:
    """Cost counted over requests: requests made, input and generated tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, response: Any) -> None:
        """Count one successful response (its ``usage`` may be missing: counted as 0)."""
        self.requests += 1
        usage = getattr(response, "usage", None)
        self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)


class ApiClient:
    """The SDK client and the retry loop around its ``completions`` and ``chat`` calls.

    ``sdk_client`` replaces the ``openai.OpenAI`` client and ``sleep`` replaces ``time.sleep``
    (tests use both).
    """

    def __init__(
        self,
        config: OpenAIConfig,
        sdk_client: Any = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self._openai = import_openai()
        self._client = sdk_client or self._openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout,
            max_retries=0,
        )
        self._sleep = sleep or time.sleep
        self.waits: list[float] = []
        """Every backoff wait so far, in seconds (for tests and diagnostics)."""

    def completion(self, *, retry: bool = True, **kwargs: Any) -> Any:
        """``POST /completions`` (legacy text completions) with ``kwargs``."""
        return self._request("completions", self._client.completions.create, retry, kwargs)

    def chat(self, *, retry: bool = True, **kwargs: Any) -> Any:
        """``POST /chat/completions`` with ``kwargs``."""
        return self._request(
            "chat/completions", self._client.chat.completions.create, retry, kwargs
        )

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        self._client.close()

    def backoff(self, retry_index: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_index`` (0-based), capped at ``backoff_cap``."""
        cfg = self.config
        wanted = retry_after if retry_after is not None else cfg.backoff_base * 2**retry_index
        return max(0.0, min(cfg.backoff_cap, wanted))

    def _request(self, what: str, create: Callable[..., Any], retry: bool, kwargs: Any) -> Any:
        """Call ``create(model=..., **kwargs)``; retry what is transient; LLMError at the end."""
        attempts = 1 + (self.config.max_retries if retry else 0)
        for attempt in range(1, attempts + 1):
            try:
                response = create(model=self.config.model, **kwargs)
            except json.JSONDecodeError as exc:  # the SDK lets a body that is not JSON through
                message = f"{what} answered with a body that is not JSON: {exc}"
                raise LLMError(message, attempts=attempt) from exc
            except self._openai.OpenAIError as exc:
                status, retryable = self._classify(exc)
                message = _describe(what, exc, status, attempt)
                if not retryable or attempt == attempts:
                    raise LLMError(
                        message, status=status, attempts=attempt, transient=retryable
                    ) from exc
                wait = self.backoff(attempt - 1, _retry_after(exc))
                logger.warning("%s; retrying in %.2f s", message, wait)
                self.waits.append(wait)
                self._sleep(wait)
            else:
                if isinstance(response, str | bytes):  # a 200 with some other content type
                    raise LLMError(f"{what} answered with text, not JSON: {response[:200]!r}")
                return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _classify(self, exc: Exception) -> tuple[int | None, bool]:
        """``(HTTP status or None, whether to retry)`` for an SDK exception."""
        sdk = self._openai
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            return status, status >= SERVER_ERROR or status in RETRY_STATUSES
        if isinstance(exc, sdk.APIConnectionError):  # includes APITimeoutError
            return None, True
        return None, False  # e.g. APIResponseValidationError: a body that is not what we expect


def _describe(what: str, exc: Exception, status: int | None, attempt: int) -> str:
    """One line: endpoint, status or failure type, attempts and the server's message."""
    kind = f"HTTP {status}" if status is not None else type(exc).__name__
    body = getattr(exc, "body", None)
    detail = str(body if body is not None else exc)[:BODY_EXCERPT_CHARS]
    hint = ""
    if status == SERVER_ERROR:
        hint = (
            " (llama-cpp-python's server answers 500 to log-prob requests without "
            "--logits_all true, and to list prompts in any case)"
        )
    return f"{what} failed with {kind} after {attempt} attempt(s): {detail}{hint}"


def _retry_after(exc: Exception) -> float | None:
    """The ``Retry-After`` header of a failed response, in seconds, if it gives a number."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
