"""The HTTP service, exercised through real HTTP on loopback (uvicorn in a thread, httpx)."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from jitrl.memory import open_store  # noqa: E402
from jitrl.method.config import JitRLConfig, PolicyConfig, ValueConfig  # noqa: E402
from jitrl.service import ServiceConfig  # noqa: E402
from jitrl.service.app import create_app  # noqa: E402

pytestmark = pytest.mark.timeout(120)

CANDS = ["go north", "go south", "eat lamp"]


@contextmanager
def running(config: ServiceConfig, patch: Callable[[Any], None] | None = None) -> Iterator[str]:
    """Serve ``config`` with uvicorn on a free loopback port; yields the base URL.

    ``patch`` may alter the application before it is served.
    """
    app = create_app(config)
    if patch is not None:
        patch(app)
    # IPPROTO_TCP explicitly: asyncio then sets TCP_NODELAY on the connections (as uvicorn does
    # when it binds), so a response's two writes are not held back 40 ms by Nagle + delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
        assert not thread.is_alive()


def make_config(tmp_path: Path, **kw: Any) -> ServiceConfig:
    # exact actions and no kind prior: "go south" inherits the value of "go north" neither by
    # its words (tests/test_values.py) nor by its kind (tests/test_kinds.py); the model (the
    # caller's logits) leads every episode, so its preferences break memory's ties
    # (test_the_pace_bandit_lets_memory_lead_a_second_episode covers the default)
    values = ValueConfig(action_similarity="exact", kind_prior=0.0)
    jit = JitRLConfig(policy=PolicyConfig(beta=0.5, pace="calibrated"), values=values)
    return ServiceConfig(memory=str(tmp_path / "memory.sqlite"), jitrl=jit, **kw)


@pytest.fixture
def config(tmp_path: Path) -> ServiceConfig:
    return make_config(tmp_path, max_body_bytes=20_000, max_candidates=50)


@pytest.fixture
def client(config: ServiceConfig) -> Iterator[httpx.Client]:
    with running(config) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def ok(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def wait_until_none_open(c: httpx.Client, message: str, seconds: float = 30) -> None:
    """Poll ``/health`` until no episode is open (the sweeper has expired them all)."""
    deadline = time.monotonic() + seconds
    while ok(c.get("/health"))["open_episodes"]:
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def play(c: httpx.Client, eid: str, steps: list[tuple[str, list[float], float]]) -> list[dict]:
    """Open ``eid``, then decide and reward for each (state, logits, reward); the decisions.

    The state text doubles as its exact key.
    """
    ok(c.post("/episodes", json={"task_id": "demo", "episode_id": eid}), 201)
    out = []
    for state, logits, r in steps:
        body = {"state": state, "key": state, "candidates": CANDS, "logits": logits}
        out.append(ok(c.post(f"/episodes/{eid}/decide", json=body)))
        ok(c.post(f"/episodes/{eid}/reward", json={"reward": r}))
    return out


def stored_episodes(config: ServiceConfig) -> dict[str, list[float]]:
    """Episode id -> returns, read from the store file directly."""
    with closing(open_store(config.memory, create=False)) as store:
        found: dict[str, list[float]] = {}
        for e in store:
            found.setdefault(e.episode_id, []).append(e.ret)
        return found


def test_a_full_episode_is_stored(client: httpx.Client, config: ServiceConfig) -> None:
    steps = [("hall", [0.0, -1.0, -5.0], 0.0), ("garden", [-1.0, 0.0, -5.0], 1.0)]
    steps.append(("shed", [-2.0, -1.0, 0.0], 10.0))
    decisions = play(client, "ep-1", steps)
    assert [d["action"] for d in decisions] == ["go north", "go south", "eat lamp"]
    first = decisions[0]
    assert first["episode_id"] == "ep-1" and first["step"] == 0
    assert first["candidates"] == CANDS and first["base_logits"] == [0.0, -1.0, -5.0]
    assert len(first["logits"]) == len(first["probs"]) == 3
    assert math.isclose(sum(first["probs"]), 1.0, abs_tol=1e-4)
    assert first["neighbours"] == [] and first["v"] == 0.0
    done = ok(client.post("/episodes/ep-1/finish", json={"failed": False}))
    assert done["stored"] == 3 and len(done["returns"]) == 3 and done["total_reward"] == 11.0
    stats = ok(client.get("/memory/stats"))
    assert stats["experiences"] == 3 and stats["episodes"] == 1 and stats["open_episodes"] == 0
    assert stored_episodes(config) == {"ep-1": done["returns"]}
    again = client.post(
        "/episodes/ep-1/decide", json={"state": "x", "candidates": ["a"], "logits": [0.0]}
    )
    assert again.status_code == 404 and "finished" in again.json()["detail"]


def test_a_second_episode_sees_the_first(client: httpx.Client, config: ServiceConfig) -> None:
    play(client, "first", [("dark room lamp", [0.0, -0.5, -9.0], 0.0)])
    ok(client.post("/episodes/first/finish", json={"failed": True}))  # "go north" was fatal
    eid = ok(client.post("/episodes", json={"task_id": "demo"}), 201)["episode_id"]
    body = {
        "state": "dark room lamp",
        "key": "dark room lamp",
        "candidates": CANDS,
        "logits": [0.0, -0.5, -9.0],
    }
    d = ok(client.post(f"/episodes/{eid}/decide", json=body))
    seen = [(n["action"], n["episode_id"], n["return"]) for n in d["neighbours"]]
    fatal = -config.jitrl.returns.terminal_penalty  # one step, reward 0, then failure
    assert seen == [("go north", "first", fatal)]
    assert d["neighbours"][0]["similarity"] == pytest.approx(1.0)
    assert d["q"][0] == pytest.approx(fatal) and d["v"] == pytest.approx(fatal)
    assert d["counts"] == [1, 0, 0] and d["advantages"][1] > d["advantages"][0]
    assert d["action"] == "go south"  # memory overrides the base preference for "go north"
    ok(client.delete(f"/episodes/{eid}"))
    assert ok(client.get("/memory/stats"))["episodes"] == 1


def test_the_pace_bandit_lets_memory_lead_a_second_episode(tmp_path: Path) -> None:
    """With the default ``pace``, a task's second episode is memory's: the caller's logits get
    weight 0 (memory's ties fall at random), and the response says who led."""
    config = make_config(tmp_path)
    config = replace(config, jitrl=replace(config.jitrl, policy=PolicyConfig(beta=0.5)))
    body = {"state": "dark room lamp", "candidates": CANDS, "logits": [0.0, -0.5, -9.0]}
    with running(config) as url, httpx.Client(base_url=url, timeout=30) as c:
        leads = []
        for eid in ("first", "second"):
            opened = ok(c.post("/episodes", json={"task_id": "demo", "episode_id": eid}), 201)
            d = ok(c.post(f"/episodes/{eid}/decide", json=body))
            ok(c.post(f"/episodes/{eid}/finish", json={"failed": True}))
            leads.append((opened["lead"], d["lead"], d["prior_weight"]))
    # the lead is known when the episode opens: a client can skip its model in memory's
    assert leads == [("model", "model", 1.0), ("memory", "memory", 0.0)]
    assert d["action"] in ("go south", "eat lamp")  # the untried: "go north" failed


def test_two_servers_share_one_memory(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with (
        running(config) as url_a,
        running(config) as url_b,
        httpx.Client(base_url=url_a, timeout=30) as a,
        httpx.Client(base_url=url_b, timeout=30) as b,
    ):
        play(a, "from-a", [("dark room lamp", [0.0, -0.5, -9.0], 0.0)])
        ok(a.post("/episodes/from-a/finish", json={"failed": True}))
        ok(b.post("/episodes", json={"task_id": "demo", "episode_id": "on-b"}), 201)
        body = {"state": "dark room lamp", "candidates": CANDS, "logits": [0.0, -0.5, -9.0]}
        d = ok(b.post("/episodes/on-b/decide", json=body))
    assert [n["episode_id"] for n in d["neighbours"]] == ["from-a"]  # B indexed A's episode
    assert d["action"] == "go south"


GOOD = {"state": "hall", "candidates": ["a", "b"], "logits": [0.0, -1.0]}
BAD_DECIDES = {
    "state not a string": {**GOOD, "state": 5},
    "candidates a string": {**GOOD, "candidates": "a"},
    "logit as a string": {**GOOD, "logits": ["0.5", -1.0]},
    "empty candidates": {**GOOD, "candidates": [], "logits": []},
    "blank candidate": {**GOOD, "candidates": ["a", "  "]},
    "duplicate candidates": {**GOOD, "candidates": ["a", "a"]},
    "too few logits": {**GOOD, "logits": [0.0]},
    "too many logits": {**GOOD, "logits": [0.0, 1.0, 2.0]},
    "unknown field": {**GOOD, "logit": [0.0, 1.0]},
    "neither logits nor prompt": {"state": "hall", "candidates": ["a"]},
    "both logits and prompt": {**GOOD, "prompt": {"system": "s", "user": "u"}},
    "answer prefix ends with a space": {
        "state": "h",
        "candidates": ["a"],
        "prompt": {"system": "s", "user": "u", "answer_prefix": "A: "},
    },
    "over the configured candidate limit": {
        "state": "h",
        "candidates": [f"c{i}" for i in range(51)],
        "logits": [0.0] * 51,
    },
    "body is a list": [GOOD],
}
RAW_DECIDES = {
    "NaN logit": '{"state": "h", "candidates": ["a", "b"], "logits": [NaN, 0]}',
    "infinite logit": '{"state": "h", "candidates": ["a", "b"], "logits": [0, -Infinity]}',
    "overflowing logit": '{"state": "h", "candidates": ["a", "b"], "logits": [0, 1e999]}',
    "invalid JSON": '{"state": "h", "candidates": ["a"',
}


def assert_refused(resp: httpx.Response, status: int, *words: str) -> None:
    assert resp.status_code == status, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and detail
    for w in words:
        assert w in detail, detail


def test_bad_requests_get_a_4xx_with_a_message(client: httpx.Client) -> None:
    ok(client.post("/episodes", json={"episode_id": "e"}), 201)
    for name, body in BAD_DECIDES.items():
        resp = client.post("/episodes/e/decide", json=body)
        assert resp.status_code == 422, (name, resp.text)
        assert resp.json()["detail"].startswith(("invalid request", "51 candidates")), name
    for name, raw in RAW_DECIDES.items():
        resp = client.post(
            "/episodes/e/decide", content=raw, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 422, (name, resp.text)
    assert_refused(
        client.post("/episodes/e/decide", json=BAD_DECIDES["too few logits"]),
        422,
        "2 candidates but 1 logits",
    )
    assert_refused(
        client.post("/episodes/e/reward", json={"reward": 1.0}), 409, "must follow a decide"
    )
    assert_refused(
        client.post(
            "/episodes/e/reward",
            content='{"reward": NaN}',
            headers={"content-type": "application/json"},
        ),
        422,
    )
    assert_refused(client.post("/episodes/e/finish", json={"failed": "yes"}), 422, "failed")
    assert_refused(client.post("/episodes", json={"episode_id": "e"}), 409, "already open")
    assert_refused(client.post("/episodes", json={"episode_id": "bad id/../x"}), 422, "episode_id")
    assert_refused(client.post("/episodes", json={"task_id": 7}), 422, "task_id")
    prompt = {"state": "h", "candidates": ["a"], "prompt": {"system": "s", "user": "u"}}
    assert_refused(client.post("/episodes/e/decide", json=prompt), 409, "no language model")
    ok(client.post("/episodes/e/decide", json=GOOD))  # the episode survived all of that
    ok(client.post("/episodes/e/reward", json={"reward": 2}))
    assert_refused(client.post("/episodes/e/reward", json={"reward": 1.0}), 409, "rewarded already")


def test_unknown_episodes_and_routes_are_404(client: httpx.Client) -> None:
    for method, path, body in [
        ("POST", "/episodes/nope/decide", GOOD),
        ("POST", "/episodes/nope/reward", {"reward": 1.0}),
        ("POST", "/episodes/nope/finish", {}),
        ("DELETE", "/episodes/nope", None),
    ]:
        assert_refused(client.request(method, path, json=body), 404, "'nope' is not open")
    assert_refused(client.get("/no/such/route"), 404)
    assert_refused(client.get("/episodes/x/decide"), 405)


def test_oversized_payloads_are_413(client: httpx.Client, config: ServiceConfig) -> None:
    ok(client.post("/episodes", json={"episode_id": "e"}), 201)
    big = {"state": "x" * (config.max_body_bytes + 1), "candidates": ["a"], "logits": [0.0]}
    assert_refused(client.post("/episodes/e/decide", json=big), 413, "limit of 20000 bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"state": "'
        for _ in range(30):
            yield b"y" * 1000
        yield b'", "candidates": ["a"], "logits": [0]}'

    resp = client.post(
        "/episodes/e/decide", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_refused(resp, 413)
    ok(
        client.post(
            "/episodes/e/decide", json={"state": "small", "candidates": ["a"], "logits": [0.0]}
        )
    )


@pytest.mark.parametrize("on_expire", ["store", "drop"])
def test_a_vanished_client_s_episode_expires(tmp_path: Path, on_expire: str) -> None:
    config = make_config(
        tmp_path, episode_ttl_seconds=1.5, sweep_interval_seconds=0.1, on_expire=on_expire
    )
    with running(config) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            play(c, "kept", [("hall", [0.0, -1.0, -2.0], 1.0), ("yard", [0.0, -1.0, -2.0], 5.0)])
            kept = ok(c.post("/episodes/kept/finish"))["returns"]
            play(c, "gone", [("hall", [0.0, -1.0, -2.0], 3.0)])
            ok(
                c.post(
                    "/episodes/gone/decide",
                    json={"state": "attic", "candidates": ["a", "b"], "logits": [0.0, 1.0]},
                )
            )
        # the client has disconnected without finishing; only the background sweeper runs now
        with httpx.Client(base_url=url, timeout=30) as c:
            wait_until_none_open(c, "the episode never expired")
            stats = ok(c.get("/memory/stats"))
            assert_refused(c.post("/episodes/gone/reward", json={"reward": 1.0}), 404, "expired")
    episodes = stored_episodes(config)
    assert episodes["kept"] == kept  # finished episodes are intact
    if on_expire == "store":
        assert set(episodes) == {"kept", "gone"} and len(episodes["gone"]) == 2
        assert (stats["experiences"], stats["expired_stored"]) == (4, 1)
    else:
        assert set(episodes) == {"kept"}
        assert (stats["experiences"], stats["expired_dropped"]) == (2, 1)


def test_open_episodes_are_stored_at_shutdown(tmp_path: Path) -> None:
    config = make_config(tmp_path, on_expire="store")
    with running(config) as url, httpx.Client(base_url=url, timeout=30) as c:
        play(c, "open-at-exit", [("hall", [0.0, -1.0, -2.0], 1.0)])
    assert list(stored_episodes(config)) == ["open-at-exit"]


def test_the_server_s_model_scores_a_prompt(tmp_path: Path) -> None:
    config = make_config(tmp_path, model="scripted")
    with running(config) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert ok(c.get("/health"))["model"] == "scripted"
        eid = ok(c.post("/episodes"), 201)["episode_id"]
        body = {
            "state": "hall",
            "candidates": ["a", "b"],
            "prompt": {"system": "s", "user": "u", "answer_prefix": "Action:"},
        }
        d = ok(c.post(f"/episodes/{eid}/decide", json=body))
        assert d["action"] in ("a", "b") and d["llm_usage"]["calls"] == 1.0
        assert ok(c.post(f"/episodes/{eid}/finish", json={"failed": True}))["stored"] == 1


def test_an_unexpected_error_is_a_json_500_and_the_episode_survives(tmp_path: Path) -> None:
    def broken_model(app: Any) -> None:
        def score(*_: Any) -> None:
            raise RuntimeError("the model crashed")

        app.state.engine.model.score = score

    config = make_config(tmp_path, model="scripted")
    with running(config, broken_model) as url, httpx.Client(base_url=url, timeout=30) as c:
        play(c, "e", [("hall", [0.0, -1.0, -2.0], 1.0)])
        body = {"state": "yard", "candidates": ["a", "b"], "prompt": {"system": "s", "user": "u"}}
        resp = c.post("/episodes/e/decide", json=body)
        assert_refused(resp, 500, "internal error (RuntimeError)")
        ok(c.post("/episodes/e/decide", json={**body, "prompt": None, "logits": [0.0, 1.0]}))
        assert ok(c.post("/episodes/e/reward", json={"reward": 2.0}))["step"] == 1
        assert ok(c.post("/episodes/e/finish"))["total_reward"] == 3.0


def test_concurrent_clients(client: httpx.Client, config: ServiceConfig) -> None:
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            play(client, f"par-{i}", [(f"room {j}", [0.0, -1.0, -2.0], 1.0) for j in range(5)])
            ok(client.post(f"/episodes/par-{i}/finish"))
        except AssertionError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(stored_episodes(config)) == sorted(f"par-{i}" for i in range(6))
    assert ok(client.get("/memory/stats"))["experiences"] == 30


def test_openapi_lists_the_routes(client: httpx.Client) -> None:
    schema = ok(client.get("/openapi.json"))
    paths = schema["paths"]
    assert set(paths["/episodes"]) == {"post"}
    for action in ("decide", "reward", "finish"):
        assert "post" in paths[f"/episodes/{{episode_id}}/{action}"]
    assert "delete" in paths["/episodes/{episode_id}"]
    assert "get" in paths["/memory/stats"] and "get" in paths["/health"]
    decide = schema["components"]["schemas"]["DecideRequest"]["properties"]
    assert decide["candidates"]["minItems"] == 1 and decide["candidates"]["maxItems"] == 4096
