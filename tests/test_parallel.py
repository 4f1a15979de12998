"""One memory shared by many workers: learner sync, parallel runs, executors, per-job stores."""

from __future__ import annotations

import json
import shutil
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from jitrl.memory import open_store
from jitrl.memory.base import order_by_episode
from jitrl.method.config import JitRLConfig
from jitrl.method.learner import JitRL
from jitrl.method.types import Experience, State
from jitrl.running.compare import (
    check_compare,
    compare_settings,
    make_jobs,
    run_job,
    run_jobs,
    write_settings,
)
from jitrl.running.executors import ExecutionConfig, ProcessExecutor
from jitrl.running.rounds import run_parallel
from jitrl.running.run_folder import RunWriter
from jitrl.running.spec import CompareSpec, RunSpec


def _episode(jit: JitRL, episode_id: str, state: str, action: str, reward: float) -> None:
    ep = jit.episode(task_id="t", episode_id=episode_id)
    ep.decide(state, [action, f"not {action}"], logits=[0.0, -1.0])
    ep.reward(reward)
    ep.finish()


def test_shared_learner_leaves_storing_to_the_coordinator_and_syncs(tmp_path):
    path = tmp_path / "m.sqlite"
    a = JitRL(path)  # an ordinary learner: stores and indexes its own episodes
    b = JitRL(path, shared=True)  # a worker of a parallel run
    _episode(a, "e1", "hall with a door", "open door", 1.0)
    ep = b.episode(task_id="t", episode_id="e2")
    ep.decide("hall with a door", ["wait", "not wait"], logits=[0.0, -1.0])
    ep.reward(-1.0)
    records = ep.finish()
    assert [r.episode_id for r in records] == ["e2"]
    assert b.store.episode_ids() == ["e1"] and len(b.index) == 0  # nothing stored by b
    b.store.add_episode(records)  # what jitrl.running.rounds's coordinator does, in episode order
    assert b.sync(["e2", "e1"]) == 2
    assert b.sync() == 0  # nothing new
    assert a.sync() == 1  # a sees e2 now (it had indexed its own e1 at once)
    found = b.index.neighbours(State("hall with a door"))
    got = {nb.experience.action: nb.experience.ret for nb in found}
    assert set(got) == {"open door", "wait"} and got["open door"] > 0 > got["wait"]
    a.close()
    b.close()


def test_learner_loads_only_listed_episodes(tmp_path):
    path = tmp_path / "m.sqlite"
    writer = JitRL(path)
    for i in range(3):
        _episode(writer, f"e{i}", f"room {i}", "look", float(i))
    assert len(writer.index) == 3  # an unshared learner indexes its own episodes at once
    writer.close()
    jit = JitRL(path, episodes=["e2", "e0", "missing"], shared=True)
    found = {
        nb.experience.episode_id
        for i in range(3)
        for nb in jit.index.neighbours(State(f"room {i}"))
    }
    assert found == {"e0", "e2"}
    jit.close()


def test_store_reads_episodes_in_the_order_asked(tmp_path):
    with closing(open_store(tmp_path / "m.sqlite")) as store:
        for i in range(3):
            store.add_episode(
                [Experience(State(f"s{i}{t}"), "a", 0.0, f"e{i}", t, "t") for t in range(2)]
            )
        assert store.episode_ids() == ["e0", "e1", "e2"]
        got = [(r.episode_id, r.step) for r in store.experiences_of(["e2", "x", "e0"])]
        assert got == [("e2", 0), ("e2", 1), ("e0", 0), ("e0", 1)]
        assert store.experiences_of([]) == []
        # the generic path (a scan) gives the same answer
        assert order_by_episode(store, ["e2", "x", "e0"]) == store.experiences_of(["e2", "e0"])


def test_execution_config_validates():
    with pytest.raises(ValueError, match="backend"):
        ExecutionConfig(backend="threads")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers"):
        ExecutionConfig(workers=0)
    with pytest.raises(ValueError, match="ray"):
        ExecutionConfig(ray_address="ray://x:10001")


def _fails(x: int) -> int:
    if x == 2:
        raise ValueError("two is bad")
    return x * 10


def test_process_executor_returns_results_and_errors():
    with closing(ProcessExecutor(ExecutionConfig(workers=2, poll_seconds=0.5))) as ex:
        handles = [ex.submit(_fails, i) for i in range(4)]
        got = {handles.index(h): r for h, r in ex.as_completed(handles) if h is not None}
    assert {i: got[i] for i in (0, 1, 3)} == {0: 0, 1: 10, 3: 30}
    assert isinstance(got[2], ValueError) and "two is bad" in str(got[2])


def _spec(memory: Path | str, agent: str = "jitrl") -> RunSpec:
    return RunSpec(
        env="textworld:1",
        agent=agent,
        model="scripted",
        memory=str(memory),
        max_steps=8,
        seed=1,
        method=JitRLConfig(),
    )


def _compare(spec: CompareSpec, out: Path, workers: int = 2) -> tuple[list, ExecutionConfig]:
    execution = ExecutionConfig(workers=workers)
    envs = check_compare(spec, execution)
    write_settings(compare_settings(spec, envs, execution), out)
    return make_jobs(spec, envs, out, threads=1), execution


def _decisions(folder: Path) -> list[dict]:
    with (folder / "decisions.jsonl").open() as fh:
        return [json.loads(line) for line in fh]


def test_parallel_run_rounds_share_memory_deterministically(tmp_path):
    pytest.importorskip("textworld")
    runs = []
    for name in ("a", "b"):
        spec = _spec(tmp_path / f"{name}.sqlite")
        writer = RunWriter(tmp_path / name, {})
        results = run_parallel(
            spec,
            writer,
            episodes=5,
            execution=ExecutionConfig(workers=2, poll_seconds=0.5),
            threads=1,
        )
        assert [r.index for r in results] == [0, 1, 2, 3, 4]
        runs.append(_decisions(tmp_path / name))
        with closing(open_store(tmp_path / f"{name}.sqlite")) as store:
            ids = store.episode_ids()
        assert len(ids) == 5 and len(set(ids)) == 5  # every episode stored once
    strip = [[(d["episode"], d["step"], d["action"]) for d in run] for run in runs]
    assert strip[0] == strip[1]  # the same episodes, whichever worker played what
    # an episode of round r (episodes 2r, 2r+1) retrieves only from earlier rounds or itself
    for d in runs[0]:
        first_of_round = d["episode"] - d["episode"] % 2
        for nb in d["neighbours"]:
            index = int(nb["episode_id"].rsplit("-", 1)[1])
            assert index < first_of_round or index == d["episode"]
    assert any(d["neighbours"] for d in runs[0] if d["episode"] >= 2)


def test_a_failed_round_stores_nothing_after_the_failure_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("textworld")
    import jitrl.running.rounds as parallel

    play = parallel._Worker.play

    def failing(self, task):  # type: ignore[no-untyped-def]
        if task.index == 2:
            raise OSError("model server went away")
        return play(self, task)

    monkeypatch.setattr(parallel._Worker, "play", failing)  # forked workers inherit it
    spec, execution = _spec(tmp_path / "m.sqlite"), ExecutionConfig(workers=2, poll_seconds=0.5)
    with pytest.raises(RuntimeError, match="episode 2 failed"):
        run_parallel(
            spec, RunWriter(tmp_path / "run", {}), episodes=4, execution=execution, threads=1
        )
    with closing(open_store(tmp_path / "m.sqlite")) as store:
        ids = store.episode_ids()
    written = [r.episode_id for r in RunWriter(tmp_path / "run", {}).results]
    assert ids == written and len(ids) == 2  # episode 3 finished but was not stored
    monkeypatch.setattr(parallel._Worker, "play", play)
    writer = RunWriter(tmp_path / "run", {})
    run_parallel(spec, writer, episodes=2, execution=execution, threads=1)
    with closing(open_store(tmp_path / "m.sqlite")) as store:
        assert store.episode_ids() == [r.episode_id for r in writer.results]
    assert [r.index for r in writer.results] == [0, 1, 2, 3]


def test_parallel_run_workers_share_one_postgres_memory(tmp_path, pg_url):
    pytest.importorskip("textworld")
    sqlite_writer = RunWriter(tmp_path / "sqlite", {})
    pg_writer = RunWriter(tmp_path / "pg", {})
    execution = ExecutionConfig(workers=2, poll_seconds=0.5)
    run_parallel(
        _spec(tmp_path / "m.sqlite"), sqlite_writer, episodes=4, execution=execution, threads=1
    )
    run_parallel(_spec(pg_url), pg_writer, episodes=4, execution=execution, threads=1)
    with closing(open_store(pg_url)) as store:
        ids = store.episode_ids()
    assert sorted(ids) == sorted(r.episode_id for r in pg_writer.results) and len(ids) == 4
    assert _actions(tmp_path / "pg") == _actions(tmp_path / "sqlite")


def test_parallel_run_refuses_sequential_agents(tmp_path):
    two = ExecutionConfig(workers=2)
    with pytest.raises(ValueError, match="1 worker"):
        run_parallel(
            _spec(tmp_path / "m.sqlite", agent="qlearn"),
            RunWriter(tmp_path, {}),
            episodes=2,
            execution=two,
            threads=1,
        )


def test_compare_jobs_keep_their_own_schema_in_one_postgres_database(tmp_path, pg_url):
    pytest.importorskip("textworld")
    base = dict(env="textworld:1", agents="jitrl", seeds=2, episodes=2, max_steps=6)
    sqlite_cfg = CompareSpec(**base, model="scripted")  # type: ignore[arg-type]
    pg_cfg = CompareSpec(**base, model="scripted", memory=pg_url)  # type: ignore[arg-type]
    assert run_jobs(*_compare(sqlite_cfg, tmp_path / "sqlite")) == []
    pg_jobs, execution = _compare(pg_cfg, tmp_path / "pg")
    assert run_jobs(pg_jobs, execution) == []
    for job in _compare(pg_cfg, tmp_path / "pg")[0]:
        with closing(job.open_store()) as store:
            assert len(store.episode_ids()) == 2  # this job's episodes only
        folder = Path(job.folder)
        twin = tmp_path / "sqlite" / folder.relative_to(tmp_path / "pg")
        assert _actions(folder) == _actions(twin)  # same play as with per-job SQLite files
    settings = (tmp_path / "pg" / "compare.json").read_text()
    assert "password" not in settings and json.loads(settings)["id"]
    # the output deleted and the comparison run again: new stores, not the old memory
    old = _compare(pg_cfg, tmp_path / "pg")[0][0]
    shutil.rmtree(tmp_path / "pg")
    again, execution = _compare(pg_cfg, tmp_path / "pg")
    assert again[0].comparison != old.comparison
    assert run_jobs(again, execution) == []
    with closing(again[0].open_store()) as store:
        assert len(store.episode_ids()) == 2


def test_a_job_refuses_a_store_that_holds_another_run(tmp_path, pg_url):
    pytest.importorskip("textworld")
    cfg = CompareSpec(
        env="textworld:1", agents="jitrl", seeds=1, episodes=1, max_steps=4,
        model="scripted", memory=pg_url,
    )  # fmt: skip
    job = replace(_compare(cfg, tmp_path)[0][0], comparison="fixed-id")
    with closing(job.open_store()) as store:
        store.add_episode([Experience(State("s"), "a", 0.0, "old-run", 0, "t")])
    with pytest.raises(RuntimeError, match="another run"):
        run_job(job)


def _actions(folder: Path) -> list[str]:
    return [d["action"] for d in _decisions(folder)]


def test_compare_memory_must_be_postgres():
    with pytest.raises(ValueError, match="postgresql"):
        check_compare(CompareSpec(memory="memory.sqlite"), ExecutionConfig())


def test_a_cluster_needs_a_server_store(tmp_path):
    cluster = ExecutionConfig(backend="ray", ray_address="ray://head:10001")
    with pytest.raises(ValueError, match="postgresql"):
        check_compare(CompareSpec(), cluster)
    with pytest.raises(ValueError, match="postgresql"):
        run_parallel(_spec(tmp_path / "m.sqlite"), RunWriter(tmp_path, {}), episodes=1,
                     execution=cluster, threads=1)  # fmt: skip
