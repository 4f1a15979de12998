"""Summary, Markdown report and learning-curve plot of a ``jitrl compare`` output folder.

The folder holds ``compare.json`` (the settings) and ``runs/<env>/<agent>/seed<S>/
episodes.jsonl`` per run; a run may be missing or interrupted. :func:`render_report` writes,
each atomically, ``summary.json``, ``report.md`` and ``curves.png``. Which episodes count where:

- an agent's learning curve averages episode ``i`` over the seeds that reached it;
- final-window mean and AUC are over *complete* seeds only (those that played all ``episodes``),
  so an interrupted seed does not drag them towards its early scores; ``null`` when none is;
- costs (calls, tokens, ms per step, memory size, foreign neighbours) are over every episode
  played, partial seeds included; episodes past ``episodes`` (a longer earlier run) are ignored.

An agent with no episode on an environment is left out of its summary and named in the report.
"""

from __future__ import annotations

import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from jitrl.analysis.stats import Interval, auc, curve_ci, final_window, mean_ci, window_means
from jitrl.fileio import atomic_write_bytes, atomic_write_text, read_jsonl

Row = dict[str, Any]
DEFAULT_WINDOW = 5
"""Final-window size when ``compare.json`` gives none."""
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


def _load_runs(out: Path, settings: dict[str, Any]) -> dict[str, dict[str, dict[int, list[Row]]]]:
    """``{env: {agent: {seed: rows}}}`` for every run in the settings; missing runs are empty."""
    runs: dict[str, dict[str, dict[int, list[Row]]]] = {}
    for slug in settings["envs"]:
        for agent in settings["agents"]:
            for seed in settings["seeds"]:
                path = out / "runs" / slug / agent / f"seed{seed}" / "episodes.jsonl"
                rows = read_episodes(path)[: settings["episodes"]] if path.is_file() else []
                runs.setdefault(slug, {}).setdefault(agent, {})[int(seed)] = rows
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


def _agent_summary(seeds: dict[int, list[Row]], settings: dict[str, Any]) -> dict[str, Any]:
    """Curve, final window, AUC, cost and transfer of one agent on one environment."""
    played = {seed: rows for seed, rows in seeds.items() if rows}
    scores = [[float(r["score"]) for r in rows] for rows in played.values()]
    complete = [s for s in scores if len(s) >= settings["episodes"]]
    window = int(settings.get("window") or DEFAULT_WINDOW)
    neighbours = sum(r["neighbours"] for rows in played.values() for r in rows)
    foreign = sum(r["foreign_neighbours"] for rows in played.values() for r in rows)
    won = [[1.0 if r.get("won") else 0.0 for r in rows] for rows in played.values()]
    return {
        "seeds_done": {str(seed): len(rows) for seed, rows in seeds.items()},
        "curve": [iv.as_dict() for iv in curve_ci(scores)],
        "windows": {"score": window_means(scores, window), "won": window_means(won, window)},
        "final_window": _interval([final_window(s, window) for s in complete]),
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
    return (
        f"| {agent} | {seeds} | {eps} | {_with_ci(e['final_window'])} | {_with_ci(e['auc'])} "
        f"| {c['llm_calls_per_episode']:,.1f} | {c['billed_tokens_per_episode']:,.0f} / "
        f"{c['completion_tokens_per_episode']:,.0f} | {c['llm_ms_per_step']:,.0f} "
        f"| {c['memory_ms_per_step']:.2f} | {c['memory_size']:,.0f} "
        f"| {_usd(c['usd_per_episode'])} | {_usd(c['usd_per_point_over_static'])} "
        f"| {_num(None if share is None else 100.0 * share, '{:.1f}%')} |"
    )


_HEADER = (
    "| agent | seeds | episodes | final-window mean ± 95% CI | AUC ± 95% CI | LLM calls/ep "
    "| tokens/ep (in / out) | LLM ms/step | memory ms/step | memory size | $/episode "
    "| $/point over static | memory from other tasks |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _settings_line(s: dict[str, Any]) -> str:
    """The line under the title: model, episodes, seeds, window, price, warm start."""
    price = s.get("price")
    cost = f"${price['input']}/${price['output']} per M tokens in/out" if price else "no price"
    return (
        f"Model `{s.get('model', '?')}` · {s['episodes']} episodes of at most "
        f"{s.get('max_steps', '?')} steps · seeds {', '.join(map(str, s['seeds']))} · "
        f"final window {s.get('window') or DEFAULT_WINDOW} · {cost} · "
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
    heads = [f"{i * w + 1}-{min((i + 1) * w, longest)}" for i in range(n)]
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
            lines += [_HEADER, *(_table_row(a, e, s["episodes"]) for a, e in agents.items())]
        missing = [a for a in s["agents"] if a not in agents]
        lines += ["", f"No episodes yet: {', '.join(missing)}."] if missing else []
        lines.append("")
    if len(summary["envs"]) > 1:
        lines += _suite_lines(summary)
    lines += _window_lines(summary)
    lines += ["![Learning curves](curves.png)", ""]
    return "\n".join(lines)


def _plot_window_means(ax: Any, summary: dict[str, Any], colours: dict[str, str]) -> None:
    """Mean over environments of each window's mean score, per agent."""
    w = int(summary["settings"].get("window") or DEFAULT_WINDOW)
    for agent in summary["settings"]["agents"]:
        rows = [env[agent]["windows"]["score"] for env in summary["envs"].values() if agent in env]
        n = min((len(r) for r in rows), default=0)
        if n:
            means = [statistics.fmean(r[i] for r in rows) for i in range(n)]
            xs = [i * w + (w + 1) / 2 for i in range(n)]
            ax.plot(xs, means, marker="o", color=colours[agent], label=agent)
    ax.set_title(f"mean over {len(summary['envs'])} envs, per window of {w}")
    ax.set_xlabel("episode")
    ax.set_ylabel("score")
    if ax.has_data():
        ax.legend(fontsize="small")


def plot_curves(summary: dict[str, Any], path: Path) -> None:
    """``curves.png``: a subplot per environment, a line and 95% band per agent."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    slugs = list(summary["envs"]) or ["(no runs)"]
    panels = len(slugs) + (len(slugs) > 1)  # several envs: a last panel averages them
    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(5.0 * ncols, 3.6 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = {a: f"C{i % 10}" for i, a in enumerate(summary["settings"]["agents"])}
    for ax, slug in zip(axes, slugs, strict=False):
        for agent, entry in summary["envs"].get(slug, {}).items():
            curve = entry["curve"]
            xs = list(range(1, len(curve) + 1))
            low = [math.nan if p["low"] is None else p["low"] for p in curve]
            high = [math.nan if p["high"] is None else p["high"] for p in curve]
            ax.plot(xs, [p["mean"] for p in curve], marker=".", color=colours[agent], label=agent)
            ax.fill_between(xs, low, high, color=colours[agent], alpha=0.2, linewidth=0)
        ax.set_title(slug)
        ax.set_xlabel("episode")
        ax.set_ylabel("score")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.has_data():
            ax.legend(fontsize="small")
    if panels > len(slugs):
        _plot_window_means(axes[len(slugs)], summary, colours)
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle("Score per episode: mean over seeds, shaded 95% CI")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())


def render_report(out: Path) -> dict[str, Any]:
    """Read a ``jitrl compare`` folder; write ``summary.json``, ``report.md``, ``curves.png``.

    Returns the summary. Raises ``FileNotFoundError`` when ``out/compare.json`` is missing and
    ``ValueError`` (naming the file, and the line for ``episodes.jsonl``) when one is malformed.
    """
    out = Path(out)
    settings = load_settings(out)
    summary = summarise_compare(settings, _load_runs(out, settings))
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    atomic_write_text(out / "summary.json", text)
    report = render_markdown(summary)
    atomic_write_text(out / "report.md", report)
    plot_curves(summary, out / "curves.png")
    return summary
