"""How much of an episode is spent where every action was already tried?

Reads the ``decisions.jsonl`` of run folders (``jitrl run``, ``compare`` or ``sweep.py``) and
replays each episode's steps through :func:`jitrl.method.frontier.ways_back`: at every
decision, was there a way back towards actions not yet tried (the agent stood in a state where
it had tried everything offered), and did the agent take it? A loop penalty that counts the way
back like a no-op leaves the agent in such states; ``loop_frontier`` should make these
decisions rarer and always take the way back.

    python benchmarks/ways_back.py --name frontier \\
        off=benchmarks/results/sweep-frontier/v0/runs/coin \\
        on=benchmarks/results/sweep-frontier/v1/runs/coin

Writes ``benchmarks/results/ways-back-<name>/ways_back.json`` and a bar plot beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from jitrl.fileio import atomic_write_text, read_jsonl
from jitrl.method.frontier import Step, ways_back
from jitrl.method.types import State

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("ways_back")


def count(folder: Path) -> dict[str, Any]:
    """Decisions, those with a way back, and those that took it, over a folder's runs."""
    decisions = stuck = took = 0
    files = sorted(folder.rglob("decisions.jsonl"))
    if not files:
        raise SystemExit(f"no decisions.jsonl under {folder}")
    for path in files:
        episodes: dict[int, list[dict[str, Any]]] = {}
        for _, row in read_jsonl(path):
            episodes.setdefault(row["episode"], []).append(row)
        for rows in episodes.values():
            steps: list[Step] = []
            for row in rows:
                state = State(**row["state"]).identity  # as the episode compares states
                back = ways_back(steps, state, row["candidates"])
                decisions += 1
                stuck += bool(back)
                took += row["action"] in back
                steps.append(Step(state, row["candidates"], row["action"]))
    return {
        "folders": len(files),
        "decisions": decisions,
        "with_way_back": stuck / decisions,
        "took_way_back": took / decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=FOLDER, a folder of run folders")
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = {}
    for item in args.runs:
        label, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"expected LABEL=FOLDER, got {item!r}")
        results[label] = count(Path(folder))
        got = results[label]
        log.info(
            "%s: %d decisions, %.1f%% with a way back, %.1f%% took it",
            label,
            got["decisions"],
            100 * got["with_way_back"],
            100 * got["took_way_back"],
        )
    out = REPO / "benchmarks" / "results" / f"ways-back-{args.name}"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ways_back.json", json.dumps(results, indent=2))
    fig, ax = plt.subplots(figsize=(6, 3))
    labels = list(results)
    ax.bar(labels, [100 * r["with_way_back"] for r in results.values()], label="way back open")
    ax.bar(labels, [100 * r["took_way_back"] for r in results.values()], label="taken", width=0.5)
    ax.set_ylabel("% of decisions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "ways_back.png", dpi=120)
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
