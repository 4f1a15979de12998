"""The service's OpenAPI schema: FastAPI's, plus links between the episode routes and, when API
keys are configured, the bearer security scheme and the 401 answer.

The links say that the ``episode_id`` of an opened episode is what the other episode routes
take, so that clients and stateful testers (schemathesis) can chain ``open -> decide -> reward
-> finish`` from the schema alone.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

SECURITY_SCHEME = "apiKey"
_EPISODE_ID = {"episode_id": "$response.body#/episode_id"}
_NEXT: dict[str, tuple[str, ...]] = {
    "open_episode": ("decide", "reward", "finish", "drop_episode"),
}
"""Which operations take the id of an opened episode (any number of them, in any order)."""


def _operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Operation id -> operation object."""
    return {
        op["operationId"]: op
        for item in schema.get("paths", {}).values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }


def _add_links(operations: dict[str, dict[str, Any]]) -> None:
    for source, targets in _NEXT.items():
        op = operations.get(source)
        if op is None:
            continue
        success = next((r for code, r in op["responses"].items() if code.startswith("2")), None)
        if success is None:
            continue
        success["links"] = {
            f"then_{target}": {"operationId": target, "parameters": dict(_EPISODE_ID)}
            for target in targets
            if target in operations
        }


def _add_security(schema: dict[str, Any], operations: dict[str, dict[str, Any]]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "one of the server's API keys; an episode belongs to the key that opened it",
    }
    schema["security"] = [{SECURITY_SCHEME: []}]
    unauthorized = {
        "description": "missing or unknown API key",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for op in operations.values():
        op["responses"].setdefault("401", unauthorized)


def install_openapi(app: FastAPI, *, api_keys: bool) -> None:
    """Make ``app.openapi()`` return the schema with links (and security if ``api_keys``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        operations = _operations(schema)
        _add_links(operations)
        if api_keys:
            _add_security(schema, operations)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
