"""Transfer: does memory gathered on some games of one kind help on new games of that kind?

1. gather: the JitRL agent plays ``--episodes`` episodes on each of K TextWorld games (seeds
   ``--gather-seed ..``), each with its own store; the stores are merged into one;
2. test: on K *new* games (seeds ``--test-seed ..``) the agents play from a cold start and from a
   copy of the merged store (``jitrl compare --warm-from``), same seeds and settings.

Everything goes through ``jitrl compare``'s machinery (resumable). Writes ``transfer.json`` and
updates ``BENCHMARKS.md`` between ``<!-- TRANSFER -->`` markers.

    python benchmarks/transfer.py --suite textworld-simple --games 3 --episodes 10 --max-steps 25
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from bench_compare import run as run_comparison
from bench_md import replace_block
from jitrl.analysis.report import render_report
from jitrl.envs.suites import expand_envs
from jitrl.memory import open_store
from jitrl.memory.jsonl import add_episodes, group_episodes

log = logging.getLogger("transfer")
REPO = Path(__file__).resolve().parents[1]


def run(settings: dict[str, Any], out: Path, workers: int) -> dict[str, Any]:
    run_comparison(settings, out, workers)
    return render_report(out)


def merge(stores: list[Path], dest: Path) -> int:
    """Merge the episodes of ``stores`` into ``dest`` (idempotent); returns its size."""
    target = open_store(dest)
    try:
        for path in stores:
            src = open_store(path, create=False)
            add_episodes(target, group_episodes(src))
            src.close()
        return len(target)
    finally:
        target.close()


def table(cold: dict[str, Any], warm: dict[str, Any], agents: list[str]) -> tuple[str, dict]:
    rows = [
        "| game | agent | episode 1 cold → warm | first 3 cold → warm "
        "| final window cold → warm | memory from other games (warm) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    figures: dict[str, Any] = {}
    for slug in cold["envs"]:
        for agent in agents:
            c, w = cold["envs"][slug][agent], warm["envs"][slug][agent]
            cc = [p["mean"] for p in c["curve"]]
            wc = [p["mean"] for p in w["curve"]]
            share = w["foreign_neighbour_share"]
            fig = {
                "first_cold": cc[0],
                "first_warm": wc[0],
                "first3_cold": sum(cc[:3]) / 3,
                "first3_warm": sum(wc[:3]) / 3,
                "final_cold": c["final_window"]["mean"],
                "final_warm": w["final_window"]["mean"],
                "foreign_share": share,
            }
            figures[f"{slug}/{agent}"] = fig
            rows.append(
                f"| {slug} | {agent} | {fig['first_cold']:.1f} → {fig['first_warm']:.1f} "
                f"| {fig['first3_cold']:.1f} → {fig['first3_warm']:.1f} "
                f"| {fig['final_cold']:.1f} → {fig['final_warm']:.1f} "
                f"| {100 * (share or 0):.0f} % |"
            )
    return "\n".join(rows), figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--suite", default="textworld-simple")
    ap.add_argument("--games", type=int, default=3)
    ap.add_argument("--gather-seed", type=int, default=2)
    ap.add_argument("--test-seed", type=int, default=11)
    ap.add_argument("--agents", default="jitrl")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=25)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "transfer")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def config(seed: int, agents: str, warm: str | None = None) -> dict[str, Any]:
        return {
            "env": f"{args.suite}:{args.games}",
            "game_seed": seed,
            "agents": agents,
            "seeds": 1,
            "episodes": args.episodes,
            "max_steps": args.max_steps,
            "threads": args.threads,
            "warm_from": warm,
        }

    gather_envs = expand_envs(f"{args.suite}:{args.games}", args.gather_seed)
    run(config(args.gather_seed, "jitrl"), args.out / "gather", args.workers)
    stores = sorted((args.out / "gather" / "runs").glob("*/jitrl/seed1/memory.sqlite"))
    merged = args.out / "gathered.sqlite"
    size = merge(stores, merged)
    agents = tuple(args.agents.split(","))
    test_envs = expand_envs(f"{args.suite}:{args.games}", args.test_seed)
    cold = run(config(args.test_seed, args.agents), args.out / "cold", args.workers)
    warm = run(config(args.test_seed, args.agents, str(merged)), args.out / "warm", args.workers)
    text, figures = table(cold, warm, list(agents))
    command = "python benchmarks/transfer.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = {"command": command, "gathered_experiences": size, "games": figures}
    (args.out / "transfer.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    body = (
        f"```bash\n{command}\n```\n\n"
        f"Memory gathered on {', '.join(gather_envs)} ({size} experiences), tested on "
        f"{', '.join(test_envs)}:\n\n{text}"
    )
    replace_block("TRANSFER", body, "## Transfer across tasks")
    print(text)


if __name__ == "__main__":
    main()
