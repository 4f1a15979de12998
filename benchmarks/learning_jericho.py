"""Does the agent improve episode after episode? JitRL against the static LLM on Jericho games.

Every (game, agent, seed) job plays ``--episodes`` episodes of ``--max-steps`` steps with the
embedded model and its own fresh memory store; jobs run in parallel worker processes (model
threads are split between them). Jobs resume where they stopped: rerunning skips finished
episodes. Writes ``results.json`` and ``curves.png`` into ``--out`` and prints a Markdown table.

    python benchmarks/learning_jericho.py --games zork1,library,detective --episodes 20
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from jitrl.agents import make_agent
from jitrl.envs import make_env
from jitrl.llm import load_model
from jitrl.llm.cache import CachedModel
from jitrl.memory import open_store
from jitrl.running.run_folder import RunWriter, run_episodes

log = logging.getLogger("learning")
REPO = Path(__file__).resolve().parents[1]
WINDOW = 5


def game_path(games_dir: Path, name: str) -> Path:
    hits = sorted(games_dir.glob(f"{name}.z*"))
    if not hits:
        raise SystemExit(f"no game file {name}.z* in {games_dir}")
    return hits[0]


def run_job(job: dict[str, Any], play: bool = True) -> dict[str, Any]:
    """One (game, agent, seed) learning run; resumable through its run folder and store.

    With ``play=False`` nothing is played: the episodes already in the folder are summarised.
    """
    logging.basicConfig(level=logging.WARNING)
    folder = Path(job["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    writer = RunWriter(folder, {k: v for k, v in job.items() if k != "folder"})
    todo = job["episodes"] - writer.next_index
    if todo > 0 and play:
        env = make_env(f"jericho:{job['path']}", max_steps=job["max_steps"], seed=job["seed"])
        model = CachedModel(load_model(job["model"], n_threads=job["threads"]))
        store = open_store(folder / "memory.sqlite") if job["agent"] == "jitrl" else None
        agent = make_agent(job["agent"], model, store, seed=job["seed"])
        try:
            run_episodes(env, agent, writer, episodes=todo, seed=job["seed"])
        finally:
            env.close()
            agent.close()
            model.close()
    return {
        **job,
        "scores": [r.score for r in writer.results],
        "llm_seconds": sum(r.llm_seconds for r in writer.results),
        "memory_seconds": sum(r.memory_seconds for r in writer.results),
        "wall_seconds": sum(r.wall_seconds for r in writer.results),
        "steps": sum(r.steps for r in writer.results),
    }


def aggregate(done: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for job in done:
        entry = table.setdefault(job["game"], {}).setdefault(job["agent"], {"runs": []})
        entry["runs"].append(job)
    for agents in table.values():
        for entry in agents.values():
            runs = entry["runs"]
            n = min(len(r["scores"]) for r in runs)
            curve = [statistics.fmean(r["scores"][i] for r in runs) for i in range(n)]
            steps = sum(r["steps"] for r in runs) or 1
            entry.update(
                curve=curve,
                first_window=statistics.fmean(curve[:WINDOW]),
                final_window=statistics.fmean(curve[-WINDOW:]),
                llm_ms_per_step=1000 * sum(r["llm_seconds"] for r in runs) / steps,
                memory_ms_per_step=1000 * sum(r["memory_seconds"] for r in runs) / steps,
                wall_s=sum(r["wall_seconds"] for r in runs),
            )
            entry["runs"] = [{"seed": r["seed"], "scores": r["scores"]} for r in runs]
    return table


def plot(table: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 3.6), squeeze=False)
    for ax, (game, agents) in zip(axes[0], sorted(table.items()), strict=False):
        for agent, entry in sorted(agents.items()):
            ax.plot(range(1, len(entry["curve"]) + 1), entry["curve"], marker=".", label=agent)
        ax.set_title(game)
        ax.set_xlabel("episode")
        ax.set_ylabel("final score")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(table: dict[str, Any]) -> str:
    rows = [
        "| game | agent | first 5 | last 5 | LLM ms/step | memory ms/step | memory/LLM |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for game, agents in sorted(table.items()):
        for agent, e in sorted(agents.items()):
            ratio = e["memory_ms_per_step"] / e["llm_ms_per_step"] if e["llm_ms_per_step"] else 0
            rows.append(
                f"| {game} | {agent} | {e['first_window']:.1f} | {e['final_window']:.1f} "
                f"| {e['llm_ms_per_step']:.0f} | {e['memory_ms_per_step']:.2f} "
                f"| {ratio:.3%} |"
            )
    return "\n".join(rows)


def play_all(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    done = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for fut in as_completed(futures):
            res = fut.result()
            done.append(res)
            log.info(
                "%s/%s seed %d done: %s", res["game"], res["agent"], res["seed"], res["scores"]
            )
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--games", default="zork1,library,detective")
    ap.add_argument(
        "--games-dir",
        type=Path,
        default=Path(
            os.environ.get("JITRL_JERICHO_DIR", REPO.parent / "shared" / "games" / "jericho")
        ),
    )
    ap.add_argument("--agents", default="static,jitrl")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=60)
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="llamacpp")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "learning")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="summarise the episodes already played, play nothing",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    jobs = [
        {
            "game": g,
            "agent": a,
            "seed": int(s),
            "path": str(game_path(args.games_dir, g)),
            "episodes": args.episodes,
            "max_steps": args.max_steps,
            "model": args.model,
            "threads": threads,
            "folder": str(args.out / g / f"{a}-seed{s}"),
        }
        for g in args.games.split(",")
        for s in args.seeds.split(",")
        for a in args.agents.split(",")
    ]
    t0 = time.perf_counter()
    if args.report_only:
        done = [r for r in (run_job(job, play=False) for job in jobs) if r["scores"]]
    else:
        done = play_all(jobs, args.workers)
    if not done:
        raise SystemExit(f"no finished episodes under {args.out}")
    table = aggregate(done)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": "python benchmarks/learning_jericho.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("out", "games_dir")
        ),
        "wall_seconds": time.perf_counter() - t0,
        "window": WINDOW,
        "games": table,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    plot(table, args.out / "curves.png")
    print(markdown(table))


if __name__ == "__main__":
    main()
