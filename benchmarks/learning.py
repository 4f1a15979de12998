"""Learning curves and test scores of agents on a suite, into BENCHMARKS.md.

A thin driver over ``jitrl compare``: the same settings, jobs, run folders, resume and report.
It orders the jobs (cheap agents first, then the LLM agents environment by environment, so an
interrupted run has whole environments done) and writes the report into ``BENCHMARKS.md``
between ``<!-- COMPARE:<name> -->`` markers. Any setting of ``jitrl compare`` can be given as
``--set name=value`` (repeatable).

    python benchmarks/learning.py --env twx:coin,twx:twc --agents static,jitrl,random,qlearn \\
        --episodes 30 --max-steps 40 --test-episodes 10 --seeds 3 --workers 2 --name twx
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
import time
from pathlib import Path

from bench_compare import run
from bench_md import replace_block
from jitrl.agents import agent_spec
from jitrl.analysis.report import render_report
from jitrl.running.compare import Job

log = logging.getLogger("learning")
REPO = Path(__file__).resolve().parents[1]


def ordered(jobs: list[Job]) -> list[Job]:
    """Agents without a model first; then the LLM agents environment by environment."""
    slugs = list(dict.fromkeys(j.slug for j in jobs))

    def rank(job: Job) -> tuple[int, int, int, str]:
        llm = agent_spec(job.run.agent).needs_model
        return (int(llm), slugs.index(job.slug) if llm else 0, job.label, job.run.agent)

    return sorted(jobs, key=rank)


def update_benchmarks(name: str, out: Path, command: str, seconds: float) -> None:
    """Replace this comparison's block in BENCHMARKS.md with its report."""
    report = (out / "report.md").read_text(encoding="utf-8")
    report = re.sub(r"^# .*\n", "", report)  # the section has its own heading
    report = report.replace("](curves.png)", f"]({out.relative_to(REPO)}/curves.png)")
    rel = out.relative_to(REPO)
    body = (
        f"```bash\n{command}\n```\n\n{report.strip()}\n\n"
        f"Results: `{rel}/summary.json`, `{rel}/report.html`; this invocation ran "
        f"{seconds / 60:.0f} min."
    )
    replace_block(f"COMPARE:{name}", body, f"## Comparison: {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--env", required=True, help="suites, comma-separated (as jitrl compare)")
    ap.add_argument("--agents", default="static,jitrl,random,qlearn")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument("--test-episodes", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="model threads per worker")
    ap.add_argument("--model", default="llamacpp")
    ap.add_argument("--set", action="append", default=[], help="name=value of any setting")
    ap.add_argument("--name", required=True, help="section name in BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="play nothing; re-render")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = REPO / "benchmarks" / "results" / f"compare-{args.name}"
    settings = {
        "env": args.env,
        "agents": args.agents,
        "episodes": args.episodes,
        "max_steps": args.max_steps,
        "test_episodes": args.test_episodes,
        "seeds": args.seeds,
        "window": args.window,
        "threads": args.threads,
        "model": args.model,
        **dict(item.split("=", 1) for item in args.set),
    }
    t0 = time.perf_counter()
    if not args.report_only:
        run(settings, out, args.workers, order=ordered)
    render_report(out)
    command = "python benchmarks/learning.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    update_benchmarks(args.name, out, command, time.perf_counter() - t0)
    print((out / "report.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
