"""Command-line interface: ``jitrl run`` and ``jitrl memory stats|export|import``."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from jitrl.agents import AGENTS, LLMAgent
from jitrl.config import JitRLConfig, Selection
from jitrl.envs import make_env
from jitrl.envs.base import TextEnv
from jitrl.learner import JitRL
from jitrl.llm import load_model
from jitrl.llm.cache import CachedModel
from jitrl.memory import open_store
from jitrl.memory.base import ExperienceStore, StoreError
from jitrl.memory.jsonl import export_jsonl, import_jsonl
from jitrl.runner import EpisodeResult, RunWriter, run_episodes

app = typer.Typer(
    help="Just-In-Time RL: LLM agents that learn from experience at test time.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
memory_app = typer.Typer(help="Inspect, export and import experience stores.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
console = Console()

DEFAULT_MEMORY = "jitrl-memory.sqlite"
SELECTIONS = ("greedy", "sample")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )


def _method_config(
    beta: float | None,
    k: int | None,
    gamma: float | None,
    alpha: float | None,
    selection: str | None,
) -> JitRLConfig:
    cfg = JitRLConfig()
    if selection is not None and selection not in SELECTIONS:
        raise typer.BadParameter(f"--selection must be one of {', '.join(SELECTIONS)}")
    if beta is not None:
        cfg = replace(cfg, policy=replace(cfg.policy, beta=beta))
    if selection is not None:
        cfg = replace(cfg, policy=replace(cfg.policy, selection=cast(Selection, selection)))
    if k is not None:
        cfg = replace(cfg, retrieval=replace(cfg.retrieval, k=k))
    if gamma is not None:
        cfg = replace(cfg, returns=replace(cfg.returns, gamma=gamma))
    if alpha is not None:
        cfg = replace(cfg, values=replace(cfg.values, alpha=alpha))
    return cfg


def _episode_table(results: list[EpisodeResult]) -> Table:
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


def _play(
    game: TextEnv, player: LLMAgent, writer: RunWriter, episodes: int, seed: int
) -> list[EpisodeResult]:
    """Run the episodes under a progress bar (steps; an episode that ends early fills its part)."""
    max_steps = getattr(game, "max_steps", 1)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"{player.name} on {game.task_id}", total=episodes * max_steps)
        done = [0]

        def episode_done(_: EpisodeResult) -> None:
            done[0] += 1
            progress.update(task, completed=done[0] * max_steps)

        return run_episodes(
            game,
            player,
            writer,
            episodes=episodes,
            seed=seed,
            on_step=lambda n: progress.advance(task, n),
            on_episode=episode_done,
        )


@app.command()
def run(
    env: Annotated[
        str, typer.Option(help="textworld | textworld:SEED | jericho:PATH")
    ] = "textworld",
    agent: Annotated[str, typer.Option(help=f"one of {', '.join(AGENTS)}")] = "jitrl",
    episodes: Annotated[int, typer.Option(min=1, help="episodes to play")] = 5,
    max_steps: Annotated[int, typer.Option(min=1, help="steps per episode")] = 40,
    seed: Annotated[int, typer.Option(min=1, help="base seed (episode i uses seed + i)")] = 1,
    memory: Annotated[str, typer.Option(help="experience store (SQLite file)")] = DEFAULT_MEMORY,
    out: Annotated[Path, typer.Option(help="run folder for episodes/decisions/summary")] = Path(
        "runs/latest"
    ),
    model: Annotated[
        str, typer.Option(help="llamacpp | llamacpp:PATH.gguf | scripted")
    ] = "llamacpp",
    beta: Annotated[float | None, typer.Option(help="KL strength beta")] = None,
    k: Annotated[int | None, typer.Option(help="neighbours per state")] = None,
    gamma: Annotated[float | None, typer.Option(help="discount factor")] = None,
    alpha: Annotated[float | None, typer.Option(help="optimism for untried actions")] = None,
    selection: Annotated[str | None, typer.Option(help="greedy | sample")] = None,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="llama.cpp threads (default: all cores; use 1 on a busy machine)"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="logging level")] = "WARNING",
) -> None:
    """Play episodes with an agent; memory persists in the store between runs."""
    _setup_logging(log_level)
    if agent not in AGENTS:
        raise typer.BadParameter(f"unknown agent {agent!r}; choose from {', '.join(AGENTS)}")
    cfg = _method_config(beta, k, gamma, alpha, selection)
    game = make_env(env, max_steps=max_steps, seed=seed)
    llm = CachedModel(load_model(model, n_threads=threads))
    store = open_store(memory) if agent == "jitrl" else None
    learner = JitRL(store, cfg, model=llm, seed=seed)
    settings = {
        "env": env,
        "agent": agent,
        "max_steps": max_steps,
        "seed": seed,
        "memory": memory if store else None,
        "model": model,
        "config": repr(cfg),
    }
    try:
        results = _play(game, LLMAgent(agent, learner), RunWriter(out, settings), episodes, seed)
    finally:  # finished episodes are already stored; release the game, store and model
        game.close()
        learner.close()
        llm.close()
    console.print(_episode_table(results))
    console.print(f"LLM cache: {llm.hits} hits, {llm.misses} misses. Output: {out}")


def _open_existing(path: str) -> ExperienceStore:
    try:
        return open_store(path, create=False)
    except StoreError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err


@memory_app.command("stats")
def memory_stats(path: Annotated[str, typer.Argument(help="store")] = DEFAULT_MEMORY) -> None:
    """Counts and means over a store."""
    store = _open_existing(path)
    stats = store.stats()
    table = Table(title=f"Memory {path}")
    table.add_column("field")
    table.add_column("value", justify="right")
    for name, value in vars(stats).items():
        table.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    store.close()


@memory_app.command("export")
def memory_export(
    dest: Annotated[Path, typer.Argument(help="JSONL file to write")],
    memory: Annotated[str, typer.Option(help="store to read")] = DEFAULT_MEMORY,
) -> None:
    """Write every experience of a store as one JSON line."""
    store = _open_existing(memory)
    count = export_jsonl(store, dest)
    store.close()
    console.print(f"exported {count} experiences to {dest}")


@memory_app.command("import")
def memory_import(
    src: Annotated[Path, typer.Argument(help="JSONL file to read")],
    memory: Annotated[
        str, typer.Option(help="store to write (created if missing)")
    ] = DEFAULT_MEMORY,
) -> None:
    """Add the episodes of a JSONL export to a store (episodes already there are skipped)."""
    if not src.is_file():
        console.print(f"[red]error:[/red] no such file: {src}")
        raise typer.Exit(2)
    store = open_store(memory)
    try:
        result = import_jsonl(store, src)
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    finally:
        store.close()
    console.print(f"imported: {result}")
