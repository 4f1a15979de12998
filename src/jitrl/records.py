"""JSON views of decisions and run summaries (what the run folder holds)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jitrl.types import Decision

if TYPE_CHECKING:
    from jitrl.runner import EpisodeResult

FINAL_WINDOW = 5
"""Episodes in the final window of a run (the issue's 'last 5 of 20')."""


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a run file; errors name file and line."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not a JSON line ({err})") from err


def decision_record(episode: int, step: int, d: Decision, reward: float) -> dict[str, Any]:
    """One line of ``decisions.jsonl``."""
    est = d.estimates
    return {
        "episode": episode,
        "step": step,
        "state": {"text": d.state.text, "key": d.state.key},
        "candidates": list(d.candidates),
        "proposed": list(d.proposed),
        "base_logits": [round(x, 5) for x in d.base_logits],
        "neighbours": [
            {
                "action": nb.experience.action,
                "return": round(nb.experience.ret, 5),
                "similarity": round(nb.similarity, 5),
                "episode_id": nb.experience.episode_id,
                "step": nb.experience.step,
                "task_id": nb.experience.task_id,
            }
            for nb in d.neighbours
        ],
        "q": [round(x, 5) for x in est.q] if est else None,
        "counts": list(est.counts) if est else None,
        "v": round(est.v, 5) if est else None,
        "advantages": [round(x, 5) for x in est.advantages] if est else None,
        "logits": [round(x, 5) for x in d.logits],
        "probs": [round(x, 5) for x in d.probs],
        "action": d.action,
        "reward": reward,
        "llm_seconds": round(d.llm_seconds, 6),
        "memory_seconds": round(d.memory_seconds, 6),
        "llm_usage": d.llm_usage,
    }


def _mean(xs: Sequence[float]) -> float:
    return float(statistics.fmean(xs)) if xs else 0.0


def summarise(results: Sequence[EpisodeResult], window: int = FINAL_WINDOW) -> dict[str, Any]:
    """Aggregate figures over a run's episodes."""
    scores = [r.score for r in results]
    steps = sum(r.steps for r in results)
    llm = sum(r.llm_seconds for r in results)
    mem = sum(r.memory_seconds for r in results)
    return {
        "episodes": len(results),
        "scores": scores,
        "mean_score": _mean(scores),
        "first_window_mean": _mean(scores[:window]),
        "final_window_mean": _mean(scores[-window:]),
        "best_score": max(scores, default=0.0),
        "wins": sum(r.won for r in results),
        "steps": steps,
        "llm_seconds": llm,
        "memory_seconds": mem,
        "env_seconds": sum(r.env_seconds for r in results),
        "wall_seconds": sum(r.wall_seconds for r in results),
        "llm_ms_per_step": 1000.0 * llm / steps if steps else 0.0,
        "memory_ms_per_step": 1000.0 * mem / steps if steps else 0.0,
        "memory_to_llm_ratio": mem / llm if llm > 0 else 0.0,
    }
