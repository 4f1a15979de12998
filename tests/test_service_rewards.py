"""The HTTP service against rewards that overflow and episodes that cannot be stored: one bad
episode never stops the others from being stored (by the sweep or at shutdown), and a server
that lost an episode at shutdown exits with a non-zero status."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from jitrl.method.episode import Episode  # noqa: E402
from tests.test_service import (  # noqa: E402
    CANDS,
    assert_refused,
    make_config,
    ok,
    play,
    running,
    stored_episodes,
    wait_until_none_open,
)

pytestmark = pytest.mark.timeout(120)

HALL = [("hall", [0.0, -1.0, -2.0], 1.0)]


@pytest.fixture
def failing_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make storing any episode whose id ends with ``bad`` fail, as an overflow used to."""
    real = Episode.finish

    def finish(self: Episode, *, failed: bool = False) -> Any:
        if self.episode_id.endswith("bad"):
            raise ValueError("the episode's returns are not finite (rewards too large)")
        return real(self, failed=failed)

    monkeypatch.setattr(Episode, "finish", finish)


def decide(c: httpx.Client, eid: str, state: str) -> dict[str, Any]:
    body = {"state": state, "candidates": CANDS, "logits": [0.0, -1.0, -2.0]}
    return ok(c.post(f"/episodes/{eid}/decide", json=body))


def test_an_overflowing_reward_is_refused_and_the_episode_still_finishes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with running(config) as url, httpx.Client(base_url=url, timeout=30) as c:
        ok(c.post("/episodes", json={"episode_id": "big"}), 201)
        decide(c, "big", "hall")
        assert_refused(c.post("/episodes/big/reward", json={"reward": 1e308}), 422, "reward")
        decide(c, "big", "yard")
        assert_refused(c.post("/episodes/big/reward", json={"reward": 1e308}), 422, "reward")
        assert_refused(c.post("/episodes/big/reward", json={"reward": -1e13}), 422, "reward")
        assert ok(c.post("/episodes/big/reward", json={"reward": 1e12}))["step"] == 1
        done = ok(c.post("/episodes/big/finish"))
        assert done["stored"] == 2 and done["returns"] == [0.9e12, 1e12]
        assert ok(c.get("/memory/stats"))["experiences"] == 2
        assert ok(c.get("/health"))["max_abs_reward"] == 1e12
    assert stored_episodes(config) == {"big": [0.9e12, 1e12]}


def test_the_configured_reward_bound_is_enforced(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_abs_reward=100.0)
    with running(config) as url, httpx.Client(base_url=url, timeout=30) as c:
        ok(c.post("/episodes", json={"episode_id": "e"}), 201)
        decide(c, "e", "hall")
        resp = c.post("/episodes/e/reward", json={"reward": -100.5})
        assert_refused(resp, 422, "reward -100.5 is out of range", "[-100, 100]", "max_abs_reward")
        assert ok(c.post("/episodes/e/reward", json={"reward": -100}))["reward"] == -100.0
        assert ok(c.post("/episodes/e/finish"))["returns"] == [-100.0]


@pytest.mark.parametrize(
    "bad",
    [
        {"max_abs_reward": 0.0},
        {"max_abs_reward": 1e13},
        {"max_abs_reward": float("nan")},
    ],
)
def test_the_reward_bound_setting_is_validated(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="max_abs_reward"):
        make_config(tmp_path, **bad)


def test_penalties_beyond_the_bound_are_refused(tmp_path: Path) -> None:
    from jitrl.method.config import JitRLConfig, ReturnConfig
    from jitrl.service import ServiceConfig

    jit = JitRLConfig(returns=ReturnConfig(revisit_penalty=1e300))
    with pytest.raises(ValueError, match="revisit_penalty must be <= 1e"):
        ServiceConfig(memory=str(tmp_path / "m.sqlite"), jitrl=jit)


@pytest.mark.usefixtures("failing_finish")
def test_one_bad_episode_does_not_stop_the_sweep(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, episode_ttl_seconds=1.0, sweep_interval_seconds=0.1, on_expire="store"
    )
    with running(config) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            for eid in ("ep-bad", "ep-a", "ep-c"):  # the bad one is the oldest: swept first
                play(c, eid, HALL)
        with httpx.Client(base_url=url, timeout=30) as c:
            wait_until_none_open(c, "the episodes never expired")
            stats = ok(c.get("/memory/stats"))
            resp = c.post("/episodes/ep-bad/reward", json={"reward": 1.0})
            assert_refused(resp, 404, "expired", "storing failed")
            play(c, "later", HALL)  # the service still works
            ok(c.post("/episodes/later/finish"))
    assert (stats["expired_stored"], stats["expired_dropped"]) == (2, 1)
    assert set(stored_episodes(config)) == {"ep-a", "ep-c", "later"}


@pytest.mark.usefixtures("failing_finish")
def test_one_bad_episode_does_not_stop_the_shutdown(tmp_path: Path) -> None:
    config = make_config(tmp_path, on_expire="store")
    apps: list[Any] = []
    with running(config, apps.append) as url, httpx.Client(base_url=url, timeout=30) as c:
        for eid in ("ep-bad", "ep-a", "ep-c"):
            play(c, eid, HALL)
    assert apps[0].state.engine.unsaved == ["ep-bad"]
    assert set(stored_episodes(config)) == {"ep-a", "ep-c"}


# `jitrl serve` in a child process whose episodes named *bad cannot be stored
_SERVE = """
import sys
from jitrl.method.episode import Episode

real = Episode.finish

def finish(self, *, failed=False):
    if self.episode_id.endswith("bad"):
        raise ValueError("the episode's returns are not finite (rewards too large)")
    return real(self, failed=failed)

Episode.finish = finish
from jitrl.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = _free_port()
    memory = tmp_path / "memory.sqlite"
    argv = ["serve", "--memory", str(memory), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "jitrl serve did not start"
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("with_bad", [False, True])
def test_jitrl_serve_exits_non_zero_when_an_open_episode_is_lost(
    serve_process: tuple[subprocess.Popen[str], str], tmp_path: Path, with_bad: bool
) -> None:
    proc, url = serve_process
    names = ["ep-bad", "ep-a", "ep-c"] if with_bad else ["ep-a", "ep-c"]
    with httpx.Client(base_url=url, timeout=30) as c:
        for eid in names:
            play(c, eid, HALL)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    config = make_config(tmp_path)
    assert set(stored_episodes(config)) == {"ep-a", "ep-c"}
    if with_bad:
        assert proc.returncode == 2, err
        assert "1 open episode(s) could not be stored at shutdown" in err and "ep-bad" in err
    else:
        assert proc.returncode == 0, err
