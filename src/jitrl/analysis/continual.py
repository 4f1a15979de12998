"""The report of a continual-learning run (:mod:`jitrl.running.continual`): forward and backward
transfer per task, with 95% confidence intervals over seeds."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from jitrl.analysis.stats import mean_ci
from jitrl.fileio import atomic_write_text, read_jsonl
from jitrl.running.continual import ContinualSpec, phases


def _scores(folder: Path) -> list[float]:
    path = folder / "episodes.jsonl"
    return [float(row["score"]) for _, row in read_jsonl(path)] if path.exists() else []


def _interval(values: list[float]) -> dict[str, Any] | None:
    return mean_ci(values).as_dict() if values else None


def _mean(values: list[float], need: int) -> float | None:
    return statistics.fmean(values) if len(values) >= need and values else None


def summarise_continual(spec: ContinualSpec, out: Path) -> dict[str, Any]:
    """Per task: first windows (alone and in sequence), forward transfer, the test score right
    after learning it and after the last task, backward transfer; seeds with every phase only."""
    last = len(spec.tasks) - 1
    rows: list[dict[str, Any]] = []
    for i, task in enumerate(spec.tasks):
        figures: dict[str, list[float]] = {
            k: [] for k in ("cold", "seq", "fwt", "after", "end", "bwt")
        }
        for seed in range(1, spec.seeds + 1):
            folder = out / f"seed{seed}"
            sequence, cold = phases(spec, seed)
            seq_learn = _scores(folder / sequence[_index(sequence, i, True, i)].folder)
            cold_learn = _scores(folder / f"cold-{_slug_of(cold, i)}")
            after = _scores(folder / sequence[_index(sequence, i, False, i)].folder)
            end = _scores(folder / sequence[_index(sequence, i, False, last)].folder)
            w = spec.window
            first_seq = _mean(seq_learn[:w], min(w, spec.episodes))
            first_cold = _mean(cold_learn[:w], min(w, spec.episodes))
            learnt, final = _mean(after, spec.test_episodes), _mean(end, spec.test_episodes)
            if first_seq is not None and first_cold is not None:
                figures["cold"].append(first_cold)
                figures["seq"].append(first_seq)
                figures["fwt"].append(first_seq - first_cold)
            if learnt is not None and final is not None:
                figures["after"].append(learnt)
                figures["end"].append(final)
                figures["bwt"].append(final - learnt)
        after_mean = statistics.fmean(figures["after"]) if figures["after"] else None
        bwt_mean = statistics.fmean(figures["bwt"]) if figures["bwt"] else None
        relative = bwt_mean / abs(after_mean) if after_mean and bwt_mean is not None else None
        rows.append(
            {
                "task": task,
                "first_window_alone": _interval(figures["cold"]),
                "first_window_in_sequence": _interval(figures["seq"]),
                "forward_transfer": _interval(figures["fwt"]),
                "test_after_learning": _interval(figures["after"]),
                "test_after_last_task": _interval(figures["end"]),
                "backward_transfer": _interval(figures["bwt"]),
                "backward_transfer_share": relative,
            }
        )
    return {"tasks": rows, "seeds": spec.seeds, "episodes": spec.episodes}


def _index(sequence: list[Any], task: int, learn: bool, after: int) -> int:
    """Position of a phase in the sequence: task ``task`` learnt, or tested after task ``after``."""
    for n, phase in enumerate(sequence):
        if phase.task != task or phase.learn != learn:
            continue
        if learn or phase.folder.endswith(f"-test-after-{after}"):
            return n
    raise LookupError(f"no phase for task {task} (after {after})")


def _slug_of(cold: list[Any], task: int) -> str:
    return next(p.folder for p in cold if p.task == task and p.learn).removeprefix("cold-")


def _cell(iv: dict[str, Any] | None) -> str:
    if iv is None:
        return "n/a"
    if iv["low"] is None:
        return f"{iv['mean']:.3f}"
    return f"{iv['mean']:.3f} ± {(iv['high'] - iv['low']) / 2:.3f}"


def render_continual(spec: ContinualSpec, out: Path) -> dict[str, Any]:
    """Write ``continual.json`` and ``continual.md``; returns the summary."""
    summary = summarise_continual(spec, out)
    lines = [
        "# Continual learning",
        "",
        f"Agent `{spec.agent}`, model `{spec.model}`, {spec.seeds} seeds; tasks in order: "
        f"{', '.join(spec.tasks)}; {spec.episodes} learning episodes each, "
        f"{spec.test_episodes} test episodes per evaluation; mean ± 95% CI over seeds.",
        "",
        "| task | first window alone | first window after earlier tasks | forward transfer "
        "| test right after learning | test after the last task | backward transfer "
        "| backward / learnt |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["tasks"]:
        share = row["backward_transfer_share"]
        cells = [
            _cell(row[k])
            for k in (
                "first_window_alone",
                "first_window_in_sequence",
                "forward_transfer",
                "test_after_learning",
                "test_after_last_task",
                "backward_transfer",
            )
        ]
        pct = "n/a" if share is None else f"{100 * share:+.0f}%"
        lines.append(f"| {row['task']} | " + " | ".join(cells) + f" | {pct} |")
    atomic_write_text(out / "continual.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "continual.md", "\n".join(lines) + "\n")
    return summary
