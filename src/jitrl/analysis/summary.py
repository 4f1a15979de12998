"""Summaries of a ``jitrl compare`` output folder: what ``summary.json`` holds.

The folder holds ``compare.json`` (the settings) and ``runs/<env>/<agent>/seed<S>/
episodes.jsonl`` per run; a run may be missing or interrupted. Which episodes count where:

- an agent's learning curve averages learning episode ``i`` over the seeds that reached it;
- first- and final-window means, the test score and the AUC are over *complete* seeds only
  (those that played all ``episodes``, and all ``test_episodes`` for the test score), so an
  interrupted seed does not drag them towards its early scores; ``null`` when none is;
- costs (calls, tokens, ms per step, memory size, foreign neighbours) are over every episode
  played, partial seeds included; episodes past ``episodes`` (a longer earlier run) are ignored.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from jitrl.analysis.stats import auc, curve_ci, final_window, mean_ci, window_means
from jitrl.fileio import read_jsonl

Row = dict[str, Any]
DEFAULT_WINDOW = 5
"""Window size when ``compare.json`` gives none."""
_COUNTS = ("llm_calls", "billed_tokens", "completion_tokens")
_DEFAULTS = dict.fromkeys(
    (*_COUNTS, "memory_size", "neighbours", "foreign_neighbours", "llm_seconds", "memory_seconds"),
    0,
)
"""Figures read as 0 when a line lacks them (old ``episodes.jsonl`` files lack the first six)."""


def load_settings(out: Path) -> dict[str, Any]:
    """Read and check ``out/compare.json``; errors name the file."""
    path = out / "compare.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no compare.json (not a `jitrl compare` output folder?)")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: expected a JSON object")
    for key, kind in (("agents", list), ("seeds", list), ("envs", dict), ("episodes", int)):
        if not isinstance(settings.get(key), kind):
            raise ValueError(f"{path}: '{key}' missing or not a {kind.__name__}")
    window = settings.get("window") or DEFAULT_WINDOW
    if settings["episodes"] < 1 or not (isinstance(window, int) and window >= 1):
        raise ValueError(f"{path}: 'episodes' and 'window' must be integers >= 1")
    price = settings.get("price")
    if price is not None and not all(
        isinstance(price, dict) and isinstance(price.get(k), (int, float))
        for k in ("input", "output")
    ):
        raise ValueError(f"{path}: 'price' must be null or {{'input': USD, 'output': USD}}")
    return settings


def read_episodes(path: Path) -> list[Row]:
    """The rows of one ``episodes.jsonl``, missing cost fields as 0; errors name file and line."""
    rows: list[Row] = []
    for n, row in read_jsonl(path):
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), (int, float)) and math.isfinite(row[k])
            for k in ("score", "steps")
        ):
            raise ValueError(f"{path}:{n}: not an episode (needs finite score and steps)")
        rows.append({**_DEFAULTS, **row})
    return rows


def load_runs(out: Path, settings: dict[str, Any]) -> dict[str, dict[str, dict[int, list[Row]]]]:
    """``{env: {agent: {seed: rows}}}`` for every run in the settings; missing runs are empty.

    Rows are the learning episodes (at most ``episodes``) followed by the test episodes (at
    most ``test_episodes``, their ``phase`` is ``test``).
    """
    runs: dict[str, dict[str, dict[int, list[Row]]]] = {}
    test_count = int(settings.get("test_episodes") or 0)
    for slug in settings["envs"]:
        for agent in settings["agents"]:
            for seed in settings["seeds"]:
                path = out / "runs" / slug / agent / f"seed{seed}" / "episodes.jsonl"
                rows = read_episodes(path) if path.is_file() else []
                kept = _phase(rows, "train")[: settings["episodes"]]
                kept += _phase(rows, "test")[:test_count]
                runs.setdefault(slug, {}).setdefault(agent, {})[int(seed)] = kept
    return runs


def _interval(values: list[float]) -> dict[str, Any] | None:
    """Mean and 95% interval as a dict, ``None`` for no values."""
    return mean_ci(values).as_dict() if values else None


def _cost(seeds: dict[int, list[Row]], price: dict[str, float] | None) -> dict[str, Any]:
    """Cost rates over every episode played by one agent on one environment."""
    rows = [row for played in seeds.values() for row in played]
    per_ep = {f"{k}_per_episode": statistics.fmean(r[k] for r in rows) for k in _COUNTS}
    steps = sum(r["steps"] for r in rows) or 1
    usd = None
    if price is not None:
        billed, completion = (per_ep[f"{k}_per_episode"] for k in _COUNTS[1:])
        usd = (billed * price["input"] + completion * price["output"]) / 1e6
    return {
        **per_ep,
        "llm_ms_per_step": 1000.0 * sum(r["llm_seconds"] for r in rows) / steps,
        "memory_ms_per_step": 1000.0 * sum(r["memory_seconds"] for r in rows) / steps,
        "memory_size": statistics.fmean(played[-1]["memory_size"] for played in seeds.values()),
        "usd_per_episode": usd,
        "usd_per_point_over_static": None,
    }


def _phase(rows: list[Row], phase: str) -> list[Row]:
    """The rows of one phase (rows of runs older than phases are learning episodes)."""
    return [r for r in rows if r.get("phase", "train") == phase]


def _agent_summary(seeds: dict[int, list[Row]], settings: dict[str, Any]) -> dict[str, Any]:
    """Curve, first and final windows, test score, AUC, cost and transfer of one agent on one
    environment (windows and test over complete seeds only)."""
    played = {seed: rows for seed, rows in seeds.items() if rows}
    train = {s: _phase(rows, "train") for s, rows in played.items()}
    test = {s: _phase(rows, "test") for s, rows in played.items()}
    scores = [[float(r["score"]) for r in rows] for rows in train.values() if rows]
    complete = [s for s in scores if len(s) >= settings["episodes"]]
    tests = int(settings.get("test_episodes") or 0)
    tested = [[float(r["score"]) for r in rows] for rows in test.values() if len(rows) >= tests]
    window = int(settings.get("window") or DEFAULT_WINDOW)
    neighbours = sum(r["neighbours"] for rows in played.values() for r in rows)
    foreign = sum(r["foreign_neighbours"] for rows in played.values() for r in rows)
    won = [[1.0 if r.get("won") else 0.0 for r in rows] for rows in train.values() if rows]
    return {
        "seeds_done": {str(seed): len(rows) for seed, rows in seeds.items()},
        "curve": [iv.as_dict() for iv in curve_ci(scores)],
        "windows": {"score": window_means(scores, window), "won": window_means(won, window)},
        "first_window": _interval([statistics.fmean(s[:window]) for s in complete]),
        "final_window": _interval([final_window(s, window) for s in complete]),
        "test": _interval([statistics.fmean(s) for s in tested]) if tests else None,
        "auc": _interval([auc(s) for s in complete]),
        "cost": _cost(played, settings.get("price")),
        "foreign_neighbour_share": foreign / neighbours if neighbours else None,
    }


def _add_gain_over_static(agents: dict[str, dict[str, Any]]) -> None:
    """Fill ``usd_per_point_over_static`` where static ran and the agent beats it."""
    static = agents.get("static", {}).get("final_window")
    if static is None:
        return
    for entry in agents.values():
        usd = entry["cost"]["usd_per_episode"]
        if entry["final_window"] is None or usd is None:
            continue
        gain = entry["final_window"]["mean"] - static["mean"]
        if gain > 0:
            entry["cost"]["usd_per_point_over_static"] = usd / gain


def summarise_compare(settings: dict[str, Any], runs: dict[str, Any]) -> dict[str, Any]:
    """The ``summary.json`` object for loaded runs (see the module docstring for the rules)."""
    envs: dict[str, dict[str, Any]] = {}
    for slug, agents in runs.items():
        envs[slug] = {
            agent: _agent_summary(seeds, settings)
            for agent, seeds in agents.items()
            if any(seeds.values())
        }
        _add_gain_over_static(envs[slug])
    suite: dict[str, Any] = {}
    for agent in settings["agents"]:
        means = [
            env[agent]["final_window"]["mean"]
            for env in envs.values()
            if agent in env and env[agent]["final_window"] is not None
        ]
        if means:
            suite[agent] = {"final_window_mean": statistics.fmean(means), "envs": len(means)}
    return {"settings": settings, "envs": envs, "suite": suite}
