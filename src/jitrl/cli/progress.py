"""Progress of long commands: a bar with ETA and the last score on a terminal, one line per
episode when the output is a file or a pipe (CI, nohup)."""

from __future__ import annotations

import time
from typing import Any

from jitrl.cli.common import console, interactive, progress_bar
from jitrl.running.records import EpisodeResult


class EpisodeProgress:
    """Reports steps and finished episodes of one command.

    Args:
        description: what is being played.
        episodes: episodes to play.
        steps_per_episode: the bar counts steps (an episode that ends early fills its share).
        done: episodes already finished (resumed runs).
    """

    def __init__(
        self, description: str, episodes: int, steps_per_episode: int = 1, done: int = 0
    ) -> None:
        self.per_episode = steps_per_episode
        self.episodes = episodes
        self.done = done
        self.first = done
        self.started = time.monotonic()
        self.bar = progress_bar()
        self.task = self.bar.add_task(
            description,
            total=episodes * steps_per_episode,
            completed=done * steps_per_episode,
            last="",
        )

    def step(self, steps: int = 1) -> None:
        """Steps played."""
        self.bar.advance(self.task, steps)

    def episode(self, result: EpisodeResult) -> None:
        """An episode finished."""
        self.done += 1
        last = f"last score {result.score:g}"
        self.bar.update(self.task, completed=self.done * self.per_episode, last=last)
        if not interactive():
            phase = "" if result.phase == "train" else f" ({result.phase})"
            console.print(
                f"episode {result.index}{phase}: score {result.score:g}, {result.steps} steps, "
                f"{result.wall_seconds:.1f} s [{self.done}/{self.episodes}]",
                markup=False,
                highlight=False,
            )

    def finished(self, count: int) -> None:
        """Episodes finished so far (when only a count is known, e.g. parallel jobs); without a
        terminal, a line each time the count grows, with the time left at the pace so far."""
        grew = count > self.done
        self.done = count
        self.bar.update(self.task, completed=count * self.per_episode)
        if grew and not interactive():
            elapsed = time.monotonic() - self.started
            played = count - self.first
            left = (self.episodes - count) * elapsed / played if played else float("nan")
            eta = f"{left / 60:.0f} min left" if played else "time left unknown yet"
            console.print(f"{count}/{self.episodes} episodes done, {eta}", highlight=False)

    def __enter__(self) -> EpisodeProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)
