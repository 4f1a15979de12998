"""``curves.png``: learning curves per environment, the test score beside them, and the mean
over environments per window.

Episodes are numbered from 0, as in the run folders and ``jitrl explain``. A band shows the
95% confidence interval over seeds only where there are at least two seeds; the title says so.
Legends sit below the panels, never over the data.
"""

from __future__ import annotations

import io
import math
import statistics
from pathlib import Path
from typing import Any

from jitrl.analysis.summary import DEFAULT_WINDOW
from jitrl.fileio import atomic_write_bytes

PANEL_WIDTH = 5.0
PANEL_HEIGHT = 3.6
MAX_COLUMNS = 3
BAND_ALPHA = 0.2


def _seeds(summary: dict[str, Any]) -> int:
    return len(summary["settings"].get("seeds") or [])


def _plot_window_means(ax: Any, summary: dict[str, Any], colours: dict[str, str]) -> None:
    """Mean over environments of each window's mean score, per agent, at the window's middle
    episode (never past the last one)."""
    w = int(summary["settings"].get("window") or DEFAULT_WINDOW)
    for agent in summary["settings"]["agents"]:
        entries = [env[agent] for env in summary["envs"].values() if agent in env]
        rows = [e["windows"]["score"] for e in entries]
        n = min((len(r) for r in rows), default=0)
        if not n:
            continue
        last = min(len(e["curve"]) for e in entries) - 1
        means = [statistics.fmean(r[i] for r in rows) for i in range(n)]
        xs = [min(i * w + (w - 1) / 2, (i * w + last) / 2) for i in range(n)]
        ax.plot(xs, means, marker="o", color=colours[agent], label=agent)
    ax.set_title(f"mean over {len(summary['envs'])} envs, per window of {w}")
    ax.set_xlabel("episode")
    ax.set_ylabel("score")


def _plot_env(ax: Any, slug: str, summary: dict[str, Any], colours: dict[str, str]) -> None:
    """One environment: each agent's curve (and band), then its test score as a point with
    its interval, right of the curve."""
    agents = summary["envs"].get(slug, {})
    end = max((len(e["curve"]) for e in agents.values()), default=0)
    for offset, (agent, entry) in enumerate(agents.items()):
        curve = entry["curve"]
        xs = list(range(len(curve)))
        ax.plot(xs, [p["mean"] for p in curve], marker=".", color=colours[agent], label=agent)
        if _seeds(summary) > 1:
            low = [math.nan if p["low"] is None else p["low"] for p in curve]
            high = [math.nan if p["high"] is None else p["high"] for p in curve]
            ax.fill_between(xs, low, high, color=colours[agent], alpha=BAND_ALPHA, linewidth=0)
        test = entry.get("test")
        if test is not None:
            x = end + 1 + 0.3 * offset
            err = None
            if test["low"] is not None:
                err = [[test["mean"] - test["low"]], [test["high"] - test["mean"]]]
            ax.errorbar([x], [test["mean"]], yerr=err, fmt="D", color=colours[agent], capsize=3)
    if any(e.get("test") for e in agents.values()):
        ax.axvline(end + 0.5, color="grey", linewidth=0.8, linestyle=":")
        ax.annotate("test", (end + 1, 1.0), xycoords=("data", "axes fraction"), va="top")
    ax.set_title(slug)
    ax.set_xlabel("episode")
    ax.set_ylabel("score")


def plot_curves(summary: dict[str, Any], path: Path) -> None:
    """Write ``curves.png`` for a comparison's summary."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    slugs = list(summary["envs"]) or ["(no runs)"]
    panels = len(slugs) + (len(slugs) > 1)  # several envs: a last panel averages them
    ncols = min(MAX_COLUMNS, panels)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(PANEL_WIDTH * ncols, PANEL_HEIGHT * nrows + 0.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = {a: f"C{i % 10}" for i, a in enumerate(summary["settings"]["agents"])}
    for ax, slug in zip(axes, slugs, strict=False):
        _plot_env(ax, slug, summary, colours)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if panels > len(slugs):
        _plot_window_means(axes[len(slugs)], summary, colours)
    for ax in axes[panels:]:
        ax.set_visible(False)
    seeds = _seeds(summary)
    band = "shaded 95% CI over seeds" if seeds > 1 else "one seed, no interval"
    tested = summary["settings"].get("test_episodes")
    tests = " · diamonds: test episodes, memory frozen" if tested else ""
    fig.suptitle(f"Score per episode: mean over {seeds} seed(s), {band}{tests}")
    handles = [Line2D([], [], color=c, marker=".", label=a) for a, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
