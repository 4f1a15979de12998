"""Credentials never leave the HTTP service: not in /health, not in error bodies, not in logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from jitrl.memory import open_store  # noqa: E402
from jitrl.memory.base import StoreError  # noqa: E402
from jitrl.service import ServiceConfig  # noqa: E402
from jitrl.service.redact import RedactingFilter, redact, url_password  # noqa: E402
from tests.test_service import assert_refused, ok, play, running  # noqa: E402

pytestmark = pytest.mark.timeout(120)

PASSWORD = "s3cret-pass-word"
URL = f"postgresql://jit:{PASSWORD}@db.example:5432/jitrl?sslmode=require"
MEMORIES = {
    URL: "postgresql://jit:***@db.example:5432/jitrl?sslmode=require",
    "postgresql://u:pw@h/db": "postgresql://u:***@h/db",
    "host=db user=jit password=hunter2hunter2 dbname=jitrl": (
        "host=db user=jit password=*** dbname=jitrl"
    ),
    "postgresql://db/jitrl?password=querysecret99&sslmode=x": (
        "postgresql://db/jitrl?password=***&sslmode=x"
    ),
}


@pytest.fixture
def sqlite_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever ``memory`` says, the service opens a SQLite file (no PostgreSQL needed)."""
    path = str(tmp_path / "memory.sqlite")
    monkeypatch.setattr("jitrl.service.engine.open_store", lambda _spec: open_store(path))


def config_for(memory: str) -> ServiceConfig:
    return ServiceConfig(memory=memory)


@pytest.mark.usefixtures("sqlite_behind")
@pytest.mark.parametrize("memory", sorted(MEMORIES))
def test_health_masks_the_memory_password(memory: str) -> None:
    secret = url_password(memory)
    assert secret is not None
    with running(config_for(memory)) as url, httpx.Client(base_url=url, timeout=30) as c:
        resp = c.get("/health")
    assert ok(resp)["memory"] == MEMORIES[memory]
    assert secret not in resp.text


@pytest.mark.usefixtures("sqlite_behind")
def test_errors_and_logs_mask_the_memory_password(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)

    def broken_store(app: Any) -> None:
        store = app.state.engine.learners.store

        def add_episode(*_: Any, **__: Any) -> None:
            raise StoreError(f"could not write to {URL}: connection lost ({PASSWORD})")

        monkeypatch.setattr(store, "add_episode", add_episode)

        def decide(*_: Any, **__: Any) -> None:
            raise RuntimeError(f"lost {URL}")

        monkeypatch.setattr(app.state.engine, "stats", decide)

    with (
        running(config_for(URL), broken_store) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        play(c, "e", [("hall", [0.0, -1.0, -2.0], 1.0)])
        resp = c.post("/episodes/e/finish")
        assert_refused(resp, 503, "the store failed, nothing was written", "jit:***@db.example")
        assert PASSWORD not in resp.text
        resp = c.get("/memory/stats")
        assert_refused(resp, 500, "internal error (RuntimeError)")
        assert PASSWORD not in resp.text
    # the episode could not be stored at shutdown either: logged, with the password masked
    assert "could not be stored" in caplog.text and "lost postgresql://jit:***@" in caplog.text
    assert PASSWORD not in caplog.text
    for record in caplog.records:
        assert PASSWORD not in record.getMessage() and PASSWORD not in (record.exc_text or "")


def test_redact_masks_passwords_in_free_text() -> None:
    text = f"failed: {URL} and user=x password='a b c' port=5 then http://h:8000/p"
    out = redact(text)
    assert PASSWORD not in out and "'a b c'" not in out
    assert "postgresql://jit:***@db.example" in out and "password=*** port=5" in out
    assert out.endswith("then http://h:8000/p")
    assert url_password("postgresql://u:p%40ss@h/db") == "p@ss"
    assert url_password("/tmp/memory.sqlite") is None


def test_the_log_filter_keeps_arguments_for_formatters() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s" %d', ("1.2.3.4", URL, 200), None
    )
    assert RedactingFilter().filter(record)
    assert record.args == (
        "1.2.3.4",
        "postgresql://jit:***@db.example:5432/jitrl?sslmode=require",
        200,
    )
    assert PASSWORD not in record.getMessage()


def test_the_log_filter_leaves_clean_arguments_alone() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    np = pytest.importorskip("numpy")
    args = (np.int64(3), 2.5, Thing(), "plain")
    record = logging.LogRecord("jitrl.x", logging.INFO, __file__, 1, "%d %s %r %s", args, None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "3 2.5 Thing() plain"
