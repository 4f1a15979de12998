"""Writer and reader processes for the multi-process store tests (SQLite and PostgreSQL).

The functions run in ``spawn``-ed worker processes (a fresh interpreter each), so they live in
an importable module and take only picklable arguments: the store's path or URL.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass

from jitrl.memory import open_store
from jitrl.method.types import Experience, State

PROCESS_TIMEOUT_S = 600
MAX_STEPS = 5


def episode_id(worker: int, index: int) -> str:
    return f"w{worker}-{index}"


def steps_of(worker: int, index: int) -> int:
    """Episodes have 1 to MAX_STEPS records, varying with the worker and the index."""
    return 1 + (7 * worker + index) % MAX_STEPS


def steps_of_id(identifier: str) -> int:
    worker, index = identifier[1:].split("-")
    return steps_of(int(worker), int(index))


def make_episode(worker: int, index: int) -> list[Experience]:
    """The records writer ``worker`` stores as its ``index``-th episode (all fields set)."""
    name = episode_id(worker, index)
    return [
        Experience(
            state=State(f"room {step} of {name}", None if step % 2 else f"k{worker}.{step}"),
            action=f"go {step}",
            ret=(index + 1) / (step + 3),
            episode_id=name,
            step=step,
            task_id=f"task{worker}",
            reward=float(step % 2),
            created_at=1_700_000_000.0 + index / 7,
        )
        for step in range(steps_of(worker, index))
    ]


def total_records(writers: int, episodes: int) -> int:
    return sum(steps_of(w, i) for w in range(writers) for i in range(episodes))


def write(spec: str, worker: int, episodes: int) -> tuple[float, float]:
    """Store ``episodes`` episodes of writer ``worker``, one transaction each.

    Returns:
        The UNIX times of the first write's start and the last write's end.
    """
    with closing(open_store(spec)) as store:
        start = time.time()
        for index in range(episodes):
            store.add_episode(make_episode(worker, index))
        return start, time.time()


def whole_episode_problems(records: Sequence[Experience]) -> list[str]:
    """Where ``records`` (one iteration) holds a partial, split or repeated episode."""
    problems: list[str] = []
    runs = [records[0].episode_id] if records else []
    for before, after in itertools.pairwise(records):
        if after.episode_id != before.episode_id:
            runs.append(after.episode_id)
    repeated = [name for name, count in Counter(runs).items() if count > 1]
    if repeated:
        problems.append(f"episodes not contiguous: {repeated[:5]}")
    for name, count in Counter(record.episode_id for record in records).items():
        if count != steps_of_id(name):
            problems.append(f"episode {name}: {count} records, expected {steps_of_id(name)}")
    return problems


@dataclass(frozen=True)
class ReaderReport:
    """What a reader saw: passes over the store, and anything that was not whole."""

    passes: int
    lengths: tuple[int, ...]
    problems: tuple[str, ...]


def read(spec: str, expected: int, timeout_s: float) -> ReaderReport:
    """Read ``len`` and iterate the store over and over until it holds ``expected`` records."""
    deadline = time.monotonic() + timeout_s
    lengths: list[int] = []
    problems: list[str] = []
    seen: set[str] = set()
    with closing(open_store(spec)) as store:
        while time.monotonic() < deadline:
            length = len(store)
            records = list(store)
            problems += whole_episode_problems(records)
            ids = {record.episode_id for record in records}
            if len(records) < length or not seen <= ids:
                problems.append(f"pass {len(lengths)} lost records (len {length})")
            seen, lengths = ids, [*lengths, len(records)]
            if len(records) >= expected:
                break
            time.sleep(0.01)
    return ReaderReport(len(lengths), tuple(lengths), tuple(problems))


@dataclass(frozen=True)
class RunReport:
    """Wall time of the whole run (process start-up included), of the writing (first write to
    last commit), each writer's own time, and the readers' reports."""

    wall_s: float
    write_s: float
    writer_s: tuple[float, ...]
    readers: tuple[ReaderReport, ...]

    def summary(self, name: str) -> str:
        passes = [reader.passes for reader in self.readers]
        return (
            f"{name}: wall {self.wall_s:.1f}s, writing {self.write_s:.1f}s, per writer "
            f"{min(self.writer_s):.1f}-{max(self.writer_s):.1f}s, reader passes {passes}"
        )


def run(spec: str, writers: int, episodes: int, readers: int) -> RunReport:
    """``writers`` processes write ``episodes`` episodes each while ``readers`` processes read."""
    context = multiprocessing.get_context("spawn")
    expected = total_records(writers, episodes)
    with ProcessPoolExecutor(writers + readers, mp_context=context) as pool:
        start = time.perf_counter()
        read_jobs = [pool.submit(read, spec, expected, PROCESS_TIMEOUT_S) for _ in range(readers)]
        write_jobs = [pool.submit(write, spec, worker, episodes) for worker in range(writers)]
        spans = [job.result(timeout=PROCESS_TIMEOUT_S) for job in write_jobs]
        wall_s = time.perf_counter() - start
        reports = tuple(job.result(timeout=PROCESS_TIMEOUT_S) for job in read_jobs)
    write_s = max(end for _, end in spans) - min(begin for begin, _ in spans)
    return RunReport(wall_s, write_s, tuple(end - begin for begin, end in spans), reports)


def check_all_stored(spec: str, writers: int, episodes: int) -> None:
    """Assert that every episode is stored whole, exactly once, exactly as written."""
    with closing(open_store(spec, create=False)) as store:
        records = list(store)
        ids = store.episode_ids()  # type: ignore[attr-defined]
        stats = store.stats()
        length = len(store)
    expected_ids = {episode_id(w, i) for w in range(writers) for i in range(episodes)}
    assert len(ids) == len(set(ids)) == len(expected_ids) and set(ids) == expected_ids
    counts = Counter(record.episode_id for record in records)
    assert all(counts[name] == steps_of_id(name) for name in expected_ids)
    assert length == len(records) == total_records(writers, episodes) == stats.experiences
    assert stats.episodes == len(expected_ids)
    assert whole_episode_problems(records) == []
    # Storage order: episodes in episode_ids() order, each one's records as written.
    expected = [r for name in ids for r in make_episode(*map(int, name[1:].split("-")))]
    assert records == expected
