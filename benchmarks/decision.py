"""Cost of one decision on real game states: shared-cache ``score`` against naive ``score_full``.

Plays each game with the embedded model (actions sampled from the model's own scores, seeded),
and at every decision scores the same prompt and candidates twice, with two model instances so
that each sees its normal cache state:

- ``shared``: :meth:`LlamaCppModel.score` in steady state (the previous decision's prompt, hence
  the system part, is cached; only the new tokens and the candidates are evaluated);
- ``full``: :meth:`LlamaCppModel.score_full` (one full evaluation per candidate).

Per decision it records prompt / system / variable tokens, tokens actually prefilled, prefill and
candidate-scoring seconds, the naive time and the largest score difference; then medians, the
speed-up, and ``scoring / variable-part prefill``, where the variable-part prefill is measured
separately (system part cached, then the variable part evaluated alone). ``memory_seconds`` is
left ``null`` for the memory benchmark. Writes ``decision.json`` and ``decision.png`` to ``--out``.

    python benchmarks/decision.py --games zork1,detective,library --decisions 10

Without Jericho or the game files it falls back to a few recorded zork1 states (and says so).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jitrl.agents.prompts import build_prompt
from jitrl.envs.base import StepInfo
from jitrl.llm import Prompt
from jitrl.llm.llamacpp import LlamaCppConfig, LlamaCppModel

log = logging.getLogger("decision")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_GAMES_DIR = REPO.parent / "shared" / "games" / "jericho"
DEFAULT_OUT = REPO / "benchmarks" / "results"
DEFAULT_GAMES = "zork1,detective,library"
DEFAULT_DECISIONS = 10
DEFAULT_SEED = 1
TARGET_RATIO = 1.3
"""Target: scoring all candidates costs at most this many variable-part prefills."""
HISTORY = 3
FIGURE_SIZE = (11.0, 4.5)
FIGURE_DPI = 120
LEGEND_HEADROOM = 6.0

RECORDED_ZORK1 = [
    (
        "West of House\nYou are standing in an open field west of a white house, with a boarded "
        "front door.\nThere is a small mailbox here.",
        {"location": "West of House", "inventory": []},
        [],
        ["open mailbox", "north", "south", "west"],
    ),
    (
        "Opening the small mailbox reveals a leaflet.",
        {"location": "West of House", "inventory": []},
        ["open mailbox"],
        ["take leaflet", "close mailbox", "north", "south", "west"],
    ),
    (
        "North of House\nYou are facing the north side of a white house. There is no door here, "
        "and all the windows are boarded up. To the north a narrow path winds through the trees.",
        {"location": "North of House", "inventory": ["leaflet"]},
        ["open mailbox", "take leaflet", "north"],
        ["north", "east", "west", "drop leaflet", "read leaflet"],
    ),
    (
        "Behind House\nYou are behind the white house. A path leads into the forest to the east. "
        "In one corner of the house there is a small window which is slightly ajar.",
        {"location": "Behind House", "inventory": ["leaflet"]},
        ["take leaflet", "north", "east"],
        ["open window", "north", "south", "east", "drop leaflet", "read leaflet"],
    ),
]
"""zork1 states recorded from JerichoEnv, used only when Jericho or the games are missing."""


@dataclass(frozen=True)
class Decision:
    """One state to decide in: where it comes from, the prompt and the candidates."""

    game: str
    step: int
    prompt: Prompt
    candidates: list[str]


def game_files(games_dir: Path, games: list[str]) -> list[Path]:
    """Each game's file; raises ImportError / FileNotFoundError when Jericho or one is missing."""
    import jericho  # noqa: F401  (only checks that the extra is installed)

    paths = []
    for game in games:
        found = sorted(games_dir.glob(f"{game}.z*"))
        if not found:
            raise FileNotFoundError(f"no {game}.z* in {games_dir}")
        paths.append(found[0])
    return paths


def play(path: Path, count: int, seed: int, decide: Callable[[Decision], str]) -> None:
    """One seeded playthrough of ``count`` decisions; ``decide`` measures and picks the action."""
    from jitrl.envs import JerichoConfig, JerichoEnv

    env = JerichoEnv(path, config=JerichoConfig(seed=seed))
    try:
        observation, info = env.reset()
        history: list[str] = []
        for step in range(count):
            if not info.candidates:
                observation, info = env.reset()
                history = []
            prompt = build_prompt(observation, info, history[-HISTORY:])
            action = decide(Decision(path.stem, step, prompt, list(info.candidates)))
            history.append(action)
            observation, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                observation, info = env.reset()
                history = []
    finally:
        env.close()


def recorded_decisions() -> list[Decision]:
    """The recorded zork1 fallback states."""
    out = []
    for step, (observation, where, history, candidates) in enumerate(RECORDED_ZORK1):
        info = StepInfo(
            candidates=tuple(candidates),
            location=where["location"],
            inventory=tuple(where["inventory"]),
        )
        out.append(
            Decision("zork1-recorded", step, build_prompt(observation, info, history), candidates)
        )
    return out


def variable_prefill(model: LlamaCppModel, prompt: Prompt, candidate: str) -> tuple[float, int]:
    """Measured cost of prefilling the variable part alone: (seconds, tokens evaluated).

    Caches the system part (with an empty user part) first, then scores ``prompt``; its
    prefill covers exactly the tokens after the common prefix, i.e. the variable part.
    """
    model.score_full(prompt, [candidate])  # empties the cache
    model.score(replace(prompt, user=""), [candidate])
    result = model.score(prompt, [candidate])
    return result.prefill_seconds, result.prefill_tokens


def measure(shared: LlamaCppModel, full: LlamaCppModel, decision: Decision) -> dict[str, Any]:
    """Score one decision with both methods; return its record."""
    tokens, system_tokens = shared.prompt_tokens(decision.prompt)
    fast = shared.score(decision.prompt, decision.candidates)
    slow = full.score_full(decision.prompt, decision.candidates)
    var_seconds, var_evaluated = variable_prefill(full, decision.prompt, decision.candidates[0])
    return {
        "game": decision.game,
        "step": decision.step,
        "candidates": decision.candidates,
        "n_candidates": len(decision.candidates),
        "candidate_tokens": list(fast.token_counts),
        "logprobs": list(fast.logprobs),
        "prompt_tokens": fast.prompt_tokens,
        "system_tokens": system_tokens,
        "variable_tokens": len(tokens) - system_tokens,
        "prefill_tokens": fast.prefill_tokens,
        "prefill_seconds": fast.prefill_seconds,
        "scoring_seconds": fast.scoring_seconds,
        "shared_seconds": fast.seconds,
        "full_seconds": slow.seconds,
        "full_evaluated_tokens": slow.prefill_tokens,
        "variable_prefill_seconds": var_seconds,
        "variable_prefill_tokens": var_evaluated,
        "scoring_over_variable_prefill": fast.scoring_seconds / var_seconds,
        "speedup": slow.seconds / fast.seconds,
        "max_abs_diff_nats": max(
            abs(a - b) for a, b in zip(fast.logprobs, slow.logprobs, strict=True)
        ),
        "memory_seconds": None,
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over decisions, and the headline ratios."""

    def median(key: str) -> float:
        return statistics.median(r[key] for r in records)

    keys = [
        "prompt_tokens",
        "system_tokens",
        "variable_tokens",
        "prefill_tokens",
        "n_candidates",
        "prefill_seconds",
        "scoring_seconds",
        "shared_seconds",
        "full_seconds",
        "variable_prefill_seconds",
        "scoring_over_variable_prefill",
        "speedup",
    ]
    summary: dict[str, Any] = {f"median_{k}": median(k) for k in keys}
    summary["decisions"] = len(records)
    summary["fully_cached_decisions"] = sum(r["prefill_tokens"] == 0 for r in records)
    summary["max_abs_diff_nats"] = max(r["max_abs_diff_nats"] for r in records)
    summary["ratio_of_medians_full_over_shared"] = (
        summary["median_full_seconds"] / summary["median_shared_seconds"]
    )
    summary["share_within_target"] = sum(
        r["scoring_over_variable_prefill"] <= TARGET_RATIO for r in records
    ) / len(records)
    summary["target_ratio"] = TARGET_RATIO
    return summary


def plot(records: list[dict[str, Any]], path: Path) -> None:
    """Per-decision times (left) and scoring against variable-part prefill (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=FIGURE_SIZE)
    index = range(len(records))
    prefill = [r["prefill_seconds"] for r in records]
    scoring = [r["scoring_seconds"] for r in records]
    left.bar(index, prefill, label="shared: prefill (new tokens)")
    left.bar(index, scoring, bottom=prefill, label="shared: candidates")
    full = [r["full_seconds"] for r in records]
    left.plot(index, full, "k.", label="score_full (naive)")
    left.set_yscale("log")
    left.set_ylim(top=max(full) * LEGEND_HEADROOM)
    left.set_xlabel("decision")
    left.set_ylabel("seconds")
    left.legend(fontsize="small", loc="upper center", ncol=3)
    x = [r["variable_prefill_seconds"] for r in records]
    points = right.scatter(x, scoring, c=[r["n_candidates"] for r in records], cmap="viridis")
    fig.colorbar(points, ax=right, label="candidates")
    top = max([*x, *scoring]) * 1.05
    right.plot([0, top], [0, TARGET_RATIO * top], "r--", label=f"{TARGET_RATIO}x target")
    right.set_xlabel("variable-part prefill (s)")
    right.set_ylabel("scoring all candidates (s)")
    right.legend(fontsize="small")
    fig.suptitle("One decision: shared-cache score vs naive score_full")
    fig.tight_layout()
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", default=DEFAULT_GAMES, help="comma-separated game names")
    parser.add_argument("--decisions", type=int, default=DEFAULT_DECISIONS, help="per game")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--games-dir", type=Path, default=DEFAULT_GAMES_DIR)
    parser.add_argument("--threads", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--model", default=None, help="GGUF path (default: embedded SmolLM2)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    return parser.parse_args(argv)


def collect(
    args: argparse.Namespace, shared: LlamaCppModel, full: LlamaCppModel
) -> tuple[list[dict[str, Any]], str]:
    """Measure every decision; returns the records and where the states came from.

    Actions are drawn uniformly (seeded) among candidates not taken in the last few steps, so
    that the states vary; this measures cost, not play.
    """
    rng = random.Random(args.seed)
    records: list[dict[str, Any]] = []
    recent: list[str] = []
    measure(shared, full, recorded_decisions()[0])  # warm-up (page-in, threads), not recorded

    def decide(decision: Decision) -> str:
        record = measure(shared, full, decision)
        records.append(record)
        log.info("%s step %d: %s", decision.game, decision.step, _brief(record))
        fresh = [c for c in decision.candidates if c not in recent] or decision.candidates
        action = rng.choice(fresh)
        recent[:] = [*recent, action][-HISTORY:]
        return action

    try:
        paths = game_files(args.games_dir, args.games.split(","))
    except (ImportError, FileNotFoundError) as exc:
        print(f"FALLBACK: {exc}; using {len(RECORDED_ZORK1)} recorded zork1 states", flush=True)
        for decision in recorded_decisions():
            decide(decision)
        return records, f"recorded zork1 states (fallback: {exc})"
    for path in paths:
        play(path, args.decisions, args.seed, decide)
    return records, f"jericho games in {args.games_dir}"


def _brief(record: dict[str, Any]) -> str:
    return (
        f"{record['n_candidates']} cands, {record['prompt_tokens']} tok "
        f"({record['prefill_tokens']} new): {record['prefill_seconds']:.3f}+"
        f"{record['scoring_seconds']:.3f}s vs full {record['full_seconds']:.2f}s"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = LlamaCppConfig(model_path=args.model, n_threads=args.threads)
    load_before = os.getloadavg()
    started = time.time()
    with LlamaCppModel(config) as shared, LlamaCppModel(config) as full:
        records, source = collect(args, shared, full)
        name = shared.name
    summary = summarise(records)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "source": source,
        "model": name,
        "threads": config.threads,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "wall_seconds": time.time() - started,
        "summary": summary,
        "decisions": records,
    }
    (args.out / "decision.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(records, args.out / "decision.png")
    print(json.dumps({"source": source, "threads": config.threads, **summary}, indent=2))


if __name__ == "__main__":
    main()
