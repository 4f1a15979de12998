"""Sweep the method's settings on one Jericho game with the embedded model.

Each configuration is a JSON object of overrides (``gamma``, ``beta``, ``alpha``, ``scale``,
``revisit_penalty``, ``working_memory``) and gets a fresh memory; all share one process and one
LLM score cache, so repeated prompts are scored once. Writes ``sweep-<game>.json``.

    python benchmarks/sweep.py zork1 --episodes 12 '{"beta":0.3}' '{"beta":0.3,"gamma":0.9}'
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from jitrl.agents import make_agent
from jitrl.envs import make_env
from jitrl.llm import load_model
from jitrl.llm.cache import CachedModel
from jitrl.memory import open_store
from jitrl.method.config import JitRLConfig
from jitrl.running.run_folder import RunWriter, run_episodes

REPO = Path(__file__).resolve().parents[1]
CACHE_ENTRIES = 200_000
WINDOW = 5


def config_from(overrides: dict[str, Any]) -> JitRLConfig:
    cfg = JitRLConfig()
    groups = {
        "returns": ("gamma", "revisit_penalty", "terminal_penalty"),
        "values": ("alpha", "scale", "unseen_floor"),
        "policy": ("beta", "selection"),
        "retrieval": ("k", "threshold", "working_memory", "similarity"),
    }
    for group, names in groups.items():
        fields = {n: overrides[n] for n in names if n in overrides}
        if fields:
            cfg = replace(cfg, **{group: replace(getattr(cfg, group), **fields)})
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("game", help="game name in the games folder, e.g. zork1")
    ap.add_argument("configs", nargs="+", help="JSON overrides, one configuration each")
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--max-steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = CachedModel(load_model("llamacpp", n_threads=args.threads), max_entries=CACHE_ENTRIES)
    env = make_env(f"jericho:{args.game}", max_steps=args.max_steps, seed=1)
    rows = []
    for raw in args.configs:
        overrides = json.loads(raw)
        with tempfile.TemporaryDirectory() as tmp:
            agent = make_agent(
                "jitrl", model, open_store(Path(tmp) / "m.sqlite"), config_from(overrides), seed=1
            )
            t0 = time.perf_counter()
            res = run_episodes(env, agent, RunWriter(Path(tmp), {}), episodes=args.episodes, seed=1)
            agent.close()
        scores = [r.score for r in res]
        rows.append(
            {
                "config": overrides,
                "scores": scores,
                "final_window": statistics.fmean(scores[-WINDOW:]),
                "wall_seconds": time.perf_counter() - t0,
            }
        )
        logging.warning(
            "%s %s last %d: %.1f", args.game, overrides, WINDOW, rows[-1]["final_window"]
        )
    env.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"sweep-{args.game}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
