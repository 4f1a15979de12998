"""HTTP plumbing: the request-body size limit and the JSON error answers.

Every error the service gives is ``{"detail": "<readable message>"}`` (plus ``"errors"``, the
list of offending fields, for a 422), whatever raised it: a validation error, a
:class:`~jitrl.service.engine.ServiceError`, an oversized body, or an unexpected exception
(500, logged with its traceback, never echoed to the client; :class:`CatchUnexpected`).
Credentials are masked in every error body (:func:`jitrl.service.redact.redact`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jitrl.llm.base import LLMError
from jitrl.memory.base import StoreError
from jitrl.service.engine import ServiceError
from jitrl.service.redact import redact

log = logging.getLogger(__name__)


def error_response(
    status: int, detail: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """The service's error body, with credentials masked."""
    body: dict[str, Any] = {"detail": redact(detail)}
    if errors is not None:
        body["errors"] = [{**e, "msg": redact(str(e.get("msg", "")))} for e in errors]
    return JSONResponse(body, status_code=status)


class BodySizeLimit:
    """ASGI middleware: refuse request bodies larger than ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before anything is read; a body
    sent without one (chunked) is read up to the limit and refused as soon as it exceeds it.
    An accepted body is replayed to the application unchanged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await error_response(400, "invalid Content-Length header")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body larger than this server's limit of {self.max_bytes} bytes"
        await error_response(413, detail)(scope, receive, send)


class CatchUnexpected:
    """ASGI middleware: an exception that escaped the routes is logged with its traceback and
    answered with the JSON 500, and goes no further.

    Starlette's own last-resort handler re-raises the exception after answering, and the
    server then drops the connection, so a client could see a reset instead of the 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _internal_error(exc)(scope, receive, send)


def _internal_error(exc: Exception) -> JSONResponse:
    return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


_NOT_AN_OBJECT = frozenset({"model_attributes_type", "model_type", "dict_type"})


def _message(error: dict[str, Any]) -> str:
    """A readable message for one of pydantic's errors."""
    kind, ctx = error.get("type"), error.get("ctx") or {}
    if kind == "json_invalid":
        where = error.get("loc", ("body", "?"))[-1]
        return f"invalid JSON at character {where}: {ctx.get('error', 'decode error')}"
    if tuple(error.get("loc", ())) == ("body",):
        if kind == "missing":
            return "a JSON object body is required (Content-Type: application/json)"
        if kind in _NOT_AN_OBJECT:
            return "the body must be a JSON object (Content-Type: application/json)"
    return str(error.get("msg", "")).removeprefix("Value error, ")


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors, reduced to JSON-safe ``loc``/``msg``/``type``."""
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": _message(e),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]


def _summary(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(p for p in e["loc"] if p != "body")
        if e["type"] == "json_invalid":
            loc = ""
        parts.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request: " + "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the service's JSON error body."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        return error_response(422, _summary(errors), errors)

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.message)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", redact(str(exc)))
        return error_response(503, f"the experience store failed: {exc}")

    @app.exception_handler(LLMError)
    async def _model(_: Request, exc: LLMError) -> JSONResponse:
        log.error("language model error: %s", redact(str(exc)))
        if exc.transient:  # the model's server is overloaded or away: the client may retry
            return error_response(503, f"the language model is unavailable, retry: {exc}")
        return error_response(502, f"the language model failed: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return _internal_error(exc)
