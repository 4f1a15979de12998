"""Sweep settings of the method: one comparison per variant, all jobs in one process pool.

Each variant is a JSON object of settings by their flat names (the same names as the flags and
the TOML keys: ``{"threshold": 0.4, "action_similarity": "exact"}``), applied on top of the
base settings given as flags (``null`` sets a setting to none, e.g. ``{"unseen_floor": null}``).
Every variant plays the same environments and seeds, with
``jitrl compare``'s jobs, run folders and resume; the summary gives, per environment and variant,
the mean score of the first and last ``--window`` learning episodes and of the test episodes,
each with a 95% confidence interval over seeds.

    python benchmarks/sweep.py --env twx:coin,twx:twc --model uniform --agents jitrl \\
        --episodes 30 --max-steps 30 --test-episodes 10 --seeds 5 --workers 2 \\
        --name memory '{}' '{"action_similarity": "exact"}'

Writes ``benchmarks/results/sweep-<name>/sweep.json`` and ``sweep.md`` (``--out`` moves them).
A sweep stopped or still running is summarised, over the seeds it has finished, by the same
command with ``--summarise-only``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from bench_compare import prepare
from jitrl.analysis.stats import mean_ci
from jitrl.envs.suites import expand_envs
from jitrl.fileio import atomic_write_text, read_jsonl
from jitrl.running.compare import run_jobs
from jitrl.running.executors import ExecutionConfig
from jitrl.running.spec import CompareSpec
from jitrl.settings import SettingsError

log = logging.getLogger("sweep")
REPO = Path(__file__).resolve().parents[1]


def _scores(folder: Path, phase: str) -> list[float]:
    path = folder / "episodes.jsonl"
    if not path.exists():
        return []
    return [row["score"] for _, row in read_jsonl(path) if row.get("phase", "train") == phase]


def variant_settings(raw: str) -> dict[str, Any]:
    """The settings one variant names: a JSON object of flat names. ``null`` becomes the text
    ``none`` (the settings' word for no value), since a ``None`` flag means "not given" and
    would silently leave the default in place."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: variant {raw!r} is not JSON ({err.msg})") from None
    if not isinstance(value, dict):
        raise SystemExit(f"error: variant {raw!r} is not a JSON object of settings")
    return {name: "none" if v is None else v for name, v in value.items()}


def summarise(out: Path, spec: CompareSpec, envs: dict[str, str], window: int) -> dict[str, Any]:
    """Per environment and agent: first/last window and test means with 95% CIs over seeds."""
    table: dict[str, Any] = {}
    for slug in envs:
        for agent in spec.agent_names:
            firsts, lasts, tests = [], [], []
            for seed in range(1, spec.seeds + 1):
                folder = out / "runs" / slug / agent / f"seed{seed}"
                train = _scores(folder, "train")
                if len(train) < spec.episodes:
                    continue
                firsts.append(statistics.fmean(train[:window]))
                lasts.append(statistics.fmean(train[-window:]))
                test = _scores(folder, "test")
                if test:
                    tests.append(statistics.fmean(test))
            table.setdefault(slug, {})[agent] = {
                name: _ci(values)
                for name, values in (("first", firsts), ("last", lasts), ("test", tests))
            }
    return table


def _ci(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    iv = mean_ci(values)
    return {"mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n, "seeds": values}


def _cell(iv: dict[str, Any] | None) -> str:
    if iv is None:
        return "—"
    if iv["low"] is None:
        return f"{iv['mean']:.3f}"
    return f"{iv['mean']:.3f} [{iv['low']:.3f}, {iv['high']:.3f}]"


def _shown(folder: Path) -> str:
    """``folder`` relative to the repository where it lies inside it."""
    return str(folder.relative_to(REPO)) if folder.is_relative_to(REPO) else str(folder)


def per_seed(row: dict[str, Any]) -> str:
    """Each finished seed's ``first → last / test`` (``/ test`` left out without test
    episodes), in seed order; older summaries without the seeds' values give ``—``."""
    firsts, lasts, tests = (
        row[k].get("seeds", []) if row[k] else [] for k in ("first", "last", "test")
    )
    if not firsts or len(lasts) != len(firsts):
        return "—"
    test = [f" / {t:.2f}" for t in tests] if len(tests) == len(firsts) else [""] * len(firsts)
    return "; ".join(f"{a:.2f} → {b:.2f}{t}" for a, b, t in zip(firsts, lasts, test, strict=True))


def markdown(results: dict[str, Any]) -> str:
    """One table: rows are (environment, variant, agent)."""
    lines = [
        "| env | variant | agent | first window | last window | test | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, variant in results["variants"].items():
        for slug, agents in variant["table"].items():
            for agent, row in agents.items():
                cells = " | ".join(_cell(row[k]) for k in ("first", "last", "test"))
                lines.append(f"| {slug} | {name} | {agent} | {cells} | {per_seed(row)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("variants", nargs="+", help="JSON objects of settings, one per variant")
    ap.add_argument("--env", required=True)
    ap.add_argument("--agents", default="jitrl")
    ap.add_argument("--model", default="uniform")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--max-steps", type=int, default=30)
    ap.add_argument("--test-episodes", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="sweep")
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results",
        help="folder that holds sweep-NAME/ (default: benchmarks/results)",
    )
    ap.add_argument(
        "--summarise-only",
        action="store_true",
        help="play nothing: summarise the seeds already finished (of a running or stopped sweep)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    root = args.out.resolve() / f"sweep-{args.name}"
    base = {
        "env": args.env,
        "agents": args.agents,
        "model": args.model,
        "episodes": args.episodes,
        "max_steps": args.max_steps,
        "test_episodes": args.test_episodes,
        "seeds": args.seeds,
        "window": args.window,
        "threads": args.threads,
    }
    execution = ExecutionConfig(workers=args.workers)
    jobs, prepared = [], {}
    for number, raw in enumerate(args.variants):
        out = root / f"v{number}"
        try:
            spec, _, variant_jobs = prepare({**base, **variant_settings(raw)}, out, args.workers)
        except SettingsError as err:
            raise SystemExit(f"error: variant {raw}: {err}") from None
        jobs += variant_jobs
        prepared[raw] = (spec, expand_envs(spec.env, spec.game_seed), out)
    t0 = time.perf_counter()
    errors = [] if args.summarise_only else run_jobs(jobs, execution)
    for err in errors:
        log.error("failed: %s", err)
    results: dict[str, Any] = {"base": base, "variants": {}, "seconds": time.perf_counter() - t0}
    for raw, (spec, envs, out) in prepared.items():
        table = summarise(out, spec, envs, args.window)
        results["variants"][raw] = {"folder": _shown(out), "table": table}
    atomic_write_text(root / "sweep.json", json.dumps(results, indent=2))
    atomic_write_text(root / "sweep.md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
