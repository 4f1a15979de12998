"""``report.md``: the settings, a table per environment, the suite and window tables.

Episodes are numbered from 0, as in the run folders and ``jitrl explain``.
"""

from __future__ import annotations

import statistics
from typing import Any

from jitrl.analysis.stats import Interval
from jitrl.analysis.summary import DEFAULT_WINDOW


def _num(value: float | None, fmt: str, none: str = "—") -> str:
    """``value`` formatted, or ``none`` for ``None``."""
    return none if value is None else fmt.format(value)


def _usd(value: float | None) -> str:
    """Dollars: cents from $1 up, three significant digits below (API prices are small)."""
    return _num(value, "${:,.2f}" if value is not None and value >= 1.0 else "${:.3g}")


def _with_ci(iv: dict[str, Any] | None) -> str:
    """``mean ± half-width``, ``mean ± n/a`` with one seed, ``n/a`` with no complete seed."""
    if iv is None:
        return "n/a"
    half = Interval(**iv).half_width
    return f"{iv['mean']:.2f} ± {_num(half, '{:.2f}', 'n/a')}"


def _table_row(agent: str, e: dict[str, Any], episodes: int) -> str:
    """One agent's row of an environment's table (columns as in ``_HEADER``)."""
    done = [n for n in e["seeds_done"].values() if n]
    partial = sum(n < episodes for n in done)
    seeds = f"{len(done) - partial}" + (f" (+{partial} partial)" if partial else "")
    eps = str(done[0]) if len(set(done)) == 1 else ", ".join(map(str, done))
    c, share = e["cost"], e["foreign_neighbour_share"]
    windows = f"{_with_ci(e.get('first_window'))} | {_with_ci(e['final_window'])}"
    return (
        f"| {agent} | {seeds} | {eps} | {windows} | {_with_ci(e.get('test'))} "
        f"| {_with_ci(e['auc'])} "
        f"| {c['llm_calls_per_episode']:,.1f} | {c['billed_tokens_per_episode']:,.0f} / "
        f"{c['completion_tokens_per_episode']:,.0f} | {c['llm_ms_per_step']:,.0f} "
        f"| {c['memory_ms_per_step']:.2f} | {c['memory_size']:,.0f} "
        f"| {_usd(c['usd_per_episode'])} | {_usd(c['usd_per_point_over_static'])} "
        f"| {_num(None if share is None else 100.0 * share, '{:.1f}%')} |"
    )


HEADER = (
    "| agent | seeds | episodes | first window ± 95% CI | final window ± 95% CI "
    "| test, memory frozen ± 95% CI | AUC ± 95% CI | LLM calls/ep "
    "| tokens/ep (in / out) | LLM ms/step | memory ms/step | memory size | $/episode "
    "| $/point over static | memory from other tasks |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _settings_line(s: dict[str, Any]) -> str:
    """The line under the title: model, episodes, seeds, window, price, warm start."""
    price = s.get("price")
    cost = f"${price['input']}/${price['output']} per M tokens in/out" if price else "no price"
    return (
        f"Model `{s.get('model', '?')}` · {s['episodes']} learning episodes of at most "
        f"{s.get('max_steps', '?')} steps, then {s.get('test_episodes') or 0} test episodes "
        f"with memory frozen · seeds {', '.join(map(str, s['seeds']))} · "
        f"windows of {s.get('window') or DEFAULT_WINDOW} · {cost} · "
        f"memory warm from {s.get('warm_from') or 'nothing (cold start)'}"
    )


def _suite_lines(summary: dict[str, Any]) -> list[str]:
    """The suite table: rows environments, columns agents, cells final-window means."""
    agents = list(summary["suite"])
    if not agents:
        return ["## Suite", "", "No agent has a complete seed yet.", ""]
    lines = ["## Suite (final-window mean)", "", "| env | " + " | ".join(agents) + " |"]
    lines.append("|---|" + "---:|" * len(agents))
    for slug, env in summary["envs"].items():
        fw = [env[a]["final_window"] if a in env else None for a in agents]
        cells = [_num(None if iv is None else iv["mean"], "{:.2f}") for iv in fw]
        lines.append(f"| {slug} | " + " | ".join(cells) + " |")
    means = [f"{summary['suite'][a]['final_window_mean']:.2f}" for a in agents]
    return [*lines, "| **mean over envs** | " + " | ".join(means) + " |", ""]


def _window_cells(score: list[float], won: list[float], n: int) -> str:
    cells = [f"{x:.2f} ({100 * v:.0f}%)" for x, v in zip(score, won, strict=True)]
    return " | ".join(cells + ["—"] * (n - len(cells)))


def _window_lines(summary: dict[str, Any]) -> list[str]:
    """Per-window table: rows (env, agent), cells mean score (share of episodes won); with
    several environments, a last row per agent averages the environments."""
    w = int(summary["settings"].get("window") or DEFAULT_WINDOW)
    entries = [(slug, a, e) for slug, agents in summary["envs"].items() for a, e in agents.items()]
    n = max((len(e["windows"]["score"]) for _, _, e in entries), default=0)
    if n < 2:
        return []
    longest = max(len(e["curve"]) for _, _, e in entries)  # a last window may be short
    heads = [f"{i * w}-{min((i + 1) * w, longest) - 1}" for i in range(n)]
    lines = [f"## Per window of {w} episodes: mean score (share won)", ""]
    lines += ["| env | agent | " + " | ".join(heads) + " |", "|---|---|" + "---:|" * n]
    for slug, agent, e in entries:
        cells = _window_cells(e["windows"]["score"], e["windows"]["won"], n)
        lines.append(f"| {slug} | {agent} | {cells} |")
    if len(summary["envs"]) > 1:
        for agent in summary["settings"]["agents"]:
            full = [e["windows"] for _, a, e in entries if a == agent]
            full = [x for x in full if len(x["score"]) == n]
            if full:
                score = [statistics.fmean(x["score"][i] for x in full) for i in range(n)]
                won = [statistics.fmean(x["won"][i] for x in full) for i in range(n)]
                label = f"**mean over {len(full)} envs**"
                lines.append(f"| {label} | {agent} | {_window_cells(score, won, n)} |")
    return [*lines, ""]


def render_markdown(summary: dict[str, Any]) -> str:
    """``report.md``: settings, a table per environment, the suite table and the plot."""
    s = summary["settings"]
    lines = ["# JitRL comparison", "", _settings_line(s), ""]
    for slug, agents in summary["envs"].items():
        lines += [f"## {slug}", "", f"`{s['envs'][slug]}`", ""]
        if agents:
            lines += [HEADER, *(_table_row(a, e, s["episodes"]) for a, e in agents.items())]
        missing = [a for a in s["agents"] if a not in agents]
        lines += ["", f"No episodes yet: {', '.join(missing)}."] if missing else []
        lines.append("")
    if len(summary["envs"]) > 1:
        lines += _suite_lines(summary)
    lines += _window_lines(summary)
    lines += ["![Learning curves](curves.png)", ""]
    return "\n".join(lines)
