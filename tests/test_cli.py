"""The CLI through subprocess, as a user would call it (scripted model, real generated game)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def jitrl(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "jitrl", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_run_twice_continues_and_memory_commands(tmp_path):
    args = ["run", "--model", "scripted", "--episodes", "2", "--max-steps", "6"]
    first = jitrl(*args, cwd=tmp_path)
    assert "Episodes" in first.stdout and "score" in first.stdout
    out = tmp_path / "runs" / "latest"
    episodes = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert [e["index"] for e in episodes] == [0, 1]
    assert all(
        {"score", "steps", "reward", "llm_seconds", "memory_seconds"} <= e.keys() for e in episodes
    )
    decisions = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == sum(e["steps"] for e in episodes)
    d = decisions[-1]
    assert d["action"] in d["candidates"] and len(d["logits"]) == len(d["candidates"])
    assert d["advantages"] is not None and "neighbours" in d
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2

    again = jitrl(*args, cwd=tmp_path)  # second run: same store, same folder, continues
    episodes = (out / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in episodes] == [0, 1, 2, 3]
    best = max(json.loads(x)["score"] for x in episodes)
    assert f"max score {best:g}" in again.stdout and "of the first 1 episodes" in again.stdout

    stats = jitrl("memory", "stats", "jitrl-memory.sqlite", cwd=tmp_path)
    steps = sum(json.loads(x)["steps"] for x in episodes)
    assert str(steps) in stats.stdout
    jitrl("memory", "export", "dump.jsonl", cwd=tmp_path)
    lines = (tmp_path / "dump.jsonl").read_text().splitlines()
    assert len(lines) == steps
    jitrl("memory", "import", "dump.jsonl", "--memory", "copy.sqlite", cwd=tmp_path)
    again = jitrl("memory", "stats", "copy.sqlite", cwd=tmp_path)
    assert str(steps) in again.stdout


def test_run_refuses_a_folder_another_process_is_playing(tmp_path):
    from filelock import FileLock

    out = tmp_path / "busy"
    out.mkdir()
    with FileLock(out / ".lock"):
        proc = jitrl("run", "--model", "scripted", "--episodes", "1", "--max-steps", "3",
                     "--out", str(out), cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "being played by another jitrl process" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert not (out / "episodes.jsonl").exists()
    jitrl("run", "--model", "scripted", "--episodes", "1", "--max-steps", "3", "--out", str(out),
          cwd=tmp_path)  # fmt: skip
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 1


def test_learning_line_compares_the_first_and_last_windows():
    from jitrl.cli.run import learning_line
    from jitrl.running.records import EpisodeResult

    def result(i: int, score: float) -> EpisodeResult:
        return EpisodeResult(
            i, f"e{i}", "t", "jitrl", 1, score, 5, score, False, False, 1, 0, 0, 0, 0, 0
        )

    scores = [0, 0, 1, 0, 2, 3, 1, 3, 4, 2, 5, 4, 3, 4, 5, 3]
    line = learning_line([result(i, s) for i, s in enumerate(scores)])
    assert line == (
        "max score 5 (episode 10); mean score of the first 5 episodes 0.60, of the last 5 3.80 (up)"
    )
    assert learning_line([result(0, 1.0)]) == "max score 1 (episode 0)"
    assert learning_line([]) == "no episode played"


def test_static_agent_writes_no_memory(tmp_path):
    jitrl(
        "run",
        "--model",
        "scripted",
        "--agent",
        "static",
        "--episodes",
        "1",
        "--max-steps",
        "3",
        "--out",
        "static",
        cwd=tmp_path,
    )
    assert not (tmp_path / "jitrl-memory.sqlite").exists()
    row = json.loads((tmp_path / "static" / "decisions.jsonl").read_text().splitlines()[0])
    assert row["advantages"] is None and row["logits"] == row["base_logits"]


def test_clear_errors(tmp_path):
    bad_agent = jitrl("run", "--agent", "oracle", "--model", "scripted", cwd=tmp_path, check=False)
    assert bad_agent.returncode == 2 and "unknown agent" in bad_agent.stderr + bad_agent.stdout
    (tmp_path / "notes.txt").write_text("not a database")
    bad_store = jitrl("memory", "stats", "notes.txt", cwd=tmp_path, check=False)
    assert bad_store.returncode == 2 and "notes.txt" in bad_store.stderr
    missing = jitrl(
        "run", "--env", "jericho:/no/such/game.z5", "--model", "scripted", cwd=tmp_path, check=False
    )
    assert missing.returncode != 0 and "game.z5" in missing.stdout + missing.stderr


def test_migrate_explain_and_report(tmp_path):
    args = ["run", "--model", "scripted", "--episodes", "2", "--max-steps", "4"]
    jitrl(*args, "--memory", "a.sqlite", "--out", "r", cwd=tmp_path)
    out = jitrl("memory", "migrate", "a.sqlite", "b.sqlite", cwd=tmp_path).stdout
    assert "imported 2 episodes" in out
    again = jitrl("memory", "migrate", "a.sqlite", "b.sqlite", cwd=tmp_path).stdout
    assert "imported 0 episodes" in again and "skipped 2 episodes" in again
    shown = jitrl("explain", "r", "--episode", "1", "--step", "0", cwd=tmp_path).stdout
    decision = json.loads((tmp_path / "r" / "decisions.jsonl").read_text().splitlines()[4])
    assert decision["episode"] == 1 and decision["step"] == 0
    assert decision["action"] in shown
    missing = jitrl("explain", "r", "--episode", "9", cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "episode 9" in missing.stderr


def test_diagnose_tells_who_predicted_outcomes(tmp_path):
    args = ["run", "--model", "scripted", "--episodes", "3", "--max-steps", "4"]
    jitrl(*args, "--memory", "a.sqlite", "--out", "r", cwd=tmp_path)
    out = jitrl("diagnose", "r", "--window", "1", cwd=tmp_path).stdout
    assert "ρ memory" in out and "model weight" in out
    assert "0-0" in out and "2-2" in out and "commonest kind" in out and "memory-led" in out
    readings = ("Memory predicted", "The model predicted", "Neither", "Too few", "No model")
    assert any(line.startswith(readings) for line in out.splitlines())
    missing = jitrl("diagnose", "nowhere", cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "decisions.jsonl not found" in missing.stderr
    bad = jitrl("report", "nowhere", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "compare.json" in bad.stderr


def test_compare_cli_reports_every_agent(tmp_path):
    proc = jitrl("compare", "--env", "textworld:1", "--seeds", "2", "--episodes", "2",
                 "--max-steps", "4", "--model", "scripted", "--workers", "2",
                 "--price", "0.5,1.5", "--out", "cmp", cwd=tmp_path)  # fmt: skip
    for agent in ("static", "jitrl", "icl", "qlearn", "random"):
        assert agent in proc.stdout
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    cost = summary["envs"]["tw1"]["jitrl"]["cost"]
    assert cost["usd_per_episode"] is not None and cost["usd_per_episode"] > 0
    refused = jitrl("compare", "--env", "textworld:1", "--max-steps", "5", "--model", "scripted",
                    "--out", "cmp", cwd=tmp_path, check=False)  # fmt: skip
    assert refused.returncode == 2 and "max_steps" in refused.stderr


def test_serve_refuses_a_bad_store(tmp_path):
    (tmp_path / "x.sqlite").write_text("not a database")
    proc = jitrl("serve", "--memory", "x.sqlite", "--port", "8765", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "error" in proc.stderr


def test_continual_gives_its_environments_the_key_settings(tmp_path: Path) -> None:
    pytest.importorskip("textworld_express")
    base = [sys.executable, "-m", "jitrl", "continual", "--env", "twx:coin,twx:mapreader"]
    base += ["--episodes", "1", "--max-steps", "2", "--seeds", "1", "--test-episodes", "1"]
    base += ["--window", "1", "--model", "uniform", "--threads", "1"]
    keys = {}
    for name, flag in (("view", "--view-key"), ("plain", "--no-view-key")):
        out = tmp_path / name
        proc = subprocess.run(
            [*base, flag, "--out", str(out)], capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr
        decisions = sorted(out.glob("seed1/*/decisions.jsonl"))
        assert decisions
        keys[name] = {
            json.loads(line)["state"]["key"] is None
            for path in decisions
            for line in path.read_text().splitlines()
        }
    assert keys == {"view": {False}, "plain": {True}}
