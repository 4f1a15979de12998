"""``jitrl continual``: one memory learns a sequence of tasks; forward and backward transfer."""

from __future__ import annotations

from pathlib import Path

from jitrl.analysis.continual import render_continual
from jitrl.cli.common import LogLevel, OutFolder, app, console, fail, setup_logging
from jitrl.cli.options import with_settings
from jitrl.cli.progress import EpisodeProgress
from jitrl.running.continual import ContinualSpec, phases, run_continual
from jitrl.running.spec import model_threads


def _total(spec: ContinualSpec) -> int:
    sequence, cold = phases(spec, 1)
    return spec.seeds * sum(p.episodes for p in (*sequence, *cold))


@app.command()
@with_settings
def continual(
    spec: ContinualSpec,
    out: OutFolder = Path("runs/continual"),
    log_level: LogLevel = "WARNING",
) -> None:
    """Learn tasks one after another with one memory: forward and backward transfer."""
    setup_logging(log_level)
    threads = model_threads(1, spec.threads)
    with EpisodeProgress("continual", _total(spec)) as progress:
        try:
            run_continual(spec, out, threads=threads, on_episode=progress.episode)
        except KeyboardInterrupt:
            raise fail(
                f"interrupted: finished episodes are kept in {out}; rerun to resume", 130
            ) from None
    summary = render_continual(spec, out)
    for row in summary["tasks"]:
        bwt = row["backward_transfer"]
        fwt = row["forward_transfer"]
        console.print(
            f"{row['task']}: forward transfer {fwt['mean'] if fwt else 'n/a'}, "
            f"backward transfer {bwt['mean'] if bwt else 'n/a'}",
            highlight=False,
        )
    console.print(f"Report: {out / 'continual.md'}")
