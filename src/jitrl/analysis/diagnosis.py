"""Who steers a run, the model or memory, and which of them was right?

Reads a run folder's ``decisions.jsonl`` and judges both against what happened. For each
decision taken with memory's estimates, the *realised advantage* of the action taken is the
discounted sum of the rewards that followed it in its episode, minus memory's ``V(s)`` (so the
values of states cancel). Per window of episodes we report:

- the share of decisions in episodes that memory alone led (:mod:`jitrl.method.pace`);
- the model's mean weight (``λ``, the calibration's trust, :mod:`jitrl.method.calibration`);
- how often the action taken was not the model's favourite (memory, exploration or ties moved it);
- the commonest kind of action taken (its first word) and its share, which shows a habit: an
  agent that spends most of its steps on ``examine`` or on opening and closing doors;
- Spearman's ρ between the realised advantage and memory's ``A(s, a)`` of the action taken, and
  between it and the model's log-probability of that action.

A ρ near 0 means that source did not tell good actions from bad ones in that window; the
calibration is working as meant when the source that predicts outcomes has the larger say.
The realised returns use the raw rewards (no revisit or failure penalties), so they judge by the
game's own score.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy.special import log_softmax
from scipy.stats import spearmanr

from jitrl.analysis.explain import DECISIONS
from jitrl.fileio import read_jsonl
from jitrl.method.config import ReturnConfig
from jitrl.method.returns import discounted_returns
from jitrl.method.similarity import action_kind
from jitrl.running.run_folder import RUN_FILE

MIN_PAIRS = 10
"""Decisions a window needs before a correlation is reported."""
FLAT = 1e-9
"""Logits that differ by less than this carry no preference (a uniform model)."""
PREDICTS = 0.1
"""|ρ| from which a source is said to predict outcomes in the reading."""
LITTLE_SAY = 0.5
"""Model weight below which the reading says the model had little say."""


@dataclass(frozen=True)
class Window:
    """What steered one window of episodes, and how well each source predicted outcomes."""

    first: int
    """First episode index of the window."""
    last: int
    """Last episode index of the window."""
    decisions: int
    """Decisions with memory's estimates in the window."""
    model_weight: float | None
    """Mean weight of the model's logits where the model led (memory-led episodes give it 0 by
    design, ``memory_led`` counts them; ``None`` when the records do not carry it)."""
    off_model: float | None
    """Share of decisions whose action was not the model's favourite (``None``: no preferences)."""
    memory_rho: float | None
    """Spearman ρ of the realised advantage and memory's ``A`` of the action taken."""
    model_rho: float | None
    """Spearman ρ of the realised advantage and the model's log-probability of it."""
    top_kind: str | None = None
    """The commonest kind of action taken (its first word; ``None``: no decisions)."""
    top_share: float | None = None
    """The share of the decisions that took ``top_kind``."""
    memory_led: float | None = None
    """The share of the decisions in episodes that memory alone led (:mod:`jitrl.method.pace`;
    ``None``: no decisions)."""


@dataclass(frozen=True)
class Judged:
    """One decision taken with memory's estimates, beside what followed it."""

    episode: int
    """Episode index of the decision."""
    realised: float
    """Discounted rewards that followed the action, minus memory's ``V(s)``."""
    memory_a: float
    """Memory's advantage of the action taken."""
    model_logp: float | None
    """The model's log-probability of the action taken (``None``: flat logits)."""
    weight: float | None
    """The model's weight at the decision (``None`` in records without it)."""
    off_model: bool | None
    """The action was not the model's favourite (``None``: flat logits)."""
    kind: str = ""
    """The kind of the action taken: its first word
    (:func:`~jitrl.method.similarity.action_kind`)."""
    lead: str = "model"
    """Who led the decision's episode (``model`` in records without it)."""


def _gamma(run_dir: Path) -> float:
    """The run's discount (``run.json``), or the default when the file does not say."""
    path = run_dir / RUN_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        return float(settings["method"]["returns"]["gamma"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ReturnConfig().gamma


def _log_softmax_at(logits: Sequence[float], i: int) -> float | None:
    """``log softmax(logits)[i]``, or ``None`` when the logits are flat."""
    if max(logits) - min(logits) < FLAT:
        return None
    return float(log_softmax(logits)[i])


def _episode_rows(records: Sequence[dict[str, Any]], gamma: float) -> list[Judged]:
    """Rows of one episode's decisions (in step order) that had memory's estimates."""
    records = sorted(records, key=lambda r: r["step"])
    following = discounted_returns([float(r.get("reward") or 0.0) for r in records], gamma)
    rows: list[Judged] = []
    for rec, ret in zip(records, following, strict=True):
        cands, action = rec.get("candidates") or [], rec.get("action")
        adv, logits, v = rec.get("advantages"), rec.get("base_logits") or [], rec.get("v")
        if v is None or adv is None or action not in cands or len(logits) != len(cands):
            continue
        i = cands.index(action)
        logp = _log_softmax_at(logits, i)
        off = None if logp is None else logits[i] < max(logits)
        weight, kind, lead = rec.get("prior_weight"), action_kind(action), rec.get("lead", "model")
        rows.append(Judged(rec["episode"], ret - v, adv[i], logp, weight, off, kind, str(lead)))
    return rows


def load_rows(run_dir: Path) -> list[Judged]:
    """Every decision of ``run_dir`` that had memory's estimates, with its realised advantage.

    Raises:
        FileNotFoundError: the folder has no ``decisions.jsonl``.
        ValueError: a line is not a decision record (names file and line).
    """
    path = Path(run_dir) / DECISIONS
    if not path.is_file():
        hint = "pass a run folder (runs/<env>/<agent>/seed<S>/ of a comparison)"
        raise FileNotFoundError(f"{path} not found: {hint}")
    episodes: dict[int, list[dict[str, Any]]] = {}
    for n, rec in read_jsonl(path):
        if not isinstance(rec, dict) or not all(
            type(rec.get(field)) is int for field in ("episode", "step")
        ):
            raise ValueError(f"{path}:{n}: not a decision record")
        episodes.setdefault(rec["episode"], []).append(rec)
    gamma = _gamma(Path(run_dir))
    return [row for ep in sorted(episodes) for row in _episode_rows(episodes[ep], gamma)]


def _rho(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's ρ, or ``None`` with too few pairs or a constant side."""
    if len(xs) < MIN_PAIRS or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    value = float(spearmanr(xs, ys)[0])
    return None if math.isnan(value) else value


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return statistics.fmean(items) if items else None


def summarise(rows: Sequence[Judged], first: int, last: int) -> Window:
    """One :class:`Window` over ``rows`` (already restricted to its episodes)."""
    realised = [r.realised for r in rows]
    with_model = [r for r in rows if r.model_logp is not None]
    top = Counter(r.kind for r in rows).most_common(1)
    return Window(
        first=first,
        last=last,
        decisions=len(rows),
        model_weight=_mean(r.weight for r in rows if r.weight is not None and r.lead == "model"),
        off_model=_mean(float(bool(r.off_model)) for r in with_model),
        memory_rho=_rho(realised, [r.memory_a for r in rows]),
        model_rho=_rho([r.realised for r in with_model], [r.model_logp or 0.0 for r in with_model]),
        top_kind=top[0][0] if top else None,
        top_share=top[0][1] / len(rows) if top else None,
        memory_led=_mean(float(r.lead == "memory") for r in rows),
    )


def diagnose(run_dir: Path, window: int = 10) -> tuple[list[Window], Window]:
    """Per window of ``window`` episodes, and over all episodes after the first window.

    Raises:
        ValueError: ``window`` below 1, or a malformed ``decisions.jsonl``.
        FileNotFoundError: no ``decisions.jsonl`` in ``run_dir``.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    rows = load_rows(run_dir)
    last_episode = max((r.episode for r in rows), default=-1)
    by_window: defaultdict[int, list[Judged]] = defaultdict(list)
    for row in rows:
        by_window[row.episode // window].append(row)
    windows = [
        summarise(by_window[lo // window], lo, lo + window - 1)
        for lo in range(0, last_episode + 1, window)
    ]
    later = summarise([r for r in rows if r.episode >= window], window, last_episode)
    return windows, later


def reading(later: Window) -> str:
    """One line in words on the episodes after the first window: who predicted outcomes."""
    mem, model, weight = later.memory_rho, later.model_rho, later.model_weight
    if mem is None and model is None:
        return "Too few decisions with memory after the first window to judge."
    if model is None:
        return f"No model preferences to judge; memory's ρ with outcomes is {mem:+.2f}."
    parts = ([f"memory ρ {mem:+.2f}"] if mem is not None else []) + [f"model ρ {model:+.2f}"]
    parts += [f"model weight {weight:.2f}"] if weight is not None else []
    shown = ", ".join(parts)
    memory = mem if mem is not None else 0.0
    if model >= PREDICTS and model > memory and (weight or 0.0) < LITTLE_SAY:
        return (
            f"The model predicted outcomes better than memory yet had little say ({shown}): "
            "try a larger beta, so that memory's advantages weigh less against the model."
        )
    if memory >= PREDICTS and memory >= model:
        return f"Memory predicted outcomes better than the model ({shown})."
    if max(abs(model), abs(memory)) < PREDICTS:
        return f"Neither predicted outcomes well ({shown})."
    return f"The model predicted outcomes at least as well as memory ({shown})."
