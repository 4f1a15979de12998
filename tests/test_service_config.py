"""The HTTP service's pieces that need no server: its settings and the episode registry."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from jitrl.method.config import JitRLConfig
from jitrl.method.learner import JitRL
from jitrl.service import ServiceConfig
from jitrl.service.sessions import SessionRegistry
from jitrl.settings import setting_names


def make_config(tmp_path: Path, **kw: Any) -> ServiceConfig:
    return ServiceConfig(memory=str(tmp_path / "memory.sqlite"), jitrl=JitRLConfig(), **kw)


def test_idle_timer_restarts_on_each_use() -> None:
    now = [0.0]
    reg = SessionRegistry(10.0, max_open=2, clock=lambda: now[0])
    jit = JitRL(None)
    reg.add(jit.episode("t", "a"))
    reg.add(jit.episode("t", "b"))
    now[0] = 8.0
    assert reg.get("a") is not None  # "a" used at t=8; "b" idle since 0
    now[0] = 12.0
    assert [s.episode_id for s in reg.pop_expired()] == ["b"]
    now[0] = 18.5
    assert [s.episode_id for s in reg.pop_expired()] == ["a"]
    assert len(reg) == 0


def test_service_config_is_validated(tmp_path: Path) -> None:
    for bad in [
        {"episode_ttl_seconds": 0},
        {"episode_ttl_seconds": math.inf},
        {"on_expire": "keep"},
        {"max_body_bytes": 0},
        {"max_candidates": 10**6},
        {"port": 70000},
        {"log_level": "loud"},
    ]:
        with pytest.raises(ValueError):
            make_config(tmp_path, **bad)


def test_the_new_settings_are_flags_with_help_and_keys_stay_hidden(tmp_path: Path) -> None:
    table = setting_names([ServiceConfig])  # raises if a name is used twice
    for name in ("max_abs_reward", "api_keys", "api_keys_file"):
        assert table[name][1].help, name
        assert table[name][1].flag == "--" + name.replace("_", "-")
    config = make_config(tmp_path, api_keys="a-secret-key-0123456789, another-key-0123456789")
    assert "secret" not in repr(config) and "another" not in repr(config)
    for bad in [{"api_keys": 5}, {"api_keys_file": " "}, {"max_abs_reward": "1"}]:
        with pytest.raises(ValueError):
            make_config(tmp_path, **bad)


def test_loopback_hosts_are_recognised() -> None:
    from jitrl.service.server import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org"))
