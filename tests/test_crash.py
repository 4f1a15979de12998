"""Nothing lost, nothing twice: a run killed at any point and resumed leaves its folder and its
store in agreement (every episode recorded once, stored once, under the same id)."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jitrl.memory import SQLiteStore
from jitrl.method.types import Experience, State
from jitrl.running.run_folder import RunWriter

log = logging.getLogger(__name__)
EPISODES = 30
KILLS = 40
RUN = (
    "run --env textworld-simple:1 --model uniform --max-steps 5 --memory m.sqlite --out run "
    f"--episodes {EPISODES}"
).split()


def stored_record(episode_id: str) -> list[Experience]:
    return [Experience(State("hall"), "north", 1.0, episode_id, 0)]


def test_an_episode_stored_but_not_recorded_is_removed_and_replayed(tmp_path: Path) -> None:
    folder = RunWriter(tmp_path / "run", {"env": "e"})
    with SQLiteStore(tmp_path / "m.sqlite") as store:
        store.add_episode(stored_record(folder.episode_id(folder.next_index)))  # the gap
        store.add_episode(stored_record("someone-else-0"))
        assert folder.reconcile(store) == 1
        assert store.episode_ids() == ["someone-else-0"]
        store.add_episode(stored_record(folder.episode_id(folder.next_index)))  # replay: same id


def test_a_folder_is_played_by_one_process_at_a_time(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first, second = RunWriter(out, {"env": "e"}), RunWriter(out, {"env": "e"})
    assert not out.exists()  # nothing is created (or locked) before the first episode
    first.start()
    with pytest.raises(ValueError, match="being played by another jitrl process"):
        second.start()
    with pytest.raises(ValueError, match="being played by another jitrl process"):
        RunWriter(out, {"env": "e"})  # an existing folder is locked from the start
    first.close()
    with RunWriter(out, {"env": "e"}) as third:
        third.start()
        with (
            SQLiteStore(tmp_path / "m.sqlite") as store,
            pytest.raises(ValueError, match="another jitrl process"),
        ):
            second.reconcile(store)  # would delete the holder's episode in progress
    with RunWriter(out, {"env": "e"}) as fourth:  # the context freed the folder
        assert fourth.next_index == 0
    with pytest.raises(ValueError, match="holds another run") as refused:
        RunWriter(out, {"env": "another"})
    RunWriter(out, {"env": "e"}).close()  # the refused writer did not keep the folder locked
    assert refused.tb is not None  # (its frames, and the writer, are still alive here)


def check_agreement(out: Path, store: SQLiteStore) -> int:
    """Assert the run folder and the store hold the same episodes; returns how many."""
    lines = [json.loads(s) for s in (out / "episodes.jsonl").read_text().splitlines() if s]
    run_id = json.loads((out / "run.json").read_text())["id"]
    assert [r["index"] for r in lines] == list(range(len(lines)))  # no gap, no repeat
    ids = [e for e in store.episode_ids() if e.startswith(f"{run_id}-")]
    assert ids == [f"{run_id}-{r['index']}" for r in lines]
    steps = {e: 0 for e in ids}
    for record in store:
        if record.episode_id in steps:
            steps[record.episode_id] += 1
    assert [steps[r["episode_id"]] for r in lines] == [r["steps"] for r in lines]
    return len(lines)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_forty_kills_at_random_points_lose_nothing_and_store_nothing_twice(
    tmp_path: Path,
) -> None:
    rng = random.Random(13)
    command = [sys.executable, "-m", "jitrl", *RUN]
    env = {**os.environ, "JITRL_THREADS": "1"}
    killed, folders = 0, []
    while killed < KILLS:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 7.0))  # start-up takes ~2.5 s, 30 episodes ~6 s more
        # (a resumed run plays --episodes more: the folder grows with every restart)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
            continue
        assert proc.returncode == 0
        folders.append(tmp_path / f"run-{len(folders)}")  # done: the next run starts afresh
        (tmp_path / "run").rename(folders[-1])
    final = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    with SQLiteStore(tmp_path / "m.sqlite", read_only=True) as store:
        recorded = sum(check_agreement(out, store) for out in [*folders, tmp_path / "run"])
        stored = len(store.episode_ids())
    assert stored == recorded
    log.info(
        "%d kills, %d completed runs: %d episodes recorded, %d stored, all in agreement",
        killed,
        len(folders),
        recorded,
        stored,
    )
