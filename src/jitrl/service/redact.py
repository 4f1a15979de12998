"""Credentials never leave the service: redaction of error bodies, health answers and logs.

Two kinds of secret can reach an output: the password of a PostgreSQL memory URL (in the
``memory`` setting, or inside an error message about the store) and the API keys. Every text
the service emits goes through :func:`redact`, which masks

- the password of any URL written in the text (``scheme://user:PASSWORD@host``), and any
  ``password=VALUE`` (libpq keyword strings, URL queries), as :func:`jitrl.memory.postgres_schema.
  redact_url` does for a whole URL;
- every secret registered with :func:`register_secret` (the API keys, and memory passwords of at
  least :data:`MIN_LITERAL_SECRET_CHARS` characters), wherever it appears.

:func:`install_log_redaction` puts a :class:`RedactingFilter` on the loggers of jitrl and uvicorn
and on the root logger's handlers, so log records are masked before any handler formats them.
"""

from __future__ import annotations

import logging
import numbers
import re
import threading
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

MASK = "***"
MIN_LITERAL_SECRET_CHARS = 8
"""A memory password shorter than this is masked by the URL patterns only: masking every
occurrence of a short word would garble unrelated text."""

_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s@]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.IGNORECASE)
_LOGGER_ROOTS = ("jitrl", "uvicorn")


class _Secrets:
    """The literal secrets to mask, shared by every application of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        """Mask ``secret`` from now on."""
        with self._lock:
            if secret and secret not in self._items:
                # longest first, so that a secret containing another is masked whole
                self._items = tuple(sorted((*self._items, secret), key=len, reverse=True))

    def items(self) -> tuple[str, ...]:
        """The secrets, longest first."""
        return self._items


_SECRETS = _Secrets()


def register_secret(secret: str) -> None:
    """Mask ``secret`` wherever it appears in the service's outputs from now on."""
    _SECRETS.add(secret)


def url_password(url: str) -> str | None:
    """The password written in a store URL or libpq keyword string, or ``None``."""
    if "://" in url:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            return unquote(password)
    match = _KEYWORD_PASSWORD.search(url)
    if match is None:
        return None
    value = match.group(2)
    return value[1:-1] if value.startswith("'") else unquote(value)


def register_url_password(url: str) -> None:
    """Register the password of ``url`` (the ``memory`` setting) if it is long enough to be
    masked literally; shorter ones are still masked by the URL patterns of :func:`redact`."""
    password = url_password(url)
    if password is not None and len(password) >= MIN_LITERAL_SECRET_CHARS:
        register_secret(password)


def redact(text: str) -> str:
    """``text`` with URL passwords, ``password=`` values and registered secrets masked."""
    out = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    out = _KEYWORD_PASSWORD.sub(rf"\1{MASK}", out)
    for secret in _SECRETS.items():
        out = out.replace(secret, MASK)
    return out


def _clean(arg: object) -> object:
    """A log argument, redacted; kept as it is (a number for ``%d``, an object for ``%r``)
    unless its text holds a credential."""
    if arg is None or isinstance(arg, numbers.Number):
        return arg
    text = arg if isinstance(arg, str) else str(arg)
    masked = redact(text)
    return arg if masked == text else masked


class RedactingFilter(logging.Filter):
    """Masks credentials in a log record's message, arguments and traceback (never drops a
    record). Arguments stay arguments, so formatters that unpack them (uvicorn's access log)
    still work."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place, redacted."""
        record.msg = _clean(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        if record.exc_info and record.exc_info[0] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            masked = redact(formatted)
            if masked != formatted:  # the handlers get the masked text, not the exception
                record.exc_text, record.exc_info = masked, None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install_log_redaction(extra_loggers: tuple[str, ...] = ()) -> None:
    """Put the redacting filter on every jitrl and uvicorn logger known now (and on
    ``extra_loggers``) and on the root logger's handlers; calling it again is harmless.

    A logger's filter sees the records logged at that logger; a handler's sees every record it
    receives, so the root handlers catch what propagates from loggers created later.
    """
    known = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0] in _LOGGER_ROOTS
    ]
    for name in {*_LOGGER_ROOTS, *known, *extra_loggers}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
