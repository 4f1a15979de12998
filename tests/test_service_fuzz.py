"""Fuzzing the HTTP service from its own OpenAPI schema (schemathesis): no request, valid or
not, alone or in an open -> decide -> reward -> finish sequence, gets a 5xx answer.

The server runs with API keys, a low reward bound and the default store, on loopback; the
stateless run sends at least 500 generated requests per operation (schema-valid ones, then
invalid ones), half of them aimed at an episode that is open and has a decision.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from tests.test_service import make_config, running  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

KEY = "fuzz-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES = int(os.environ.get("JITRL_FUZZ_EXAMPLES", "500"))
"""Generated requests per operation and generation mode (fewer for a quick look)."""
OPERATIONS = [
    "POST /episodes",
    "POST /episodes/{episode_id}/decide",
    "POST /episodes/{episode_id}/reward",
    "POST /episodes/{episode_id}/finish",
    "DELETE /episodes/{episode_id}",
    "GET /memory/stats",
    "GET /health",
]
EPISODE_ID = re.compile(r"[A-Za-z0-9][\w.:-]{0,127}")
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class Live:
    """The served application, its schema and an HTTP session with the key."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.schema = schemathesis.openapi.from_dict(app.openapi())
        self.session = requests.Session()
        self.session.headers.update(AUTH)

    def open_with_a_decision(self) -> str:
        """A fresh episode with one decision awaiting its reward."""
        eid = uuid.uuid4().hex
        opened = self.session.post(f"{self.url}/episodes", json={"episode_id": eid})
        assert opened.status_code == 201, opened.text
        body = {"state": "hall", "candidates": ["a", "b"], "logits": [0.0, -1.0]}
        decided = self.session.post(f"{self.url}/episodes/{eid}/decide", json=body)
        assert decided.status_code == 200, decided.text
        return eid


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    config = make_config(
        tmp, api_keys=KEY, max_abs_reward=1e6, max_open_episodes=100_000, max_candidates=64
    )
    apps: list[Any] = []
    with running(config, apps.append) as url:
        live = Live(url, apps[0])
        yield live
        live.session.close()


def _fuzz(live: Live, label: str, mode: GenerationMode) -> int:
    """Run ``EXAMPLES`` generated requests of one operation; returns how many were sent."""
    operation = live.schema.find_operation_by_label(label)
    assert operation is not None, label
    sent = [0]

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode), aim=st.booleans())
    def run(case: Any, aim: bool) -> None:
        if aim and case.path_parameters and "episode_id" in case.path_parameters:
            case.path_parameters["episode_id"] = live.open_with_a_decision()
        case.call_and_validate(
            base_url=live.url, session=live.session, headers=AUTH, checks=[not_a_server_error]
        )
        sent[0] += 1

    run()
    return sent[0]


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_generated_request_gets_a_5xx(live: Live, label: str) -> None:
    sent = sum(_fuzz(live, label, mode) for mode in GenerationMode)
    assert sent >= (2 if label.startswith("GET") else EXAMPLES)


def test_no_sequence_of_requests_gets_a_5xx(live: Live) -> None:
    machine = live.schema.as_state_machine()
    steps: dict[str, int] = {}

    class Machine(machine):  # type: ignore[misc, valid-type]
        def before_call(self, case: Any) -> None:
            # a fresh id for every opened episode, so that an id drawn twice is not refused the
            # second time (the server's answers must not depend on earlier scenarios)
            body = case.body
            if case.operation.label == "POST /episodes" and isinstance(body, dict):
                eid = body.get("episode_id")
                if isinstance(eid, str) and EPISODE_ID.fullmatch(eid):
                    body["episode_id"] = uuid.uuid4().hex

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live.url, "session": live.session, "headers": AUTH}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            steps[case.operation.label] = steps.get(case.operation.label, 0) + 1
            case.validate_response(response, checks=[not_a_server_error])

    Machine.run(
        settings=settings(
            max_examples=200,
            stateful_step_count=8,
            phases=[Phase.generate],
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    for label in OPERATIONS[:4]:  # every episode route was reached through the links
        assert steps.get(label, 0) > 0, steps
