"""Optional API keys: who may call the service, and which episodes and memory are theirs.

Keys come from :attr:`ServiceConfig.api_keys` (a flag, or the ``JITRL_API_KEYS`` variable) and
:attr:`ServiceConfig.api_keys_file`. With none configured the service is open, as it always
was, and must stay on loopback. With keys, :class:`ApiKeyAuth` refuses every request without
``Authorization: Bearer <key>`` of a known key (401), and tells the routes the request's
*owner*: :func:`owner_of` the key, a fingerprint that names the key without revealing it. The
engine keeps each owner's episodes and memory apart (:mod:`jitrl.service.tenants`).

Keys are compared in constant time (SHA-256 digests, :func:`hmac.compare_digest`, every key
tried) and are never logged or echoed: messages name a key by its position only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from jitrl.service.config import ServiceConfig, check_api_key, split_api_keys
from jitrl.service.middleware import error_response
from jitrl.service.redact import register_secret

OWNER_SCOPE_KEY = "jitrl.owner"
"""Where :class:`ApiKeyAuth` puts the request's owner in the ASGI scope."""
OWNER_PREFIX = "key-"
FINGERPRINT_HEX = 16
"""Hex digits of a key's SHA-256 in its owner name (64 bits: no collision among a few keys)."""


def owner_of(key: str) -> str:
    """The owner name of ``key``: ``key-`` and the start of its SHA-256 (stable across
    restarts, so stored episodes keep their owner)."""
    return OWNER_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:FINGERPRINT_HEX]


def _read_key_file(path: str) -> list[str]:
    """The keys of a file: one per line, blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"api_keys_file {path}: cannot read it ({reason})") from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.strip()
        if item and not item.startswith("#"):
            check_api_key(item, f"api_keys_file {path}, line {number}")
            keys.append(item)
    if not keys:
        raise ValueError(f"api_keys_file {path}: no key in it (one key per line)")
    return keys


def load_api_keys(config: ServiceConfig) -> dict[str, str]:
    """Key -> owner for every configured key (empty: no authentication).

    Every key is registered for redaction (:func:`jitrl.service.redact.register_secret`).

    Raises:
        ValueError: the key file cannot be read, holds no key, or holds a malformed key.
    """
    keys = split_api_keys(config.api_keys or "")
    if config.api_keys_file is not None:
        keys += _read_key_file(config.api_keys_file)
    for key in keys:
        register_secret(key)
    return {key: owner_of(key) for key in keys}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """The configured keys, matched in constant time."""

    def __init__(self, owners: Mapping[str, str]) -> None:
        self._entries = [(_digest(key), owner) for key, owner in owners.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def owner(self, token: str) -> str | None:
        """The owner of ``token``, or ``None`` if it is no configured key. Every key is
        compared, digest against digest, so the time taken says nothing about the keys."""
        probe = _digest(token)
        found: str | None = None
        for digest, owner in self._entries:
            if hmac.compare_digest(probe, digest):
                found = owner
        return found


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class ApiKeyAuth:
    """ASGI middleware: every HTTP request needs the bearer token of a configured key.

    A request without one, or with an unknown key, is answered 401 with a one-line JSON
    ``detail`` and ``WWW-Authenticate: Bearer``; an accepted one carries its owner in
    ``scope["jitrl.owner"]``. Other scopes (the lifespan) pass through.
    """

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers", []))
        owner = self.keys.owner(token) if token is not None else None
        if owner is None:
            detail = (
                "missing API key: send the header 'Authorization: Bearer <key>'"
                if token is None
                else "invalid API key"
            )
            response = error_response(401, detail)
            response.headers["WWW-Authenticate"] = 'Bearer realm="jitrl"'
            await response(scope, receive, send)
            return
        scope[OWNER_SCOPE_KEY] = owner
        await self.app(scope, receive, send)
