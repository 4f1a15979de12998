"""Requests to an OpenAI-compatible server through the official SDK, with one-line errors.

Endpoint, time bound and retries are the SDK's own, configured once on its ``openai.OpenAI``
client: ``base_url`` (when the config has none, the SDK reads ``$OPENAI_BASE_URL``, else uses
``https://api.openai.com/v1``), ``timeout=config.timeout`` and
``max_retries=config.max_retries``. The SDK retries after a timeout, a lost connection, HTTP 408,
409, 429 or 5xx (unless the server answers ``x-should-retry: false``), pausing about
``0.5 * 2**k`` s before retry ``k`` (at most 8 s, minus up to 25% jitter) or as long as the
server's ``Retry-After`` asks. Its ``timeout`` bounds connecting and every wait for the server,
so a server that hangs costs at most ``timeout * (1 + max_retries)`` seconds a request, plus
those pauses: about 3 minutes with the defaults (60 s, 2 retries).

What fails in the end raises :class:`~jitrl.llm.base.LLMError` with one line: the endpoint's URL
(without credentials, query or API key), the HTTP status or the failure type, the attempts made
(from the SDK's ``x-stainless-retry-count`` request header) and the server's message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jitrl.llm.base import LLMError
from jitrl.llm.openai.config import DUMMY_API_KEY, OpenAIConfig
from jitrl.llm.openai.response import as_count, field, one_line

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'jitrl[openai]'"
RETRY_STATUSES = frozenset({408, 409, 429})
"""HTTP statuses the SDK retries besides every 5xx (request timeout, conflict, rate limit)."""
SERVER_ERROR = 500
BODY_EXCERPT_CHARS = 300
RETRY_COUNT_HEADER = "x-stainless-retry-count"
"""Header the SDK sends with each attempt: the retries taken before it."""
REDACTED = "[redacted]"


def import_openai() -> ModuleType:
    """Import the ``openai`` SDK, or say how to install it."""
    try:
        import openai
    except ImportError as exc:
        raise ImportError(
            f"the OpenAI-compatible backend needs the openai SDK: {INSTALL_HINT}"
        ) from exc
    return openai


def display_url(url: str) -> str:
    """``url`` as shown in messages: scheme, host, port and path (no credentials, no query)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return urlunsplit((parts.scheme, host + port, parts.path.rstrip("/"), "", ""))


@dataclass
class Usage:
    """Cost counted over requests: requests made, input and generated tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, response: Any) -> None:
        """Count one successful response (a missing or malformed ``usage`` counts as 0)."""
        self.requests += 1
        usage = field(response, "usage")
        self.prompt_tokens += as_count(field(usage, "prompt_tokens")) or 0
        self.completion_tokens += as_count(field(usage, "completion_tokens")) or 0


class ApiClient:
    """The SDK client, and its ``completions`` and ``chat`` calls with errors as LLMError.

    ``sdk_client`` replaces the ``openai.OpenAI`` client (for tests).
    """

    def __init__(self, config: OpenAIConfig, sdk_client: Any = None) -> None:
        self.config = config
        self._openai = import_openai()
        self._client = sdk_client or self._openai.OpenAI(**self.client_options())
        self._once_client: Any = None
        self.base_url = display_url(str(getattr(self._client, "base_url", "")))
        """The endpoint requests go to, without credentials (for messages and logs)."""
        if sdk_client is None and not self.base_url.startswith(("http://", "https://")):
            self._client.close()
            raise ValueError(
                f"the API base URL {self.base_url!r} is not an http(s) URL; give MODEL@URL or "
                "set OPENAI_BASE_URL to one (e.g. http://127.0.0.1:8000/v1)"
            )

    def client_options(self) -> dict[str, Any]:
        """Arguments of ``openai.OpenAI``: ``base_url`` only when the config sets one, so that
        the SDK resolves it otherwise (``$OPENAI_BASE_URL``, else its default endpoint)."""
        cfg = self.config
        options: dict[str, Any] = {
            "api_key": cfg.api_key,
            "timeout": cfg.timeout,
            "max_retries": cfg.max_retries,
        }
        if cfg.base_url is not None:
            options["base_url"] = cfg.base_url
        return options

    def completion(self, *, retry: bool = True, **kwargs: Any) -> Any:
        """``POST /completions`` (legacy text completions) with ``kwargs``; no retries unless
        ``retry``."""
        return self._request("completions", self._sdk(retry).completions.create, kwargs)

    def chat(self, *, retry: bool = True, **kwargs: Any) -> Any:
        """``POST /chat/completions`` with ``kwargs``; no retries unless ``retry``."""
        return self._request("chat/completions", self._sdk(retry).chat.completions.create, kwargs)

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        self._client.close()

    def redact(self, text: str) -> str:
        """``text`` with the API key (if one is set and appears in it) replaced by
        ``[redacted]``."""
        key = self.config.api_key
        return text.replace(key, REDACTED) if key and key != DUMMY_API_KEY else text

    def _sdk(self, retry: bool) -> Any:
        """The SDK client, or a copy of it that makes a single attempt."""
        if retry:
            return self._client
        if self._once_client is None:
            self._once_client = self._client.with_options(max_retries=0)
        return self._once_client

    def _request(self, what: str, create: Any, kwargs: dict[str, Any]) -> Any:
        """``create(model=..., **kwargs)``; every failure as a one-line LLMError."""
        where = f"{self.base_url}/{what}"
        try:
            response = create(model=self.config.model, **kwargs)
        except self._openai.OpenAIError as exc:
            raise self._error(where, exc) from exc
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            # the SDK lets a body that is not JSON (or nested too deep to decode) through
            detail = one_line(str(exc), BODY_EXCERPT_CHARS)
            message = f"{where} answered with a body that is not JSON: {detail}"
            raise LLMError(self.redact(message)) from exc
        if isinstance(response, str | bytes):  # a 200 with some other content type
            detail = one_line(repr(response[:BODY_EXCERPT_CHARS]), BODY_EXCERPT_CHARS)
            raise LLMError(self.redact(f"{where} answered with text, not a JSON object: {detail}"))
        return response

    def _error(self, where: str, exc: Exception) -> LLMError:
        """The LLMError for an SDK exception: status, attempts, whether it was transient."""
        sdk = self._openai
        status = exc.status_code if isinstance(exc, sdk.APIStatusError) else None
        transient = isinstance(exc, sdk.APIConnectionError) or (  # includes APITimeoutError
            status is not None and (status >= SERVER_ERROR or status in RETRY_STATUSES)
        )
        attempts = _attempts(exc)
        kind = f"HTTP {status}" if status is not None else type(exc).__name__
        body = getattr(exc, "body", None)
        detail = one_line(str(body if body is not None else exc), BODY_EXCERPT_CHARS)
        hint = ""
        if isinstance(exc, sdk.APIConnectionError):
            hint = " (is the server running and reachable at that URL?)"
        elif status == SERVER_ERROR:
            hint = (
                " (llama-cpp-python's server answers 500 to log-prob requests without "
                "--logits_all true, and to list prompts in any case)"
            )
        message = f"{where} failed with {kind} after {attempts} attempt(s): {detail}{hint}"
        return LLMError(self.redact(message), status=status, attempts=attempts, transient=transient)


def _attempts(exc: Exception) -> int:
    """Attempts the SDK made before ``exc``: 1 + the retry count of its last request."""
    headers = getattr(getattr(exc, "request", None), "headers", None)
    try:
        value = headers.get(RETRY_COUNT_HEADER) if headers is not None else None
        return 1 + int(value) if value is not None else 1
    except (AttributeError, TypeError, ValueError):
        return 1
