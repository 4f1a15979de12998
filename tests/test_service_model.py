"""The service's language model: its failures are answers a client can act on (502 or 503),
never a 500, and the episode stays usable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from jitrl.llm.base import LLMError  # noqa: E402
from tests.test_service import assert_refused, make_config, ok, running  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("transient", "status", "said"),
    [(True, 503, "unavailable, retry"), (False, 502, "the language model failed")],
)
def test_a_failing_language_model_is_a_502_or_503(
    tmp_path: Path, transient: bool, status: int, said: str
) -> None:
    def failing_model(app: Any) -> None:
        def score(*_: Any) -> None:
            raise LLMError("upstream said no", status=500, transient=transient)

        app.state.engine.model.score = score

    config = make_config(tmp_path, model="scripted")
    with running(config, failing_model) as url, httpx.Client(base_url=url, timeout=30) as c:
        ok(c.post("/episodes", json={"episode_id": "e"}), 201)
        body = {"state": "yard", "candidates": ["a", "b"], "prompt": {"system": "s", "user": "u"}}
        assert_refused(c.post("/episodes/e/decide", json=body), status, said)
        ok(c.post("/episodes/e/decide", json={**body, "prompt": None, "logits": [0.0, 1.0]}))
