"""The Ray backend: a local Ray here; the same episodes and summary as worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from jitrl.running.executors import RAY_HINT, ExecutionConfig, RayExecutor, open_executor

pytestmark = pytest.mark.slow


def _fails(x: int) -> int:
    if x == 2:
        raise ValueError("two is bad")
    return x * 10


def test_missing_ray_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match="jitrl\\[ray\\]"):
        open_executor(ExecutionConfig(backend="ray"))
    assert "pip install" in RAY_HINT


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_executor_returns_results_and_task_errors(local_ray):
    config = ExecutionConfig(backend="ray", workers=2, poll_seconds=0.5)
    with closing(RayExecutor(config)) as ex:
        handles = [ex.submit(_fails, i) for i in range(5)]
        got = {handles.index(h): r for h, r in ex.as_completed(handles) if h is not None}
    assert {i: got[i] for i in (0, 1, 3, 4)} == {0: 0, 1: 10, 3: 30, 4: 40}
    assert isinstance(got[2], ValueError) and "two is bad" in str(got[2])
    import ray

    assert ray.is_initialized()  # an executor leaves a Ray it did not start running


def _jitrl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "jitrl", *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _actions(folder: Path) -> dict[str, list[tuple[int, int, str]]]:
    out = {}
    for path in sorted(folder.rglob("decisions.jsonl")):
        with path.open() as fh:
            rows = [json.loads(line) for line in fh]
        out[str(path.relative_to(folder))] = [(d["episode"], d["step"], d["action"]) for d in rows]
    return out


def _shape(value: object) -> object:
    """The structure of a JSON value (keys and types), without the numbers."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__ if value is not None else None


def test_compare_on_ray_matches_the_process_backend(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("textworld")
    common = ["compare", "--env", "textworld:1", "--agents", "static,jitrl,random"]
    common += ["--episodes", "3", "--max-steps", "8", "--seeds", "2", "--model", "scripted"]
    _jitrl(*common, "--workers", "2", "--out", "proc", cwd=tmp_path)
    done = _jitrl(*common, "--workers", "2", "--backend", "ray", "--out", "ray", cwd=tmp_path)
    assert "tw1" in done.stdout and "final window" in done.stdout
    proc = json.loads((tmp_path / "proc" / "summary.json").read_text())
    ray = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert _shape(ray) == _shape(proc)
    for agent in ("static", "jitrl", "random"):
        assert (
            ray["envs"]["tw1"][agent]["final_window"] == proc["envs"]["tw1"][agent]["final_window"]
        )
    assert _actions(tmp_path / "ray" / "runs") == _actions(tmp_path / "proc" / "runs")
    assert len(_actions(tmp_path / "ray" / "runs")) == 6
    settings = json.loads((tmp_path / "ray" / "compare.json").read_text())
    assert settings["execution"]["backend"] == "ray"


def test_run_on_ray_workers_plays_what_worker_processes_play(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("textworld")
    common = ["run", "--env", "textworld:1", "--agent", "jitrl", "--episodes", "4"]
    common += ["--max-steps", "8", "--model", "scripted", "--workers", "2"]
    for backend in ("process", "ray"):
        _jitrl(
            *common,
            "--backend",
            backend,
            "--memory",
            f"{backend}.sqlite",
            "--out",
            backend,
            cwd=tmp_path,
        )
    assert _actions(tmp_path / "ray") == _actions(tmp_path / "process")
    episodes = (tmp_path / "ray" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(e)["index"] for e in episodes] == [0, 1, 2, 3]
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    execution = summary["settings"]["execution"]
    assert execution["backend"] == "ray" and execution["workers"] == 2
