"""Run folders: episodes and decisions appended as they finish, and the run's summary.

A run writes into its output folder, one line per finished episode, flushed as it goes:

- ``episodes.jsonl``: score, steps, reward, return, wall time split into LLM, memory and env;
- ``decisions.jsonl``: per step, the state, candidates, base logits, neighbours, Q, V, A,
  corrected logits, probabilities and the chosen action;
- ``summary.json``: the run's settings and aggregate figures (rewritten after every episode).

Running again into the same folder continues the episode numbering, and the memory store carries
what was learnt, so a second run starts where the first stopped; :func:`catch_up` gives the new
process what the store does not hold (who led each learning episode, for the pace bandit).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from filelock import FileLock, Timeout

from jitrl.agents import Agent
from jitrl.envs.base import TextEnv
from jitrl.fileio import atomic_write_text, read_jsonl
from jitrl.memory.base import ExperienceStore
from jitrl.method.pace import LEADS
from jitrl.method.types import Lead
from jitrl.running.loop import EpisodeCallback, Phase, StepCallback, run_episode
from jitrl.running.records import EpisodeResult, summarise

log = logging.getLogger(__name__)


def _last_line(path: Path, block: int = 4096) -> str:
    """The last non-blank line of a text file, read from its end ("" for an empty file)."""
    with path.open("rb") as fh:
        end = fh.seek(0, 2)
        data = b""
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            data = fh.read(end - start) + data
            end = start
            lines = data.rstrip().split(b"\n")
            if len(lines) > 1 or start == 0:
                return lines[-1].decode("utf-8", errors="replace")
    return ""


RUN_FILE = "run.json"
"""The run folder's identity and settings, written before its first episode."""
LOCK_FILE = ".lock"
"""Locked while a process plays into the folder (a second one is refused)."""
FIXED_SETTINGS = (
    "env",
    "agent",
    "model",
    "max_steps",
    "method",
    "privileged_key",
    "view_key",
    "memory",
)
"""Settings a run folder keeps: continuing it with other ones would mix two experiments."""


class RunWriter:
    """Appends episodes and decisions to a run folder; nothing finished is ever rewritten.

    The folder is created when the first episode starts (a command that fails before leaves
    nothing behind). Its ``run.json`` keeps an id and the settings: episode ``i`` is stored as
    ``<id>-<i>``, and a later run into the folder must use the same settings.

    One process at a time plays into a folder: the writer locks it (``.lock``) from the first
    call that may change it (``reconcile``, ``start``) until ``close``, or from the start when
    the folder exists; use it as a context manager. The operating system frees the lock of a
    process that dies.

    Raises:
        ValueError: the folder holds a run with other settings, ``out`` is not a folder, or
            another process is playing into it.
    """

    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, not a folder (give a folder path)")
        self.out = out
        self.settings = json.loads(json.dumps(settings))  # as it reads back (tuples: lists)
        self._lock: FileLock | None = None
        if out.is_dir():
            self._hold()
        self.episodes_path = out / "episodes.jsonl"
        self.decisions_path = out / "decisions.jsonl"
        try:
            self.run_id = self._check_run()
            self.results = [EpisodeResult(**row) for row in self._read_episodes()]
            self._drop_unfinished_decisions()
        except BaseException:
            self.close()  # a refused folder is not kept locked
            raise

    def _hold(self) -> None:
        """Lock the folder for this writer (created if missing); refuses a folder in use."""
        if self._lock is not None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.out / LOCK_FILE)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise ValueError(
                f"{self.out} is being played by another jitrl process; "
                "wait for it to finish or use another --out"
            ) from None
        self._lock = lock

    def close(self) -> None:
        """Free the folder for other processes (a later ``start`` or ``write`` locks it again)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_run(self) -> str:
        """The folder's run id (a new one for a new folder); refuses another experiment."""
        path = self.out / RUN_FILE
        if not path.exists():
            return uuid.uuid4().hex[:8]
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            run_id, old = str(saved["id"]), saved["settings"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a jitrl run file ({err}); use another --out") from err
        changed = [k for k in FIXED_SETTINGS if k in old and old.get(k) != self.settings.get(k)]
        if changed:
            raise ValueError(
                f"{self.out} holds another run ({', '.join(changed)} differ); "
                "use another --out folder, or delete this one"
            )
        return run_id

    def episode_id(self, index: int) -> str:
        """The id episode ``index`` of this folder is stored under."""
        return f"{self.run_id}-{index}"

    def reconcile(self, store: ExperienceStore) -> int:
        """Remove episodes of this run that the store holds but the folder never recorded
        (a kill between storing an episode and writing its line); they are played again.

        Returns:
            How many episodes were removed.
        """
        self._hold()
        prefix = f"{self.run_id}-"
        orphans = [
            e
            for e in store.episode_ids()
            if e.startswith(prefix)
            and e[len(prefix) :].isdigit()
            and int(e[len(prefix) :]) >= self.next_index
        ]
        for episode_id in orphans:
            log.warning(
                "episode %s was stored but not recorded: removed, it is played again", episode_id
            )
            store.delete_episode(episode_id)
        return len(orphans)

    def _drop_unfinished_decisions(self) -> None:
        """Remove decisions of an episode that a crash cut short (it will be replayed).

        They can only be at the end of the file, so the usual case reads just the last line.
        """
        if not self.decisions_path.exists() or self._finished(_last_line(self.decisions_path)):
            return
        with self.decisions_path.open(encoding="utf-8") as fh:
            lines = fh.readlines()
        keep = [ln for ln in lines if ln.strip() and self._finished(ln)]
        if len(keep) < len(lines):
            log.warning("dropping %d decisions of an unfinished episode", len(lines) - len(keep))
            atomic_write_text(self.decisions_path, "".join(keep))

    def _finished(self, line: str) -> bool:
        try:
            return int(json.loads(line)["episode"]) < self.next_index
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            return False  # a line cut by the crash

    def _read_episodes(self) -> Iterator[dict[str, Any]]:
        if self.episodes_path.exists():
            yield from (row for _, row in read_jsonl(self.episodes_path))

    @property
    def next_index(self) -> int:
        """Index of the next episode (continues a previous run into the same folder)."""
        return len(self.results)

    def start(self) -> None:
        """Create the folder and its ``run.json`` (before the first episode is played)."""
        self._hold()  # creates the folder
        path = self.out / RUN_FILE
        if not path.exists():
            atomic_write_text(
                path, json.dumps({"id": self.run_id, "settings": self.settings}, indent=2)
            )

    def write(self, result: EpisodeResult, trace: list[dict[str, Any]]) -> None:
        """Append one finished episode and refresh the summary."""
        self.start()
        with self.decisions_path.open("a", encoding="utf-8") as fh:
            for row in trace:
                fh.write(json.dumps(row) + "\n")
        with self.episodes_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(result)) + "\n")
        self.results.append(result)
        summary = {"settings": self.settings, **summarise(self.results)}
        atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2))


def catch_up(agent: Agent, writer: RunWriter) -> None:
    """Tell a freshly built agent about the learning episodes that earlier processes played
    into this folder, in order (a resumed run picks leads from the uninterrupted run's window).
    An agent of your own written before :meth:`~jitrl.agents.base.Agent.recall` existed is
    told nothing."""
    recall = getattr(agent, "recall", None)
    if recall is None:
        return
    for result in writer.results:
        if result.phase == "train" and result.lead in LEADS:
            recall(result.task_id, cast(Lead, result.lead), result.reward)


def run_episodes(
    env: TextEnv,
    agent: Agent,
    writer: RunWriter,
    *,
    episodes: int,
    seed: int,
    phase: Phase = "train",
    on_episode: EpisodeCallback | None = None,
    on_step: StepCallback | None = None,
) -> list[EpisodeResult]:
    """Play ``episodes`` more episodes, writing each as soon as it ends.

    Episode ``i`` of the folder uses seed ``seed + i``; ``phase="test"`` plays unseen test
    instances with memory frozen (after the learning episodes, whose numbering it continues).
    """
    writer.start()
    done: list[EpisodeResult] = []
    for _ in range(episodes):
        index = writer.next_index
        result, trace = run_episode(
            env,
            agent,
            index=index,
            seed=seed + index,
            episode_id=writer.episode_id(index),
            phase=phase,
            on_step=on_step,
        )
        writer.write(result, trace)
        done.append(result)
        log.info("episode %d (%s): score %g in %d steps", index, phase, result.score, result.steps)
        if on_episode is not None:
            on_episode(result)
    return done
