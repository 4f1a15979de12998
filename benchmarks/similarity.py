"""Which similarity threshold makes "the same situation in another instance" a neighbour?

States are collected by random play on several instances of each environment. Two states of
*different* instances are the same situation when the agent is in the same room with the same
inventory (TextWorldExpress, ScienceWorld: parsed from the state; Jericho: the emulator's
location and inventory, used here as ground truth only). For every pair, the word n-gram Jaccard
of the two state texts (the default similarity) is computed; for each threshold we report
precision and recall of "Jaccard >= threshold" as a detector of the same situation, and F1.

    python benchmarks/similarity.py --env twx:coin,twx:twc,twx:sorting,twx:mapreader,\\
        twx:cookingworld --instances 12 --steps 15

Writes ``benchmarks/results/similarity/similarity.json`` and a table into ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path
from typing import Any

from bench_md import replace_block
from jitrl.envs import make_env
from jitrl.fileio import atomic_write_text
from jitrl.method.similarity import jaccard, ngrams

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MAX_PAIRS = 200_000


def collect(spec: str, instances: int, steps: int, seed: int) -> list[tuple[int, str, str]]:
    """``(instance, situation, text)`` of the states met by random play."""
    rng = random.Random(seed)
    env = make_env(spec, max_steps=steps, seed=seed)
    out = []
    try:
        for instance in range(instances):
            _, info = env.reset(seed=seed * 1000 + instance)
            for _ in range(steps):
                situation = f"{info.location}|{sorted(info.inventory or ())}"
                out.append((instance, situation, info.state.text))
                if not info.candidates:
                    break
                _, _, done, cut, info = env.step(rng.choice(info.candidates))
                if done or cut:
                    break
    finally:
        env.close()
    return out


def score_pairs(
    states: list[tuple[int, str, str]], ngram: int, seed: int
) -> list[tuple[float, bool]]:
    """Jaccard and same-situation flag of pairs of states from different instances."""
    pairs = [(a, b) for a, b in itertools.combinations(states, 2) if a[0] != b[0]]
    random.Random(seed).shuffle(pairs)
    return [
        (jaccard(ngrams(a[2], ngram), ngrams(b[2], ngram)), a[1] == b[1])
        for a, b in pairs[:MAX_PAIRS]
    ]


def table(scored: list[tuple[float, bool]]) -> list[dict[str, Any]]:
    """Precision, recall and F1 of each threshold."""
    positives = sum(same for _, same in scored)
    rows = []
    for t in THRESHOLDS:
        hits = [same for sim, same in scored if sim >= t]
        tp = sum(hits)
        precision = tp / len(hits) if hits else 0.0
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"threshold": t, "precision": precision, "recall": recall, "f1": f1})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--env", required=True, help="comma-separated environment specs")
    ap.add_argument("--instances", type=int, default=12)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--ngram", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    results: dict[str, Any] = {}
    for spec in args.env.split(","):
        states = collect(spec, args.instances, args.steps, args.seed)
        scored = score_pairs(states, args.ngram, args.seed)
        results[spec] = {
            "states": len(states),
            "pairs": len(scored),
            "same_share": sum(s for _, s in scored) / max(1, len(scored)),
            "thresholds": table(scored),
        }
        best = max(results[spec]["thresholds"], key=lambda r: r["f1"])
        print(f"{spec}: {len(states)} states, best F1 {best['f1']:.2f} at {best['threshold']}")
    out = REPO / "benchmarks" / "results" / "similarity"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "similarity.json", json.dumps(results, indent=2))
    lines = [
        "| env | states | " + " | ".join(f"F1 at {t}" for t in THRESHOLDS) + " |",
        "|---|---:|" + "---:|" * len(THRESHOLDS),
    ]
    for spec, r in results.items():
        cells = " | ".join(f"{row['f1']:.2f}" for row in r["thresholds"])
        lines.append(f"| {spec} | {r['states']} | {cells} |")
    command = "python benchmarks/similarity.py --env " + args.env
    body = f"```bash\n{command} --instances {args.instances} --steps {args.steps}\n```\n\n"
    body += "\n".join(lines) + "\n"
    replace_block("SIMILARITY", body, "## Similarity threshold (issue 12)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
