"""Concurrency tests of the SQLite store: a writer killed mid-episode, concurrent appenders.

What SQLite allows, and what these tests hold it to:

- Any number of processes may open one store file and append at once, but SQLite runs **one
  write transaction at a time** per file: each ``add_episode`` is a ``BEGIN IMMEDIATE``
  transaction that waits up to ``SQLiteConfig.busy_timeout_s`` (30 s by default) for the write
  lock and then fails with ``StoreError`` (nothing written). Throughput is therefore that of one
  writer (each commit is an fsync with ``synchronous=FULL``), whatever the number of processes;
  with many busy writers, a waiting writer's wait grows with the queue ahead of it, so keep
  ``busy_timeout_s`` well above (writers × commit time).
- In WAL mode (the default) readers never block writers nor wait for them: a reader sees the
  episodes committed when its read began, each whole. With ``wal=False`` (rollback journal)
  readers and writers block each other.
- Readers that never pause can keep the WAL from being checkpointed back into the main file; it
  then grows until some moment without readers.
- WAL needs shared memory between the processes: one machine, a local filesystem (not NFS).
- A store object must not cross ``fork``; each process opens its own.

``test_many_writers_with_readers`` runs 8 writer processes × 200 episodes with 2 reader
processes, and the same scenario runs against PostgreSQL in ``test_memory_postgres.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import jitrl
from jitrl.memory import SQLiteConfig, SQLiteStore
from jitrl.method.types import Experience, State
from tests import store_workers

SOURCE_ROOT = str(Path(jitrl.__file__).resolve().parents[1])
PROCESS_TIMEOUT_S = 120
STORED_EPISODES = 3
SMALL_EPISODE_STEPS = 5
BIG_EPISODE_STEPS = 3000  # ~3 MB of text: more than SQLite's page cache, so pages hit the disk
CRASH_AT_STEP = 2000
MIN_SPILLED_BYTES = 100_000
MANY_WRITERS = 8
MANY_EPISODES = 200
READERS = 2
WORKERS = 4
EPISODES_PER_WORKER = 25
STEPS_PER_EPISODE = 3

COMMON = textwrap.dedent(
    """
    import os, sys, time
    from jitrl.memory.sqlite import SQLiteConfig, SQLiteStore
    from jitrl.method.types import Experience, State

    def episode(index, steps, filler=""):
        return [
            Experience(State(f"room {step} {filler}", f"k{step}"), f"go {step}", float(step),
                       f"ep-{index}", step, "task", 1.0, 1.5)
            for step in range(steps)
        ]
    """
)

CRASH_WORKER = COMMON + textwrap.dedent(
    f"""
    path, mode, wal = sys.argv[1], sys.argv[2], sys.argv[3] == "wal"
    store = SQLiteStore(path, SQLiteConfig(wal=wal))
    for index in range({STORED_EPISODES}):
        store.add_episode(episode(index, {SMALL_EPISODE_STEPS}))

    def crash():
        if mode == "exit":
            os._exit(17)
        print("in-transaction", flush=True)
        time.sleep({PROCESS_TIMEOUT_S})

    store._conn.create_function("crash", 0, crash)
    store._conn.execute(
        "CREATE TEMP TRIGGER crash AFTER INSERT ON main.experiences "
        "WHEN NEW.step = {CRASH_AT_STEP} BEGIN SELECT crash(); END"
    )
    store.add_episode(episode({STORED_EPISODES}, {BIG_EPISODE_STEPS}, "x" * 1000))
    print("unreachable: the episode was stored", flush=True)
    """
)

APPEND_WORKER = textwrap.dedent(
    """
    import sys
    from jitrl.memory.sqlite import SQLiteStore
    from jitrl.method.types import Experience, State

    path, worker, count, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with SQLiteStore(path) as store:
        for index in range(count):
            store.add_episode([
                Experience(State(f"s{step}"), f"a{step}", float(step), f"w{worker}-{index}",
                           step, f"task{worker}")
                for step in range(steps)
            ])
    """
)


def python(script: str, *args: object, **popen: object) -> subprocess.Popen:
    """Start ``script`` in a fresh interpreter that can import jitrl."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE_ROOT, env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", script, *map(str, args)]
    return subprocess.Popen(command, env=env, text=True, **popen)  # type: ignore[call-overload]


def expected_episode(index: int) -> list[Experience]:
    """The records the crash worker stores for one of its small episodes."""
    return [
        Experience(State(f"room {step} ", f"k{step}"), f"go {step}", float(step), f"ep-{index}",
                   step, "task", 1.0, 1.5)
        for step in range(SMALL_EPISODE_STEPS)
    ]  # fmt: skip


@pytest.mark.timeout(PROCESS_TIMEOUT_S)
@pytest.mark.parametrize("journal", ["wal", "rollback"])
@pytest.mark.parametrize("mode", ["sigkill", "exit"])
def test_writer_killed_mid_episode_leaves_whole_episodes(
    tmp_path: Path, mode: str, journal: str
) -> None:
    path = tmp_path / "memory.sqlite"
    process = python(CRASH_WORKER, path, mode, journal, stdout=subprocess.PIPE)
    if mode == "sigkill":
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "in-transaction"
        # The uncommitted half episode is really on disk: uncommitted WAL frames, or pages
        # written into the database file with a hot rollback journal.
        if journal == "wal":
            assert path.with_name(f"{path.name}-wal").stat().st_size > MIN_SPILLED_BYTES
        else:
            assert path.with_name(f"{path.name}-journal").stat().st_size > 0
            assert path.stat().st_size > MIN_SPILLED_BYTES
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=PROCESS_TIMEOUT_S)
    assert process.returncode == (-signal.SIGKILL if mode == "sigkill" else 17)

    expected = [record for index in range(STORED_EPISODES) for record in expected_episode(index)]
    with SQLiteStore(path, SQLiteConfig(wal=journal == "wal"), create=False) as store:
        assert store.episode_ids() == [f"ep-{index}" for index in range(STORED_EPISODES)]
        assert list(store) == expected
        assert len(store) == STORED_EPISODES * SMALL_EPISODE_STEPS
        assert store.stats().episodes == STORED_EPISODES
        assert not store.has_episode(f"ep-{STORED_EPISODES}")
        store.add_episode(expected_episode(STORED_EPISODES))  # still writable after recovery
        assert len(store.episode_ids()) == STORED_EPISODES + 1


@pytest.mark.timeout(PROCESS_TIMEOUT_S)
@pytest.mark.parametrize("precreated", [True, False])
def test_concurrent_appends_are_stored_exactly_once(tmp_path: Path, precreated: bool) -> None:
    path = tmp_path / "shared.sqlite"
    if precreated:
        SQLiteStore(path).close()
    processes = [
        python(APPEND_WORKER, path, worker, EPISODES_PER_WORKER, STEPS_PER_EPISODE,
               stderr=subprocess.PIPE)
        for worker in range(WORKERS)
    ]  # fmt: skip
    for process in processes:
        _, errors = process.communicate(timeout=PROCESS_TIMEOUT_S)
        assert process.returncode == 0, errors

    expected_ids = {f"w{w}-{i}" for w in range(WORKERS) for i in range(EPISODES_PER_WORKER)}
    with SQLiteStore(path, create=False) as store:
        ids = store.episode_ids()
        assert len(ids) == len(expected_ids) and set(ids) == expected_ids
        records = list(store)
        assert len(records) == len(store) == len(expected_ids) * STEPS_PER_EPISODE
        # Each episode is contiguous and in step order: one transaction per episode.
        for start in range(0, len(records), STEPS_PER_EPISODE):
            chunk = records[start : start + STEPS_PER_EPISODE]
            assert [record.step for record in chunk] == list(range(STEPS_PER_EPISODE))
            assert len({record.episode_id for record in chunk}) == 1
        assert [chunk.episode_id for chunk in records[::STEPS_PER_EPISODE]] == ids


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "memory.sqlite")

    def work(worker: int) -> None:
        for index in range(EPISODES_PER_WORKER):
            store.add_episode(
                [
                    Experience(State(f"s{step}"), "a", 0.0, f"t{worker}-{index}", step)
                    for step in range(STEPS_PER_EPISODE)
                ]
            )

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(store.episode_ids())) == WORKERS * EPISODES_PER_WORKER
    assert len(store) == WORKERS * EPISODES_PER_WORKER * STEPS_PER_EPISODE
    store.close()


@pytest.mark.slow
@pytest.mark.timeout(store_workers.PROCESS_TIMEOUT_S)
def test_many_writers_with_readers(tmp_path: Path) -> None:
    """8 processes write 200 episodes each into a new WAL store while 2 others keep reading."""
    path = str(tmp_path / "many.sqlite")
    report = store_workers.run(path, MANY_WRITERS, MANY_EPISODES, READERS)
    print(report.summary(f"sqlite {MANY_WRITERS}x{MANY_EPISODES}"))
    for reader in report.readers:
        assert reader.problems == ()
        assert reader.lengths[-1] == store_workers.total_records(MANY_WRITERS, MANY_EPISODES)
    store_workers.check_all_stored(path, MANY_WRITERS, MANY_EPISODES)
    with SQLiteStore(path, create=False) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # type: ignore[union-attr]
