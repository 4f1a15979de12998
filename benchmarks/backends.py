"""Process pool vs Ray: the same comparison on both backends, same results, wall time of each.

Runs one ``jitrl compare`` configuration twice, into ``OUT/process`` and ``OUT/ray`` (each from
scratch), checks that every run folder's decisions are identical, and records wall seconds per
backend (``--repeats`` times, alternating; medians and the ratio ray/process). Writes
``backends.json`` and ``backends.png`` and the ``BACKENDS`` section of BENCHMARKS.md.

    python benchmarks/backends.py --env textworld:1 --agents static,jitrl --episodes 3 \
        --max-steps 10 --seeds 2 --workers 2 --model llamacpp
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_compare import prepare
from bench_md import replace_block
from jitrl.analysis.report import render_report
from jitrl.running.compare import run_jobs
from jitrl.running.executors import BACKENDS

log = logging.getLogger("backends")
REPO = Path(__file__).resolve().parents[1]
MARK = "BACKENDS"


def decisions(folder: Path) -> dict[str, list[tuple[int, int, str]]]:
    """Run folder -> (episode, step, action) of every decision, for comparing backends."""
    out = {}
    for path in sorted(folder.glob("runs/*/*/*/decisions.jsonl")):
        with path.open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        key = str(path.parent.relative_to(folder))
        out[key] = [(r["episode"], r["step"], r["action"]) for r in rows]
    return out


def play(settings: dict[str, Any], backend: str, out: Path) -> float:
    """Run the comparison from scratch into ``out``; returns wall seconds."""
    shutil.rmtree(out, ignore_errors=True)
    workers = int(settings["workers"])
    flags = {k: v for k, v in settings.items() if k != "workers"}
    _, execution, jobs = prepare(flags, out, workers, backend)
    t0 = time.perf_counter()
    errors = run_jobs(jobs, execution)
    seconds = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{backend}: {errors}")
    render_report(out)
    return seconds


def measure(base: dict[str, Any], out: Path, repeats: int) -> dict[str, Any]:
    """Both backends ``repeats`` times; wall seconds and whether the play was identical."""
    seconds: dict[str, list[float]] = {b: [] for b in BACKENDS}
    played: dict[str, dict[str, list[tuple[int, int, str]]]] = {}
    for i in range(repeats):
        for backend in BACKENDS if i % 2 == 0 else BACKENDS[::-1]:
            secs = play(base, backend, out / backend)
            seconds[backend].append(secs)
            played[backend] = decisions(out / backend)
            log.info("%s run %d: %.1f s", backend, i + 1, secs)
    same = played["process"] == played["ray"]
    medians = {b: statistics.median(s) for b, s in seconds.items()}
    summary = json.loads((out / "process" / "summary.json").read_text(encoding="utf-8"))
    return {
        "seconds": seconds,
        "median_seconds": medians,
        "ray_over_process": medians["ray"] / medians["process"],
        "identical_decisions": same,
        "run_folders": len(played["process"]),
        "decisions": sum(len(v) for v in played["process"].values()),
        "final_window": {
            slug: {a: e["final_window"] for a, e in agents.items()}
            for slug, agents in summary["envs"].items()
        },
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Wall seconds per repeat and backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, backend in enumerate(BACKENDS):
        secs = result["seconds"][backend]
        ax.scatter([i] * len(secs), secs, color=f"C{i}", label=backend)
        ax.hlines(result["median_seconds"][backend], i - 0.2, i + 0.2, color=f"C{i}")
    ax.set_xticks(range(len(BACKENDS)), list(BACKENDS))
    ax.set_ylabel("wall seconds (line: median)")
    ax.set_title("the same comparison on each backend")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})


def update_benchmarks(result: dict[str, Any], command: str, rel: str) -> None:
    """Replace the ``BACKENDS`` block of BENCHMARKS.md."""
    med = result["median_seconds"]
    body = (
        f"```bash\n{command}\n```\n\n"
        f"| backend | median wall s | runs |\n|---|---:|---:|\n"
        + "".join(f"| {b} | {med[b]:.1f} | {len(result['seconds'][b])} |\n" for b in BACKENDS)
        + f"\nRatio of medians ray / process: **{result['ray_over_process']:.2f}**. "
        f"Decisions identical on both backends: **{result['identical_decisions']}** "
        f"({result['decisions']} decisions in {result['run_folders']} run folders).\n\n"
        f"![backends]({rel}/backends.png)\n\nResults: `{rel}/backends.json`."
    )
    replace_block(MARK, body, "## Execution backends: process pool vs Ray")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--env", default="textworld:1")
    ap.add_argument("--agents", default="static,jitrl")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="llamacpp")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "backends")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    base = {
        "env": args.env,
        "agents": args.agents,
        "seeds": args.seeds,
        "episodes": args.episodes,
        "max_steps": args.max_steps,
        "model": args.model,
        "workers": args.workers,
        "threads": args.threads,
    }
    out = args.out.resolve()
    result = measure(base, out, args.repeats)
    (out / "backends.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    plot(result, out / "backends.png")
    command = "python benchmarks/backends.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    update_benchmarks(result, command, os.path.relpath(out, REPO))
    log.info("%s", json.dumps({k: result[k] for k in ("median_seconds", "identical_decisions")}))
    if not result["identical_decisions"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
