"""Comparisons: suites, settings, parallel jobs, warm starts and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from jitrl.analysis.report import render_report
from jitrl.envs.suites import expand_envs
from jitrl.memory import open_store
from jitrl.memory.jsonl import group_episodes
from jitrl.method.config import JitRLConfig, PolicyConfig
from jitrl.running.compare import (
    Price,
    check_compare,
    compare_settings,
    make_jobs,
    run_jobs,
    write_settings,
)
from jitrl.running.executors import ExecutionConfig
from jitrl.running.spec import CompareSpec

pytest.importorskip("textworld")


def test_expand_envs_suites(tmp_path):
    for name in ("b.z5", "a.z8", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    envs = expand_envs(f"jericho:{tmp_path}")
    assert envs == {"a": f"jericho:{tmp_path / 'a.z8'}", "b": f"jericho:{tmp_path / 'b.z5'}"}
    assert expand_envs("textworld:3", game_seed=7) == {
        "tw7": "textworld:7",
        "tw8": "textworld:8",
        "tw9": "textworld:9",
    }
    assert expand_envs("textworld, jericho:zork1") == {
        "tw1": "textworld:1",
        "zork1": "jericho:zork1",
    }


@pytest.mark.parametrize("spec", ["textworld:0", "textworld:x", "atari:pong", "jericho:"])
def test_expand_envs_rejects(spec):
    with pytest.raises(ValueError, match="suite"):
        expand_envs(spec)


def test_expand_envs_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no Jericho game files"):
        expand_envs(f"jericho:{tmp_path}")


def test_price_parse():
    assert Price.parse("0.15,0.6") == Price(0.15, 0.6)
    assert Price.parse("2") == Price(2.0, 2.0)
    for bad in ("x", "1,2,3", "-1"):
        with pytest.raises(ValueError):
            Price.parse(bad)


def test_config_validation(tmp_path):
    one = ExecutionConfig()
    with pytest.raises(ValueError, match="unknown agent"):
        check_compare(CompareSpec(agents="jitrl,oracle"), one)
    with pytest.raises(ValueError, match="episodes"):
        CompareSpec(episodes=0)
    with pytest.raises(FileNotFoundError, match="warm-from"):
        check_compare(CompareSpec(warm_from=str(tmp_path / "none.sqlite")), one)
    with pytest.raises(ValueError, match="agents"):
        CompareSpec(agents=" , ")


def _prepare(spec: CompareSpec, out: Path, workers: int = 2):
    execution = ExecutionConfig(workers=workers)
    envs = check_compare(spec, execution)
    write_settings(compare_settings(spec, envs, execution), out)
    return make_jobs(spec, envs, out, threads=1), execution


def test_settings_of_another_experiment_are_refused(tmp_path):
    _prepare(CompareSpec(max_steps=10), tmp_path)
    _prepare(CompareSpec(max_steps=10, seeds=4), tmp_path)
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["seeds"] == [1, 2, 3, 4]
    assert saved["method"]["policy"]["beta"] == JitRLConfig().policy.beta  # asdict, not repr
    with pytest.raises(ValueError, match="max_steps"):
        _prepare(CompareSpec(max_steps=11), tmp_path)


def _config(**kw):
    base = dict(
        env="textworld:1",
        agents="static,jitrl,icl,qlearn,random",
        seeds=2,
        episodes=3,
        max_steps=8,
        model="scripted",
    )
    return CompareSpec(**{**base, **kw})


def test_compare_runs_every_agent_and_reports(tmp_path):
    config = _config()
    jobs, execution = _prepare(config, tmp_path)
    assert len(jobs) == 10
    seen = []
    errors = run_jobs(jobs, execution, on_job=seen.append)
    assert errors == []
    assert sorted((r["agent"], r["seed"]) for r in seen) == sorted(
        (a, s) for a in config.agent_names for s in (1, 2)
    )
    assert all(len(r["scores"]) == 3 for r in seen)
    summary = render_report(tmp_path)
    env = summary["envs"]["tw1"]
    assert set(env) == set(config.agent_names)
    for agent in config.agent_names:
        assert env[agent]["final_window"]["n"] == 2
    # only the memory agents keep a store; the LLM agents made model calls, the others none
    for agent in ("jitrl", "icl", "qlearn"):
        assert (tmp_path / "runs" / "tw1" / agent / "seed1" / "memory.sqlite").exists()
    for agent in ("static", "random"):
        assert not (tmp_path / "runs" / "tw1" / agent / "seed1" / "memory.sqlite").exists()
    assert env["random"]["cost"]["llm_calls_per_episode"] == 0
    assert env["static"]["cost"]["llm_calls_per_episode"] > 0
    # rerunning finds nothing to do
    assert run_jobs(_prepare(config, tmp_path)[0], execution, on_job=seen.append) == []
    assert len(seen) == 10


def test_warm_start_copies_memory_and_counts_foreign_neighbours(tmp_path):
    cold = _config(agents="jitrl", seeds=1)
    assert run_jobs(*_prepare(cold, tmp_path / "cold", workers=1)) == []
    # the same game's experience, relabelled as another task's: states match across tasks
    source = open_store(tmp_path / "cold/runs/tw1/jitrl/seed1/memory.sqlite", create=False)
    other = tmp_path / "other.sqlite"
    store = open_store(other)
    for episode in group_episodes(source).values():
        store.add_episode(
            [replace(e, task_id="other-task", episode_id="x" + e.episode_id) for e in episode]
        )
    stored = len(store)
    source.close()
    store.close()
    warm = _config(agents="jitrl", seeds=1, warm_from=str(other))
    assert run_jobs(*_prepare(warm, tmp_path / "warm", workers=1)) == []
    path = tmp_path / "warm/runs/tw1/jitrl/seed1/episodes.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["memory_size"] == stored + rows[0]["steps"]
    assert rows[0]["foreign_neighbours"] > 0
    summary = render_report(tmp_path / "warm")
    share = summary["envs"]["tw1"]["jitrl"]["foreign_neighbour_share"]
    assert share is not None and 0.0 < share <= 1.0
    # a cold start retrieves nothing from other tasks
    assert render_report(tmp_path / "cold")["envs"]["tw1"]["jitrl"]["foreign_neighbour_share"] in (
        0.0,
        None,
    )


def test_failed_job_is_reported_and_others_finish(tmp_path):
    config = _config(env="jericho:/nonexistent/game.z5,textworld:1", agents="random", seeds=1)
    errors = run_jobs(*_prepare(config, tmp_path, workers=1))
    assert len(errors) == 1 and "game/random/seed1" in errors[0]
    assert (tmp_path / "runs/tw1/random/seed1/episodes.jsonl").read_text().count("\n") == 3


def _lines(folder: Path) -> dict[str, list[str]]:
    return {
        str(p.relative_to(folder)): p.read_text().splitlines()
        for p in sorted(folder.glob("runs/*/*/*/episodes.jsonl"))
    }


@pytest.mark.slow
def test_cli_compare_killed_midway_resumes(tmp_path):
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "jitrl", "compare", "--env", "textworld:1", "--seeds", "2",
           "--episodes", "6", "--max-steps", "15", "--model", "scripted", "--workers", "2",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and sum(len(v) for v in _lines(out).values()) < 8:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _lines(out)
    assert 0 < sum(len(v) for v in before.values()) < 60  # killed midway
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _lines(out)
    assert len(after) == 10 and all(len(v) == 6 for v in after.values())
    for name, rows in before.items():  # finished episodes were kept, not replayed
        assert after[name][: len(rows)] == rows
    for name, rows in after.items():
        assert [json.loads(r)["index"] for r in rows] == list(range(6)), name
    report = (out / "report.md").read_text()
    for agent in ("static", "jitrl", "icl", "qlearn", "random"):
        assert agent in report
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_drops_the_decisions_of_an_episode_cut_short(tmp_path):
    from jitrl.running.run_folder import RunWriter

    rows = [(0, 0), (0, 1), (1, 0), (1, 1)]  # episode 1 never finished; its last line is cut
    lines = [json.dumps({"episode": e, "step": s, "pad": "x" * 3000}) for e, s in rows]
    (tmp_path / "decisions.jsonl").write_text("\n".join(lines) + '\n{"episo')
    finished = dict(index=0, episode_id="a", task_id="t", agent="x", seed=1, score=0.0, steps=2,
                    reward=0.0, won=False, lost=False, wall_seconds=0, llm_seconds=0,
                    memory_seconds=0, env_seconds=0, prompt_tokens=0, prefill_tokens=0)  # fmt: skip
    (tmp_path / "episodes.jsonl").write_text(json.dumps(finished) + "\n")
    assert RunWriter(tmp_path, {}).next_index == 1
    kept = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert [json.loads(line)["episode"] for line in kept] == [0, 0]
    before = (tmp_path / "decisions.jsonl").read_bytes()
    RunWriter(tmp_path, {})  # nothing left to drop: the file is untouched
    assert (tmp_path / "decisions.jsonl").read_bytes() == before


def test_sampling_makes_seeds_differ_and_is_pinned(tmp_path):
    first = PolicyConfig(tie_break="first")
    greedy = _config(agents="jitrl", seeds=2, episodes=2, method=JitRLConfig(policy=first))
    sample = replace(greedy, method=JitRLConfig(policy=PolicyConfig(selection="sample")))
    for name, cfg in (("greedy", greedy), ("sample", sample)):
        assert run_jobs(*_prepare(cfg, tmp_path / name, workers=1)) == []

    def actions(name: str, seed: int) -> list[str]:
        path = tmp_path / name / "runs" / "tw1" / "jitrl" / f"seed{seed}" / "decisions.jsonl"
        return [json.loads(line)["action"] for line in path.read_text().splitlines()]

    assert actions("greedy", 1) == actions("greedy", 2)  # a deterministic game, model and ties
    assert actions("sample", 1) != actions("sample", 2)
    with pytest.raises(ValueError, match="method"):
        _prepare(sample, tmp_path / "greedy")
    with pytest.raises(ValueError, match="selection"):
        PolicyConfig(selection="best")  # type: ignore[arg-type]
