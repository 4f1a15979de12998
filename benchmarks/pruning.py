"""How often does the gold action survive candidate pruning, and what does pruning cost?

Plays each environment's gold path (TextWorldExpress and ScienceWorld compute one per
instance); at every step where the gold action is among the candidates, prunes the candidates to
``prune_to`` with :func:`jitrl.method.pruning.prune` (no memory: the weakest case, relevance to
the state's words alone) and records whether the gold action was kept. Reports the recall per
``prune_to``, the candidates per state and the time per pruning.

    python benchmarks/pruning.py --env twx:cookingworld,scienceworld:find-living-thing \\
        --instances 8

Writes ``benchmarks/results/pruning/pruning.json`` and a table into ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench_md import replace_block
from jitrl.envs import make_env
from jitrl.fileio import atomic_write_text
from jitrl.method.config import PruneConfig
from jitrl.method.pruning import prune

REPO = Path(__file__).resolve().parents[1]
LIMITS = (10, 20, 30, 40, 60)
MAX_STEPS = 200


def gold_steps(spec: str, instances: int, seed: int) -> list[tuple[str, list[str], str]]:
    """``(state text, candidates, gold action)`` along the gold path of several instances."""
    env = make_env(spec, max_steps=MAX_STEPS, seed=seed)
    out = []
    try:
        for instance in range(instances):
            _, info = env.reset(seed=seed * 1000 + instance)
            for action in env.unwrapped.gold_path():
                if action in info.candidates:
                    out.append((info.state.text, list(info.candidates), action))
                _, _, done, _, info = env.step(action)
                if done:
                    break
    finally:
        env.close()
    return out


def measure(steps: list[tuple[str, list[str], str]]) -> dict[str, Any]:
    """Recall and time per limit."""
    rows = {}
    for limit in LIMITS:
        config = PruneConfig(prune_to=limit)
        kept, seconds = 0, []
        for text, candidates, gold in steps:
            t0 = time.perf_counter()
            keep = prune(text, candidates, [], None, config)
            seconds.append(time.perf_counter() - t0)
            kept += candidates.index(gold) in keep
        rows[str(limit)] = {
            "recall": kept / len(steps) if steps else 0.0,
            "ms_median": 1000 * statistics.median(seconds) if seconds else 0.0,
        }
    sizes = [len(c) for _, c, _ in steps]
    return {
        "steps": len(steps),
        "candidates_median": statistics.median(sizes) if sizes else 0,
        "candidates_max": max(sizes, default=0),
        "limits": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--env", required=True)
    ap.add_argument("--instances", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    results = {
        spec: measure(gold_steps(spec, args.instances, args.seed)) for spec in args.env.split(",")
    }
    out = REPO / "benchmarks" / "results" / "pruning"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "pruning.json", json.dumps(results, indent=2))
    head = " | ".join(f"recall at {n}" for n in LIMITS)
    lines = [
        f"| env | gold steps | candidates (median / max) | {head} | ms per pruning |",
        "|---|---:|---:|" + "---:|" * len(LIMITS) + "---:|",
    ]
    for spec, r in results.items():
        cells = " | ".join(f"{r['limits'][str(n)]['recall']:.2f}" for n in LIMITS)
        ms = r["limits"][str(LIMITS[-1])]["ms_median"]
        sizes = f"{r['candidates_median']:g} / {r['candidates_max']}"
        lines.append(f"| {spec} | {r['steps']} | {sizes} | {cells} | {ms:.2f} |")
    command = f"python benchmarks/pruning.py --env {args.env} --instances {args.instances}"
    replace_block("PRUNING", f"```bash\n{command}\n```\n\n" + "\n".join(lines), "## Pruning")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
