"""Continual learning: one memory learns a sequence of tasks; what does it gain, what does it lose?

For every seed, one agent with one memory learns the tasks in order, ``episodes`` learning
episodes each. After each task, it plays ``test_episodes`` unseen test instances of every task
learnt so far, memory frozen. Beside the sequence, the same agent learns each task alone from an
empty memory (the cold baseline). From these:

- forward transfer of task ``i``: its first-window score in the sequence (memory of the tasks
  before it) less its first-window score alone;
- backward transfer of task ``i``: its test score after the last task less its test score right
  after it was learnt (negative: forgetting), also as a share of the latter.

Every phase plays into its own run folder under ``OUT/seed<k>/``: ``seq-<i>-<task>`` (learning),
``seq-<i>-<task>-test-after-<j>``, ``cold-<task>`` and ``cold-<task>-test``; a test phase's
episode seeds are the same wherever it is played, so scores compare like with like. Interrupted,
it resumes: finished phases are kept, an unfinished one continues.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jitrl.agents import agent_spec
from jitrl.envs.base import TextEnv
from jitrl.method.config import JitRLConfig
from jitrl.running.build import environment_of, open_player
from jitrl.running.records import EpisodeResult
from jitrl.running.run_folder import RunWriter, catch_up, run_episodes
from jitrl.running.spec import PlaySpec, RunSpec

log = logging.getLogger(__name__)

SEED_STRIDE = 100_003
"""Seed ``k`` starts its episode seeds at ``k * SEED_STRIDE`` (streams do not overlap)."""
TASK_STRIDE = 10_007
"""Each task's learning and test seeds start ``TASK_STRIDE`` apart within a seed."""
TEST_OFFSET = 5_003
"""A task's test seeds start this far after its learning seeds."""


@dataclass(frozen=True)
class ContinualSpec(PlaySpec):
    """A sequence of tasks learnt by one memory, over several seeds."""

    env: str = "twx:coin,twx:twc,twx:sorting"
    """The tasks, comma-separated, in the order they are learnt (environment specs)."""
    agent: str = "jitrl"
    """The agent (one that keeps memory)."""
    seeds: int = 3
    """Number of seeds; each plays the whole sequence with its own memory."""
    episodes: int = 20
    """Learning episodes per task."""
    test_episodes: int = 10
    """Test episodes per task at each evaluation (memory frozen)."""
    window: int = 5
    """Episodes of the first window (forward transfer)."""
    method: JitRLConfig = field(default_factory=JitRLConfig)
    """The method's settings."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.tasks) < 2:
            raise ValueError("continual learning needs at least two tasks (--env A,B,...)")
        if not agent_spec(self.agent).keeps_memory:
            raise ValueError(f"agent {self.agent!r} keeps no memory: nothing to carry over")
        if self.seeds < 1 or self.test_episodes < 1 or self.window < 1:
            raise ValueError("seeds, test_episodes and window must be >= 1")

    @property
    def tasks(self) -> list[str]:
        """The tasks in order."""
        return [t.strip() for t in self.env.split(",") if t.strip()]


def _slug(task: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in task).strip("-")


@dataclass(frozen=True)
class Phase:
    """Episodes of one task played into one run folder."""

    folder: str
    task: int
    learn: bool
    episodes: int
    seed: int


def phases(spec: ContinualSpec, seed: int) -> tuple[list[Phase], list[Phase]]:
    """The sequence's phases and the cold baseline's, in the order they are played."""
    base = seed * SEED_STRIDE
    sequence, cold = [], []
    for i, task in enumerate(spec.tasks):
        start = base + i * TASK_STRIDE
        name = f"seq-{i}-{_slug(task)}"
        sequence.append(Phase(name, i, True, spec.episodes, start))
        for j in range(i + 1):
            test_seed = base + j * TASK_STRIDE + TEST_OFFSET
            folder = f"seq-{j}-{_slug(spec.tasks[j])}-test-after-{i}"
            sequence.append(Phase(folder, j, False, spec.test_episodes, test_seed))
        cold.append(Phase(f"cold-{_slug(task)}", i, True, spec.episodes, start))
        test = Phase(f"cold-{_slug(task)}-test", i, False, spec.test_episodes, start + TEST_OFFSET)
        cold.append(test)
    return sequence, cold


def _play_phases(
    spec: ContinualSpec,
    plan: list[Phase],
    out: Path,
    memory: Path,
    threads: int,
    on_episode: Callable[[EpisodeResult], None] | None,
) -> None:
    """Play a list of phases with one agent and one memory (one environment per task)."""
    start = plan[0].task
    first = RunSpec(
        **_play_fields(spec), env=spec.tasks[start], agent=spec.agent, memory=str(memory)
    )
    with ExitStack() as stack:
        player = stack.enter_context(open_player(first, threads=threads))
        envs: dict[int, TextEnv] = {start: player.env}
        for phase in plan:
            settings = {"task": spec.tasks[phase.task], "learn": phase.learn, "agent": spec.agent}
            writer = stack.enter_context(RunWriter(out / phase.folder, settings))
            catch_up(player.agent, writer)  # what an earlier process played of this phase
            todo = phase.episodes - writer.next_index
            if todo <= 0:
                continue
            if player.store is not None:
                writer.reconcile(player.store)
            if phase.task not in envs:
                env = environment_of(spec, spec.tasks[phase.task], phase.seed)
                envs[phase.task] = stack.enter_context(closing(env))
            run_episodes(
                envs[phase.task],
                player.agent,
                writer,
                episodes=todo,
                seed=phase.seed,
                phase="train" if phase.learn else "test",
                on_episode=on_episode,
            )


def _play_fields(spec: ContinualSpec) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(PlaySpec)}
    return {name: getattr(spec, name) for name in names}


def run_continual(
    spec: ContinualSpec,
    out: Path,
    *,
    threads: int,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> None:
    """Play every seed's sequence and cold baselines (resuming what is there)."""
    for seed in range(1, spec.seeds + 1):
        folder = out / f"seed{seed}"
        sequence, cold = phases(spec, seed)
        _play_phases(spec, sequence, folder, folder / "memory-seq.sqlite", threads, on_episode)
        for i in range(len(spec.tasks)):  # each task alone, from an empty memory
            alone = [p for p in cold if p.task == i]
            memory = folder / f"memory-cold-{i}.sqlite"
            _play_phases(spec, alone, folder, memory, threads, on_episode)


__all__ = ["ContinualSpec", "Phase", "phases", "run_continual"]
