"""Run folders: episodes and decisions appended as they finish, and the run's summary.

A run writes into its output folder, one line per finished episode, flushed as it goes:

- ``episodes.jsonl``: score, steps, reward, return, wall time split into LLM, memory and env;
- ``decisions.jsonl``: per step, the state, candidates, base logits, neighbours, Q, V, A,
  corrected logits, probabilities and the chosen action;
- ``summary.json``: the run's settings and aggregate figures (rewritten after every episode).

Running again into the same folder continues the episode numbering, and the memory store carries
what was learnt, so a second run starts where the first stopped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jitrl.agents import Agent
from jitrl.envs.base import TextEnv
from jitrl.fileio import atomic_write_text, read_jsonl
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


class RunWriter:
    """Appends episodes and decisions to a run folder; nothing finished is ever rewritten."""

    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.settings = settings
        self.episodes_path = out / "episodes.jsonl"
        self.decisions_path = out / "decisions.jsonl"
        self.results = [EpisodeResult(**row) for row in self._read_episodes()]
        self._drop_unfinished_decisions()

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

    def write(self, result: EpisodeResult, trace: list[dict[str, Any]]) -> None:
        """Append one finished episode and refresh the summary."""
        with self.decisions_path.open("a", encoding="utf-8") as fh:
            for row in trace:
                fh.write(json.dumps(row) + "\n")
        with self.episodes_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(result)) + "\n")
        self.results.append(result)
        summary = {"settings": self.settings, **summarise(self.results)}
        atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2))


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
    run_id = uuid.uuid4().hex[:8]
    done: list[EpisodeResult] = []
    for _ in range(episodes):
        index = writer.next_index
        result, trace = run_episode(
            env,
            agent,
            index=index,
            seed=seed + index,
            episode_id=f"{run_id}-{index}",
            phase=phase,
            on_step=on_step,
        )
        writer.write(result, trace)
        done.append(result)
        log.info("episode %d (%s): score %g in %d steps", index, phase, result.score, result.steps)
        if on_episode is not None:
            on_episode(result)
    return done
