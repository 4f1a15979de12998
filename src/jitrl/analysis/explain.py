"""Explain one decision of a run: what the LLM wanted, what memory knew, what was chosen.

Reads a line of a run folder's ``decisions.jsonl`` (see
:func:`jitrl.running.records.decision_record`) and lays it out for a person: candidates with base
and corrected probabilities, Q, n and A, the retrieved neighbours, and a one-line reading of how
memory moved the choice.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from jitrl.method.policy import softmax

DECISIONS = "decisions.jsonl"
STATE_CHARS = 300
"""Longest state text shown in the header; longer texts are trimmed."""
_NOTABLE = 0.0005
"""Probability changes below this (the records' rounding) count as no change."""


def _ranges(values: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    spans: list[list[int]] = []
    for v in sorted(set(values)):
        if spans and spans[-1][1] == v - 1:
            spans[-1][1] = v
        else:
            spans.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _parse(path: Path, lineno: int, line: str) -> tuple[int, int, dict[str, Any]]:
    """One line as ``(episode, step, record)``; ``ValueError`` naming file and line if malformed."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{lineno}: malformed JSON ({e.msg})") from e
    if not isinstance(rec, dict):
        raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
    ep, step = rec.get("episode"), rec.get("step")
    if type(ep) is not int or type(step) is not int:
        raise ValueError(f"{path}:{lineno}: record lacks integer 'episode' and 'step'")
    return ep, step, rec


def load_decision(run_dir: Path, episode: int, step: int) -> dict[str, Any]:
    """The record of ``episode``/``step`` in ``run_dir/decisions.jsonl``, streamed line by line.

    Raises:
        FileNotFoundError: the run folder has no ``decisions.jsonl``.
        LookupError: the episode is not in the file, or it has no such step.
        ValueError: a line before the match is not a valid record (names file and line).
    """
    path = Path(run_dir) / DECISIONS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: pass a run folder (it holds episodes.jsonl, {DECISIONS} and "
            "summary.json); a compare output folder holds run folders under "
            "runs/<env>/<agent>/seed<S>/"
        )
    episodes: set[int] = set()
    steps: list[int] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            ep, st, rec = _parse(path, lineno, line)
            episodes.add(ep)
            if ep == episode:
                if st == step:
                    return rec
                steps.append(st)
    if episode not in episodes:
        have = _ranges(episodes) if episodes else "none"
        raise LookupError(f"episode {episode} is not in {path}; episodes present: {have}")
    n = f"{len(steps)} step{'s' if len(steps) != 1 else ''}"
    have = _ranges(steps)
    raise LookupError(f"episode {episode} has {n} in {path} (steps {have}); no step {step}")


def base_probabilities(logits: Sequence[float]) -> list[float]:
    """``softmax(z)`` at temperature 1 (numerically stable); ``[]`` for no logits."""
    if len(logits) == 0:
        return []
    return [float(p) for p in softmax(logits)]


def _num(values: Sequence[Any] | None, i: int, fmt: str = ".3f") -> str:
    """``values[i]`` formatted, or ``"-"`` when absent."""
    if values is None or i >= len(values) or values[i] is None:
        return "-"
    return format(values[i], fmt)


def _candidates_table(rec: dict[str, Any], base: list[float]) -> Table:
    """Candidates sorted by corrected probability, with the numbers that produced it."""
    cands: list[str] = rec.get("candidates") or []
    probs: list[float] = rec.get("probs") or []
    proposed = set(rec.get("proposed") or [])
    table = Table(title="Candidates", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("action", overflow="fold")
    for name in ("base prob", "base logit", "Q", "n", "A", "corr. logit", "corr. prob"):
        table.add_column(name, justify="right")
    table.add_column("mark")
    order = sorted(range(len(cands)), key=lambda i: -probs[i] if i < len(probs) else 0.0)
    for i in order:
        marks = ["chosen"] if cands[i] == rec.get("action") else []
        marks += ["memory-proposed"] if cands[i] in proposed else []
        table.add_row(
            Text(cands[i]),
            _num(base, i),
            _num(rec.get("base_logits"), i),
            _num(rec.get("q"), i),
            _num(rec.get("counts"), i, "d"),
            _num(rec.get("advantages"), i),
            _num(rec.get("logits"), i),
            _num(probs, i),
            ", ".join(marks),
        )
    return table


def _neighbours_table(neighbours: list[dict[str, Any]]) -> Table:
    """Retrieved neighbours, most similar first."""
    table = Table(title="Neighbours", box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("similarity", "action", "return", "task", "episode/step"):
        right = name in ("similarity", "return")
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    for nb in sorted(neighbours, key=lambda n: -float(n.get("similarity", 0.0))):
        table.add_row(
            format(float(nb.get("similarity", 0.0)), ".3f"),
            Text(str(nb.get("action", ""))),
            format(float(nb.get("return", 0.0)), ".3f"),
            Text(str(nb.get("task_id", "")) or "-"),
            Text(f"{nb.get('episode_id', '?')}/{nb.get('step', '?')}"),
        )
    return table


def reading(rec: dict[str, Any], base: list[float] | None = None) -> str:
    """One line in words: which candidate memory moved most, or that there was no memory."""
    if rec.get("q") is None:
        return "No memory: the LLM's choice."
    base = base_probabilities(rec.get("base_logits") or []) if base is None else base
    cands: list[str] = rec.get("candidates") or []
    probs: list[float] = rec.get("probs") or []
    n = min(len(cands), len(base), len(probs))
    if n == 0:
        return "No candidates."
    i = max(range(n), key=lambda j: abs(probs[j] - base[j]))
    if abs(probs[i] - base[i]) < _NOTABLE:
        return f"Memory left the LLM's probabilities unchanged; chose {rec.get('action')!r}."
    verb = "raised" if probs[i] > base[i] else "lowered"
    return (
        f"Memory {verb} {cands[i]!r} from {base[i]:.3f} to {probs[i]:.3f}; "
        f"chose {rec.get('action')!r}."
    )


def explain(record: dict[str, Any]) -> Group:
    """A rich renderable laying out one ``decisions.jsonl`` record.

    Base probabilities are ``softmax(base_logits)`` at temperature 1; corrected probabilities
    are the record's ``probs`` (at the run's temperature).
    """
    state = str((record.get("state") or {}).get("text", ""))
    if len(state) > STATE_CHARS:
        state = state[: STATE_CHARS - 3] + "..."
    header = Text(f"Episode {record.get('episode')}, step {record.get('step')}", style="bold")
    base = base_probabilities(record.get("base_logits") or [])
    neighbours: list[dict[str, Any]] = record.get("neighbours") or []
    v = record.get("v")
    v_line = f"V(s) = {v:.3f} over {len(neighbours)} neighbours" if v is not None else "V(s): -"
    return Group(
        header,
        Text.assemble(("State: ", "bold"), state),
        Text.assemble(("Chosen: ", "bold"), str(record.get("action"))),
        _candidates_table(record, base),
        Text(v_line),
        _neighbours_table(neighbours) if neighbours else Text("No neighbours retrieved."),
        Text(reading(record, base), style="italic"),
    )


def explain_text(record: dict[str, Any], width: int = 120) -> str:
    """:func:`explain` rendered to plain text (no colour codes), for tests and logs."""
    buf = io.StringIO()
    console = Console(file=buf, record=True, width=width, color_system=None, force_terminal=False)
    console.print(explain(record))
    return "\n".join(line.rstrip() for line in console.export_text(styles=False).splitlines())
