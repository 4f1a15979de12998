"""Learning curves of every agent on the shared Jericho games (or any suite), into BENCHMARKS.md.

A thin driver over ``jitrl compare``'s machinery: the same jobs, run folders, resume and report.
It only orders the jobs (cheap agents first, then the LLM agents game by game in ``--games``
order, so an interrupted run has whole games done) and writes the report into ``BENCHMARKS.md``
between ``<!-- COMPARE:<name> -->`` markers.

    python benchmarks/learning.py --suite jericho:../shared/games/jericho --episodes 20 \
        --max-steps 60 --seeds 1 --workers 2 --name jericho
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
import time
from pathlib import Path

from bench_md import replace_block
from jitrl.agents import AGENTS, LLM_AGENTS
from jitrl.analysis.report import render_report
from jitrl.running.compare import (
    CompareConfig,
    Job,
    expand_envs,
    make_jobs,
    run_jobs,
    write_settings,
)

log = logging.getLogger("learning")
REPO = Path(__file__).resolve().parents[1]


def ordered(jobs: list[Job], games: list[str]) -> list[Job]:
    """Cheap agents first; then LLM agents game by game in the given order."""

    def rank(job: Job) -> tuple[int, int, int, int]:
        game = games.index(job.slug) if job.slug in games else len(games)
        llm = job.agent in LLM_AGENTS
        return (int(llm), game if llm else 0, job.seed, AGENTS.index(job.agent))

    return sorted(jobs, key=rank)


def update_benchmarks(name: str, out: Path, command: str, seconds: float) -> None:
    """Replace this comparison's block in BENCHMARKS.md with its report."""
    report = (out / "report.md").read_text(encoding="utf-8")
    report = re.sub(r"^# .*\n", "", report)  # the section has its own heading
    rel = out.relative_to(REPO)
    body = (
        f"```bash\n{command}\n```\n\n"
        f"{report.strip()}\n\n"
        f"![learning curves]({rel}/curves.png)\n\n"
        f"Results: `{rel}/summary.json`; this invocation ran {seconds / 60:.0f} min."
    )
    replace_block(f"COMPARE:{name}", body, f"## Comparison: {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--suite", default=f"jericho:{REPO.parent / 'shared' / 'games' / 'jericho'}")
    ap.add_argument("--games", default="", help="order of the LLM jobs (slugs), e.g. zork1,library")
    ap.add_argument("--agents", default=",".join(AGENTS))
    ap.add_argument("--only", default="", help="play only these envs now (slugs); report all")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--game-seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads per worker")
    ap.add_argument("--model", default="llamacpp")
    ap.add_argument("--name", default="jericho", help="section name in BENCHMARKS.md")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true", help="play nothing; re-render")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = (args.out or REPO / "benchmarks" / "results" / f"compare-{args.name}").resolve()
    config = CompareConfig(
        envs=expand_envs(args.suite, args.game_seed),
        agents=tuple(args.agents.split(",")),
        seeds=tuple(range(1, args.seeds + 1)),
        episodes=args.episodes,
        max_steps=args.max_steps,
        model=args.model,
        workers=args.workers,
        threads=args.threads,
    )
    t0 = time.perf_counter()
    if not args.report_only:
        write_settings(config, out)
        games = [g for g in args.games.split(",") if g] or list(config.envs)
        only = [g for g in args.only.split(",") if g]
        jobs = [j for j in make_jobs(config, out) if not only or j.slug in only]
        errors = run_jobs(
            ordered(jobs, games),
            config.execution,
            on_job=lambda r: log.info(
                "%s/%s/seed%d: %s", r["slug"], r["agent"], r["seed"], r["scores"]
            ),
        )
        for err in errors:
            log.error("failed: %s", err)
    render_report(out)
    command = "python benchmarks/learning.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    update_benchmarks(args.name, out, command, time.perf_counter() - t0)
    print((out / "report.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
