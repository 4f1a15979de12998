"""``jitrl run``: play episodes with one agent; memory persists in the store between runs."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from jitrl.agents import AGENTS, LLM_AGENTS, MEMORY_AGENTS, Agent, agent_model, make_agent
from jitrl.agents.abstraction import StateAbstractor
from jitrl.agents.prompts import prompt_config_for
from jitrl.cli.common import DEFAULT_MEMORY, app, console, fail, progress_bar, setup_logging
from jitrl.envs import make_env
from jitrl.envs.base import TextEnv
from jitrl.memory.postgres_schema import redact_url
from jitrl.method.config import JitRLConfig, Selection
from jitrl.method.reflection import ReflectionConfig
from jitrl.running.executors import Backend, ExecutionConfig
from jitrl.running.records import EpisodeResult
from jitrl.running.rounds import RunSpec, run_parallel
from jitrl.running.run_folder import RunWriter, run_episodes

SELECTIONS = ("greedy", "sample")


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
    game: TextEnv, player: Agent, writer: RunWriter, episodes: int, seed: int
) -> list[EpisodeResult]:
    """Run the episodes under a progress bar (steps; an episode that ends early fills its part)."""
    max_steps = getattr(game, "max_steps", 1)
    progress = progress_bar()
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
    memory: Annotated[
        str, typer.Option(help="experience store: SQLite file or postgresql:// URL")
    ] = DEFAULT_MEMORY,
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
    reflect: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="weight of LLM step scores in the rewards (0: off)"),
    ] = 0.0,
    abstract_states: Annotated[
        bool, typer.Option(help="let the LLM rewrite observations into compact states")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="episodes played at once, all sharing the memory")
    ] = 1,
    backend: Annotated[str, typer.Option(help="process | ray (where the workers run)")] = (
        "process"
    ),
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: a local Ray)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="logging level")] = "WARNING",
) -> None:
    """Play episodes with an agent; memory persists in the store between runs."""
    setup_logging(log_level)
    if agent not in AGENTS:
        raise typer.BadParameter(f"unknown agent {agent!r}; choose from {', '.join(AGENTS)}")
    cfg = _method_config(beta, k, gamma, alpha, selection)
    if reflect > 0:
        cfg = replace(cfg, reflection=ReflectionConfig(weight=reflect))
    if workers > 1 or backend != "process":
        if abstract_states:
            raise fail("--abstract-states runs in this process only (no --workers, --backend)")
        try:
            execution = ExecutionConfig(cast(Backend, backend), workers, ray_address)
            per_worker = threads or max(1, (os.cpu_count() or 1) // workers)  # share the cores
            shared = _absolute(memory)  # workers may start elsewhere (a Ray cluster)
            spec = RunSpec(env, agent, model, shared, max_steps, seed, cfg, per_worker)
        except ValueError as err:
            raise fail(str(err)) from err
        _run_parallel(spec, execution, episodes, out)
        return
    game = make_env(env, max_steps=max_steps, seed=seed)
    llm = agent_model(agent, model, threads)
    store = memory if agent in MEMORY_AGENTS else None
    abstractor = None
    if abstract_states and llm is not None:
        abstractor = StateAbstractor(llm, cache_path=out / "abstract-states.jsonl")
    prompts = prompt_config_for(env)
    player = make_agent(agent, llm, store, cfg, seed=seed, prompts=prompts, abstractor=abstractor)
    settings = _settings(RunSpec(env, agent, model, memory, max_steps, seed, cfg, threads))
    try:
        results = _play(game, player, RunWriter(out, settings), episodes, seed)
    finally:  # finished episodes are already stored; release the game, store and model
        game.close()
        player.close()
        if llm is not None:
            llm.close()
    console.print(_episode_table(results))
    cache = f"LLM cache: {llm.hits} hits, {llm.misses} misses. " if llm else ""
    console.print(f"{cache}Output: {out}")


def _settings(spec: RunSpec) -> dict[str, Any]:
    """What the run folder's ``summary.json`` records (the store's URL without password)."""
    memory = spec.memory if spec.memory and spec.agent in MEMORY_AGENTS else None
    return {
        "env": spec.env,
        "agent": spec.agent,
        "max_steps": spec.max_steps,
        "seed": spec.seed,
        "memory": redact_url(memory) if memory else None,
        "model": spec.model if spec.agent in LLM_AGENTS else None,
        "config": repr(spec.config),
    }


def _run_parallel(spec: RunSpec, execution: ExecutionConfig, episodes: int, out: Path) -> None:
    """``--workers N`` / ``--backend ray``: rounds of N episodes sharing one memory."""
    settings = {**_settings(spec), "workers": execution.workers, "backend": execution.backend}
    writer = RunWriter(out, settings)
    progress = progress_bar()
    with progress:
        task = progress.add_task(f"{spec.agent} on {spec.env}", total=episodes)
        try:
            results = run_parallel(
                spec,
                writer,
                episodes=episodes,
                execution=execution,
                on_episode=lambda _: progress.advance(task),
            )
        except (RuntimeError, ImportError, ValueError) as err:
            raise fail(f"{err} (finished episodes are kept in {out})", code=1) from err
    console.print(_episode_table(results))
    console.print(f"Output: {out}")


def _absolute(memory: str) -> str:
    """A store path made absolute; URLs unchanged."""
    return memory if "://" in memory else str(Path(memory).expanduser().resolve())
