"""API keys of the HTTP service: every request needs one, an episode belongs to the key that
opened it, each key's decisions see only that key's memory, and keys are never echoed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from jitrl.memory import open_store  # noqa: E402
from jitrl.method.config import ScopeConfig  # noqa: E402
from jitrl.method.learner import JitRL  # noqa: E402
from jitrl.service import ServiceConfig  # noqa: E402
from jitrl.service.app import create_app  # noqa: E402
from jitrl.service.auth import KeyRing, bearer_token, owner_of  # noqa: E402
from jitrl.settings import SettingsError, resolve  # noqa: E402
from tests.test_service import (  # noqa: E402
    CANDS,
    assert_refused,
    make_config,
    ok,
    play,
    running,
    stored_episodes,
)

pytestmark = pytest.mark.timeout(120)

KEY_A = "alpha-key-0123456789"
KEY_B = "beta-key-0123456789abcdef"
KEY_C = "gamma_key.0123456789~+/=="
DARK = [("dark room lamp", [0.0, -0.5, -9.0], 0.0)]


def keyed_config(tmp_path: Path, **kw: Any) -> ServiceConfig:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# clients\n{KEY_B}\n\n  {KEY_C}  \n")
    return make_config(tmp_path, api_keys=KEY_A, api_keys_file=str(keys), **kw)


def client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.Client(base_url=url, timeout=30, headers=headers)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[ServiceConfig, str]]:
    config = keyed_config(tmp_path)
    with running(config) as url:
        yield config, url


def test_every_request_needs_a_known_key(keyed: tuple[ServiceConfig, str]) -> None:
    _, url = keyed
    routes = [
        ("GET", "/health"),
        ("GET", "/memory/stats"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/no/such/route"),
        ("POST", "/episodes"),
        ("POST", "/episodes/x/decide"),
        ("POST", "/episodes/x/reward"),
        ("POST", "/episodes/x/finish"),
        ("DELETE", "/episodes/x"),
    ]
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-key-0123456789"},
        {"Authorization": f"Basic {KEY_A}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {KEY_A}x"},
    ]
    with httpx.Client(base_url=url, timeout=30) as c:
        for h in headers:
            for method, path in routes:
                resp = c.request(method, path, headers=h, json={})
                assert_refused(resp, 401, "API key")
                assert resp.headers["www-authenticate"].startswith("Bearer")
                assert "\n" not in resp.json()["detail"] and KEY_A not in resp.text
    for key in (KEY_A, KEY_B, KEY_C):
        with client(url, key) as c:
            health = ok(c.get("/health"))
            assert health["api_keys"] is True
            ok(c.get("/openapi.json"))
    with client(url, None) as c:
        assert "missing API key" in c.get("/health").json()["detail"]


def test_an_episode_belongs_to_the_key_that_opened_it(keyed: tuple[ServiceConfig, str]) -> None:
    config, url = keyed
    with client(url, KEY_A) as a, client(url, KEY_B) as b:
        play(a, "ep", DARK)
        body = {"state": "hall", "candidates": CANDS, "logits": [0.0, 0.0, 0.0]}
        for method, path, payload in [
            ("POST", "/episodes/ep/decide", body),
            ("POST", "/episodes/ep/reward", {"reward": 1.0}),
            ("POST", "/episodes/ep/finish", {}),
            ("DELETE", "/episodes/ep", None),
        ]:
            resp = b.request(method, path, json=payload)
            assert_refused(resp, 404, "episode 'ep' is not open (unknown id)")
        ok(b.post("/episodes", json={"episode_id": "ep"}), 201)  # the same id, B's own
        assert ok(b.delete("/episodes/ep"))["discarded"] == 0
        assert ok(a.post("/episodes/ep/decide", json=body))["step"] == 1  # A's is intact
        assert ok(a.post("/episodes/ep/finish"))["stored"] == 2
        assert_refused(b.post("/episodes/ep/finish"), 404, "deleted by the client")  # its own
        stats = ok(a.get("/memory/stats"))
        assert stats["episodes"] == 1 and stats["indexed"] == 2
        assert ok(b.get("/memory/stats"))["indexed"] == 0
    stored = stored_episodes(config)
    assert list(stored) == [f"{owner_of(KEY_A)}/ep"]


def _dark_decision(c: httpx.Client, eid: str) -> dict[str, Any]:
    ok(c.post("/episodes", json={"task_id": "demo", "episode_id": eid}), 201)
    body = {"state": "dark room lamp", "candidates": CANDS, "logits": [0.0, -0.5, -9.0]}
    return ok(c.post(f"/episodes/{eid}/decide", json=body))


def test_neighbours_stay_with_their_key(tmp_path: Path) -> None:
    config = keyed_config(tmp_path, follow_store_seconds=0.01)
    with running(config) as url, client(url, KEY_A) as a, client(url, KEY_B) as b:
        play(a, "first", DARK)
        ok(a.post("/episodes/first/finish", json={"failed": True}))
        seen_b = _dark_decision(b, "b-1")
        seen_a = _dark_decision(a, "a-1")
    assert seen_b["neighbours"] == [] and seen_b["action"] == "go north"
    assert [(n["episode_id"], n["action"]) for n in seen_a["neighbours"]] == [("first", "go north")]
    assert seen_a["action"] == "go south"
    # after a restart each key's memory is rebuilt from the store, still apart; and another
    # server on the same store (follow_store) indexes the new episodes of the right key only
    with (
        running(config) as url,
        running(config) as url2,
        client(url, KEY_A) as a,
        client(url, KEY_B) as b,
        client(url2, KEY_B) as b2,
    ):
        assert ok(b.get("/memory/stats"))["indexed"] == 1  # B's memory: b-1
        play(b2, "b-2", [("dark room lamp", [0.0, -0.5, -9.0], -5.0)])
        ok(b2.post("/episodes/b-2/finish"))
        again_a = _dark_decision(a, "a-2")
        again_b = _dark_decision(b, "b-3")
    assert {n["episode_id"] for n in again_a["neighbours"]} == {"first", "a-1"}
    assert {n["episode_id"] for n in again_b["neighbours"]} == {"b-1", "b-2"}


def test_keys_share_a_namespace_they_are_opted_into_and_write_their_own(tmp_path: Path) -> None:
    base = keyed_config(tmp_path)
    team = replace(base.jitrl, scope=ScopeConfig(namespace="shared"))
    jit = JitRL(base.memory, team)
    with jit.episode("demo", "team-1") as ep:
        ep.decide("dark room lamp", CANDS, logits=[0.0, -0.5, -9.0])
        ep.reward(-5.0)
        ep.finish()
    jit.close()
    config = replace(
        base, jitrl=replace(base.jitrl, scope=ScopeConfig(read_namespaces=("shared",)))
    )
    with running(config) as url, client(url, KEY_A) as a:
        seen = _dark_decision(a, "a-1")
        ok(a.post("/episodes/a-1/reward", json={"reward": 1.0}))
        ok(a.post("/episodes/a-1/finish"))
    assert [n["episode_id"] for n in seen["neighbours"]] == ["team-1"]  # the team's memory...
    assert seen["action"] == "go south"  # ...steers away from the team's bad "go north"
    with closing(open_store(config.memory, create=False)) as store:
        assert store.episode_ids(["shared"]) == ["team-1"]  # ...and is never written
        assert store.episode_ids([owner_of(KEY_A)]) == [f"{owner_of(KEY_A)}/a-1"]


def test_keys_come_from_the_environment_and_are_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"JITRL_API_KEYS": f"{KEY_A}, {KEY_B}", "JITRL_MEMORY": str(tmp_path / "m.db")}
    config = resolve([ServiceConfig], environ=environ)[ServiceConfig]
    assert config.api_keys is not None and KEY_A not in repr(config)
    caplog.set_level(logging.DEBUG)
    with running(config) as url, client(url, KEY_B) as b:
        play(b, "e", DARK)
        assert_refused(b.post("/episodes/e/reward", json={"reward": 2e12}), 422)
        with client(url, "wrong-key-0123456789") as w:
            assert w.get("/health").status_code == 401
        ok(b.post("/episodes/e/finish"))
    for key in (KEY_A, KEY_B):
        assert key not in caplog.text
    assert "API keys: 2 configured" in caplog.text


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"api_keys": "short"}, "api_keys: key 1: an API key must have 16 to 512 characters"),
        ({"api_keys": f"{KEY_A},has space 0123456789"}, "api_keys: key 2: an API key may only"),
        ({"api_keys_file": ""}, "api_keys_file must be a non-empty path"),
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(
    tmp_path: Path, setting: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message) as err:
        make_config(tmp_path, **setting)
    assert "short" not in str(err.value) and "space" not in str(err.value)
    if "api_keys" in setting:  # the same message from the command line
        with pytest.raises(SettingsError, match=message):
            resolve([ServiceConfig], flags=setting, environ={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read it"),
        ("# only a comment\n\n", "no key in it"),
        (f"{KEY_A}\nbad key here 0123456789\n", "line 2: an API key may only contain"),
    ],
)
def test_an_unusable_key_file_stops_the_start(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "keys.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        create_app(make_config(tmp_path, api_keys_file=str(path)))
    assert "bad key here" not in str(err.value)


def test_without_keys_the_service_is_open(tmp_path: Path) -> None:
    with running(make_config(tmp_path)) as url, client(url, None) as c:
        assert ok(c.get("/health"))["api_keys"] is False
        play(c, "e", DARK)
        ok(c.post("/episodes/e/finish"))
        schema = ok(c.get("/openapi.json"))
    assert "security" not in schema


def test_the_schema_declares_the_bearer_scheme_and_the_links(
    keyed: tuple[ServiceConfig, str],
) -> None:
    _, url = keyed
    with client(url, KEY_A) as c:
        schema = ok(c.get("/openapi.json"))
    assert schema["security"] == [{"apiKey": []}]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    opened = schema["paths"]["/episodes"]["post"]["responses"]
    assert "401" in opened
    links = opened["201"]["links"]
    assert links["then_decide"] == {
        "operationId": "decide",
        "parameters": {"episode_id": "$response.body#/episode_id"},
    }


def test_key_matching() -> None:
    ring = KeyRing({KEY_A: owner_of(KEY_A), KEY_B: owner_of(KEY_B)})
    assert ring.owner(KEY_B) == owner_of(KEY_B) and ring.owner(KEY_A + "=") is None
    assert ring.owner("") is None and len(ring) == 2
    assert owner_of(KEY_A) != owner_of(KEY_B) and owner_of(KEY_A).startswith("key-")
    assert bearer_token([(b"authorization", b"bearer  tok  ")]) == "tok"
    assert bearer_token([(b"Authorization", b"Token tok")]) is None
    assert bearer_token([]) is None
