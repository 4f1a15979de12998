"""``jitrl compare``, ``jitrl report`` and ``jitrl explain``: experiments and their inspection."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jitrl.agents import AGENTS
from jitrl.cli.common import app, console, fail, progress_bar, setup_logging
from jitrl.running.compare import (
    CompareConfig,
    Price,
    expand_envs,
    make_jobs,
    run_jobs,
    write_settings,
)

log = logging.getLogger(__name__)


def _compare_config(
    env: str,
    game_seed: int,
    agents: str,
    seeds: int,
    extra: dict[str, Any],
) -> CompareConfig:
    try:
        envs = expand_envs(env, game_seed)
        price = Price.parse(extra.pop("price")) if extra.get("price") else None
        return CompareConfig(
            envs=envs,
            agents=tuple(a.strip() for a in agents.split(",") if a.strip()),
            seeds=tuple(range(1, seeds + 1)),
            price=price,
            **{k: v for k, v in extra.items() if k != "price"},
        )
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from err


@app.command()
def compare(
    env: Annotated[
        str,
        typer.Option(
            help="suites, comma-separated: jericho:DIR (every game in it), jericho:PATH, "
            "textworld:K (K games generated from --game-seed on), textworld-simple:K"
        ),
    ] = "textworld:1",
    agents: Annotated[str, typer.Option(help=f"comma-separated, from {','.join(AGENTS)}")] = (
        ",".join(AGENTS)
    ),
    episodes: Annotated[int, typer.Option(min=1, help="episodes per agent and seed")] = 20,
    max_steps: Annotated[int, typer.Option(min=1, help="steps per episode")] = 40,
    seeds: Annotated[int, typer.Option(min=1, help="number of seeds (1..K)")] = 3,
    workers: Annotated[int, typer.Option(min=1, help="jobs running at once")] = 2,
    backend: Annotated[str, typer.Option(help="process | ray (where the jobs run)")] = "process",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: a local Ray)")
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option(
            help="postgresql:// URL holding every job's store, one schema per job "
            "(default: memory.sqlite in each run folder)"
        ),
    ] = None,
    game_seed: Annotated[int, typer.Option(min=0, help="first TextWorld generation seed")] = 1,
    out: Annotated[Path, typer.Option(help="output folder (rerun to resume)")] = Path(
        "runs/compare"
    ),
    model: Annotated[str, typer.Option(help="language model of the LLM agents")] = "llamacpp",
    threads: Annotated[int | None, typer.Option(min=1, help="model threads per worker")] = None,
    window: Annotated[int, typer.Option(min=1, help="final-window size of the report")] = 5,
    selection: Annotated[
        str, typer.Option(help="greedy | sample (seeds then differ on deterministic games)")
    ] = "greedy",
    warm_from: Annotated[
        str | None, typer.Option(help="store every memory agent starts from (transfer)")
    ] = None,
    price: Annotated[
        str | None, typer.Option(help="$ per million tokens: IN or IN,OUT (API backends)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="logging level")] = "WARNING",
) -> None:
    """Compare agents on environments over seeds: learning curves, final scores and cost."""
    setup_logging(log_level)
    extra = {
        "episodes": episodes,
        "max_steps": max_steps,
        "workers": workers,
        "model": model,
        "threads": threads,
        "window": window,
        "warm_from": warm_from,
        "price": price,
        "selection": selection,
        "backend": backend,
        "ray_address": ray_address,
        "memory": memory,
    }
    config = _compare_config(env, game_seed, agents, seeds, extra)
    try:
        write_settings(config, out)
    except ValueError as err:
        raise fail(str(err)) from err
    jobs = make_jobs(config, out)
    total = sum(j.episodes for j in jobs)
    done_before = sum(min(j.done(), j.episodes) for j in jobs)
    console.print(
        f"{len(config.envs)} env(s) × {len(config.agents)} agent(s) × {len(config.seeds)} "
        f"seed(s): {total} episodes, {done_before} already done; output {out}"
    )
    progress = progress_bar()
    with progress:
        task = progress.add_task("episodes", total=total, completed=done_before)
        try:
            errors = run_jobs(
                jobs,
                config.execution,
                on_progress=lambda n: progress.update(task, completed=done_before + n),
            )
        except (ImportError, RuntimeError) as err:  # no Ray, or Ray cannot start
            raise fail(str(err)) from err
    _render(out)
    if errors:
        raise fail(f"{len(errors)} job(s) failed: " + "; ".join(errors), code=1)


def _interval(iv: dict[str, Any] | None) -> str:
    if not iv:
        return "n/a"
    if iv.get("low") is None:
        return f"{iv['mean']:.2f}"
    return f"{iv['mean']:.2f} ± {(iv['high'] - iv['low']) / 2:.2f}"


def _summary_table(slug: str, agents: dict[str, Any]) -> Table:
    table = Table(title=slug)
    for col in ("agent", "final window", "AUC", "LLM ms/step", "memory ms/step", "tokens/ep"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    for name, entry in agents.items():
        cost = entry["cost"]
        table.add_row(
            name,
            _interval(entry["final_window"]),
            _interval(entry["auc"]),
            f"{cost['llm_ms_per_step']:.0f}",
            f"{cost['memory_ms_per_step']:.2f}",
            f"{cost['billed_tokens_per_episode']:.0f}",
        )
    return table


def _render(out: Path) -> None:
    from jitrl.analysis.report import render_report

    try:
        summary = render_report(out)
    except (FileNotFoundError, ValueError) as err:
        raise fail(str(err)) from err
    for slug, agents in summary["envs"].items():
        console.print(_summary_table(slug, agents))
    console.print(f"Report: {out / 'report.md'}, {out / 'summary.json'}, {out / 'curves.png'}")


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(help="output folder of jitrl compare")],
) -> None:
    """Re-render summary.json, report.md and curves.png from a comparison's saved runs."""
    _render(folder)


@app.command()
def explain(
    run_dir: Annotated[
        Path, typer.Argument(help="run folder (with decisions.jsonl), e.g. runs/latest")
    ],
    episode: Annotated[int, typer.Option(min=0, help="episode index (0-based)")] = 0,
    step: Annotated[int, typer.Option(min=0, help="step in the episode (0-based)")] = 0,
) -> None:
    """Why was this action chosen? Candidates, base and corrected probabilities, neighbours."""
    from jitrl.analysis.explain import explain as render
    from jitrl.analysis.explain import load_decision

    try:
        record = load_decision(run_dir, episode, step)
    except (FileNotFoundError, LookupError, ValueError) as err:
        raise fail(str(err)) from err
    console.print(render(record))
