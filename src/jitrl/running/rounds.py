"""One agent, many workers, one memory: the episodes of ``jitrl run --workers N``.

Episodes are played in rounds of N, one per worker, as worker processes or Ray tasks
(:mod:`jitrl.running.executors`). Each worker keeps its game, model and memory index between
episodes. Workers do not write to the store: they return each episode's records, and this
process stores them in episode order, then writes the run folder. Every episode of a round sees
exactly the memory the round started with: the episodes stored before the run, then those of
earlier rounds in episode order (workers load them by id,
:meth:`jitrl.method.learner.JitRL.sync`), and episode ``i`` samples with seed ``seed + i``. So
what a run plays depends neither on which worker played which episode nor on the backend, only
on N. A run cut short resumes after the last written episode;
the unfinished round's episodes were not stored and are played again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from multiprocessing.util import Finalize
from typing import Any

from jitrl.agents import LLMAgent, agent_spec
from jitrl.memory import open_store
from jitrl.running.build import Player, open_player
from jitrl.running.executors import ExecutionConfig, open_executor
from jitrl.running.loop import run_episode
from jitrl.running.records import EpisodeResult
from jitrl.running.run_folder import RunWriter
from jitrl.running.spec import RunSpec

log = logging.getLogger(__name__)

CLUSTER_MEMORY_HINT = (
    "a Ray cluster needs --memory postgresql://... (workers on other machines cannot share "
    "SQLite files safely)"
)


@dataclass(frozen=True)
class EpisodeTask:
    """One episode of a parallel run."""

    spec: RunSpec
    threads: int
    """Model threads of the worker."""
    run_id: str
    """Changes with every invocation (a worker left over from another run is rebuilt)."""
    index: int
    seed: int
    episode_id: str
    visible: tuple[str, ...]
    """Stored episodes this episode's memory holds, in order."""


class _Worker:
    """A worker process's game, model and agent, kept between episodes."""

    def __init__(self, task: EpisodeTask) -> None:
        self.key = (task.spec, task.run_id)
        keeps = agent_spec(task.spec.agent).keeps_memory
        self.player: Player = open_player(
            task.spec, threads=task.threads, episodes=list(task.visible) if keeps else None
        )

    def play(self, task: EpisodeTask) -> tuple[EpisodeResult, list[dict[str, Any]], list[Any]]:
        """Bring the memory to the task's episodes, play, and return what is to be stored."""
        agent = self.player.agent
        if isinstance(agent, LLMAgent):
            agent.learner.sync(task.visible)
            agent.last_episode = []
        result, trace = run_episode(
            self.player.env, agent, index=task.index, seed=task.seed, episode_id=task.episode_id
        )
        records = agent.last_episode if isinstance(agent, LLMAgent) else []
        return result, trace, records

    def close(self) -> None:
        self.player.close()


_WORKER: list[_Worker] = []
"""This process's worker (at most one: a new run's spec replaces it)."""


_FINALIZER: list[Finalize] = []
FINALIZE_PRIORITY = 10
"""Runs before multiprocessing's own exit clean-up (higher runs first)."""


def _close_worker() -> None:
    while _WORKER:
        _WORKER.pop().close()


def play_episode(task: EpisodeTask) -> tuple[EpisodeResult, list[dict[str, Any]], list[Any]]:
    """Play one episode in a worker (its state is built on its first episode of a run).

    Returns the result, the decision trace and the records to store (none for agents that store
    their own, e.g. ``qlearn`` with one worker).
    """
    if _WORKER and _WORKER[0].key != (task.spec, task.run_id):
        _close_worker()
    if not _WORKER:
        if not _FINALIZER:  # a pool worker exits without atexit handlers; this runs at its exit
            _FINALIZER.append(Finalize(None, _close_worker, exitpriority=FINALIZE_PRIORITY))
        _WORKER.append(_Worker(task))
    return _WORKER[0].play(task)


def run_parallel(
    spec: RunSpec,
    writer: RunWriter,
    *,
    episodes: int,
    execution: ExecutionConfig,
    threads: int,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Play ``episodes`` more episodes in rounds of ``execution.workers`` (see module doc).

    Raises:
        ValueError: ``qlearn`` with more than one worker, or a cluster without a server store.
        RuntimeError: an episode failed outside the environment (the model, the store); the
            episodes before it in the round are stored and written first.
    """
    described = agent_spec(spec.agent)
    if not described.parallel and execution.workers > 1:
        raise ValueError(f"{spec.agent} learns in the order of its own updates: use 1 worker")
    server = "://" in spec.memory
    if execution.ray_address is not None and described.keeps_memory and not server:
        raise ValueError(CLUSTER_MEMORY_HINT)
    with ExitStack() as stack:
        store = None
        if described.keeps_memory:
            store = stack.enter_context(closing(open_store(spec.memory)))
        pool = stack.enter_context(closing(open_executor(execution)))
        if store is not None:
            writer.reconcile(store)
        visible = store.episode_ids() if store is not None else []
        writer.start()
        run_id = uuid.uuid4().hex[:8]
        done: list[EpisodeResult] = []
        while len(done) < episodes:
            first = writer.next_index
            count = min(execution.workers, episodes - len(done))
            tasks = [
                EpisodeTask(
                    spec, threads, run_id, i, spec.seed + i, writer.episode_id(i), tuple(visible)
                )
                for i in range(first, first + count)
            ]
            handles = [pool.submit(play_episode, t) for t in tasks]
            results = {h: r for h, r in pool.as_completed(handles) if h is not None}
            for task, handle in zip(tasks, handles, strict=True):
                outcome = results[handle]
                if isinstance(outcome, BaseException):
                    raise RuntimeError(f"episode {task.index} failed: {outcome}") from outcome
                result, trace, records = outcome
                if records and store is not None:
                    store.add_episode(records)
                writer.write(result, trace)
                visible.append(result.episode_id)
                done.append(result)
                log.info("episode %d: score %.1f", task.index, result.score)
                if on_episode is not None:
                    on_episode(result)
    return done
