"""``jitrl compare``, ``report``, ``explain`` and ``diagnose``: experiments and their inspection."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from jitrl.cli.common import LogLevel, OutFolder, app, console, fail, setup_logging
from jitrl.cli.options import with_settings
from jitrl.cli.progress import EpisodeProgress
from jitrl.running.compare import (
    check_compare,
    compare_settings,
    make_jobs,
    run_jobs,
    write_settings,
)
from jitrl.running.executors import ExecutionConfig
from jitrl.running.spec import CompareSpec, model_threads

log = logging.getLogger(__name__)


@app.command()
@with_settings
def compare(
    spec: CompareSpec,
    execution: ExecutionConfig,
    out: OutFolder = Path("runs/compare"),
    log_level: LogLevel = "WARNING",
) -> None:
    """Compare agents on environments over seeds: learning curves, final scores and cost."""
    setup_logging(log_level)
    try:
        envs = check_compare(spec, execution)
        write_settings(compare_settings(spec, envs, execution), out)
    except (ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from err
    jobs = make_jobs(spec, envs, out, model_threads(execution.workers, spec.threads))
    total = sum(j.episodes for j in jobs)
    done_before = sum(min(j.done(), j.episodes) for j in jobs)
    console.print(
        f"{len(envs)} env(s) × {len(spec.agent_names)} agent(s) × {spec.seeds} "
        f"seed(s): {total} episodes, {done_before} already done; output {out}"
    )
    with EpisodeProgress("episodes", total, done=done_before) as progress:
        try:
            errors = run_jobs(
                jobs, execution, on_progress=lambda n: progress.finished(done_before + n)
            )
        except (ImportError, RuntimeError) as err:  # no Ray, or Ray cannot start
            raise fail(str(err)) from err
        except KeyboardInterrupt:
            raise fail(
                f"interrupted: finished episodes are kept in {out}; rerun to resume", 130
            ) from None
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


@app.command()
def diagnose(
    run_dir: Annotated[
        Path, typer.Argument(help="run folder (with decisions.jsonl), e.g. runs/latest")
    ],
    window: Annotated[int, typer.Option(min=1, help="episodes per window")] = 10,
) -> None:
    """Who steered, the model or memory, and which predicted the outcomes? Per window."""
    from jitrl.analysis.diagnosis import diagnose as judge
    from jitrl.analysis.diagnosis import reading

    try:
        windows, later = judge(run_dir, window)
    except (FileNotFoundError, ValueError) as err:
        raise fail(str(err)) from err
    table = Table(title=f"{run_dir}: realised advantage against each source (Spearman ρ)")
    columns = ("decisions", "memory-led", "model weight", "off model's top", "ρ memory", "ρ model")
    table.add_column("episodes")
    for col in columns:
        table.add_column(col, justify="right")
    table.add_column("commonest kind")
    for w in windows:
        table.add_row(
            f"{w.first}-{w.last}",
            str(w.decisions),
            _maybe(w.memory_led, ".0%"),
            _maybe(w.model_weight, ".2f"),
            _maybe(w.off_model, ".0%"),
            _maybe(w.memory_rho, "+.2f"),
            _maybe(w.model_rho, "+.2f"),
            "-" if w.top_kind is None else f"{w.top_kind} {w.top_share or 0.0:.0%}",
        )
    console.print(table)
    console.print(reading(later))


def _maybe(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)
