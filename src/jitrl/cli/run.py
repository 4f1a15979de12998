"""``jitrl run``: play episodes with one agent; memory persists in the store between runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.table import Table

from jitrl.agents import agent_spec
from jitrl.cli.common import LogLevel, OutFolder, app, console, fail, setup_logging
from jitrl.cli.errors import describe
from jitrl.cli.options import with_settings
from jitrl.cli.progress import EpisodeProgress
from jitrl.memory.postgres_schema import redact_url
from jitrl.running.build import open_player
from jitrl.running.executors import ExecutionConfig
from jitrl.running.records import EpisodeResult
from jitrl.running.rounds import run_parallel
from jitrl.running.run_folder import RunWriter, catch_up, run_episodes
from jitrl.running.spec import RunSpec, model_threads

WINDOW = 5
"""Episodes per window of the first-against-last line (fewer when a third of the run is less)."""


def episode_table(results: list[EpisodeResult]) -> Table:
    """One row per episode: score, steps, reward, time split."""
    table = Table(title="Episodes")
    for col in ("episode", "score", "steps", "reward", "won", "LLM s", "memory ms", "wall s"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            str(r.index),
            f"{r.score:g}",
            str(r.steps),
            f"{r.reward:g}",
            "yes" if r.won else "",
            f"{r.llm_seconds:.1f}",
            f"{1000 * r.memory_seconds:.1f}",
            f"{r.wall_seconds:.1f}",
        )
    return table


def learning_line(results: list[EpisodeResult]) -> str:
    """The run in one line: the best score and the mean score of the first and last windows
    (a third of the episodes each, at most 5)."""
    if not results:
        return "no episode played"
    best = max(results, key=lambda r: r.score)
    line = f"max score {best.score:g} (episode {best.index})"
    window = min(WINDOW, len(results) // 3)
    if window:
        first = sum(r.score for r in results[:window]) / window
        last = sum(r.score for r in results[-window:]) / window
        line += (
            f"; mean score of the first {window} episodes {first:.2f}, of the last {window} "
            f"{last:.2f} ({'up' if last > first else 'down' if last < first else 'level'})"
        )
    return line


def run_settings(spec: RunSpec, execution: ExecutionConfig) -> dict[str, Any]:
    """What the run folder's ``summary.json`` records: the settings as JSON (no password)."""
    out = dataclasses.asdict(spec)
    described = agent_spec(spec.agent)
    out["memory"] = redact_url(spec.memory) if described.keeps_memory else None
    if not described.needs_model:
        out["model"] = None
    out["execution"] = dataclasses.asdict(execution)
    return out


def _play(spec: RunSpec, out: Path, threads: int, writer: RunWriter) -> None:
    """Play in this process, reporting progress."""
    with open_player(spec, threads=threads, out=out, reconcile=writer.reconcile) as player:
        catch_up(player.agent, writer)
        description = f"{spec.agent} on {player.env.task_id}"
        with EpisodeProgress(description, spec.episodes, spec.max_steps) as progress:
            run_episodes(
                player.env,
                player.agent,
                writer,
                episodes=spec.episodes,
                seed=spec.seed,
                on_step=progress.step,
                on_episode=progress.episode,
            )
        if player.model is not None:
            console.print(f"LLM cache: {player.model.hits} hits, {player.model.misses} misses.")


def _play_parallel(
    spec: RunSpec, execution: ExecutionConfig, threads: int, writer: RunWriter
) -> None:
    """``--workers N`` / ``--backend ray``: rounds of N episodes sharing one memory."""
    with EpisodeProgress(f"{spec.agent} on {spec.env}", spec.episodes) as progress:
        run_parallel(
            spec,
            writer,
            episodes=spec.episodes,
            execution=execution,
            threads=threads,
            on_episode=progress.episode,
        )


def _absolute(memory: str) -> str:
    """A store path made absolute (workers may start elsewhere); URLs unchanged."""
    return memory if "://" in memory else str(Path(memory).expanduser().resolve())


@app.command()
@with_settings
def run(
    spec: RunSpec,
    execution: ExecutionConfig,
    out: OutFolder = Path("runs/latest"),
    log_level: LogLevel = "WARNING",
) -> None:
    """Play episodes with an agent; memory persists in the store between runs."""
    setup_logging(log_level)
    parallel = execution.workers > 1 or execution.backend != "process"
    if parallel and spec.abstract_states:
        raise fail("--abstract-states runs in this process only (no --workers, --backend)")
    agent_spec(spec.agent)  # an unknown agent fails before anything is written
    writer = RunWriter(out, run_settings(spec, execution))
    threads = model_threads(execution.workers, spec.threads)
    console.print(f"model threads: {threads} per worker", highlight=False)
    first = writer.next_index
    try:
        if parallel:
            spec = dataclasses.replace(spec, memory=_absolute(spec.memory))
            _play_parallel(spec, execution, threads, writer)
        else:
            _play(spec, out, threads, writer)
    except KeyboardInterrupt:
        console.print(episode_table(writer.results[first:]))
        saved = len(writer.results)
        raise fail(f"interrupted: {saved} episodes saved in {out}; rerun to resume", 130) from None
    except (RuntimeError, ImportError, ValueError, OSError) as err:
        message, code = describe(err)
        played = len(writer.results) - first
        kept = f"; {len(writer.results)} finished episodes are kept in {out}" if played else ""
        raise fail(f"{message}{kept}", code) from err
    finally:
        writer.close()
    console.print(episode_table(writer.results[first:]))
    console.print(learning_line(writer.results), highlight=False)
    console.print(f"Output: {out}")
