"""The report of a ``jitrl compare`` output folder: ``summary.json``, ``report.md``,
``report.html`` and ``curves.png``, each written atomically, from the run folders alone.

An agent with no episode on an environment is left out of its summary and named in the report.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from jitrl.analysis.markdown import HEADER, render_markdown
from jitrl.analysis.plots import plot_curves
from jitrl.analysis.summary import load_runs, load_settings, summarise_compare
from jitrl.fileio import atomic_write_text

HTML_STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
    "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
)


def _html_table(lines: list[str]) -> str:
    """A Markdown table (header, rule, rows) as an HTML table."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    head, body = rows[0], rows[2:]
    out = ["<table><tr>", *(f"<th>{html.escape(c)}</th>" for c in head), "</tr>"]
    for row in body:
        out += ["<tr>", *(f"<td>{html.escape(c)}</td>" for c in row), "</tr>"]
    return "".join([*out, "</table>"])


def render_html(markdown: str, plot: bytes) -> str:
    """``report.html``: the Markdown report's headings, text and tables, and the plot inline,
    in one page a browser opens without anything else."""
    parts: list[str] = []
    table: list[str] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            parts.append(_html_table(table))
            table = []
        if line.startswith("!["):
            encoded = base64.b64encode(plot).decode("ascii")
            parts.append(f'<img alt="learning curves" src="data:image/png;base64,{encoded}">')
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            parts.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line.replace('`', ''))}</p>")
    body = "\n".join(parts)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>JitRL comparison</title>'
        f"<style>{HTML_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def render_report(out: Path) -> dict[str, Any]:
    """Read a ``jitrl compare`` folder; write ``summary.json``, ``report.md``, ``report.html``
    and ``curves.png``.

    Returns the summary. Raises ``FileNotFoundError`` when ``out/compare.json`` is missing and
    ``ValueError`` (naming the file, and the line for ``episodes.jsonl``) when one is malformed.
    """
    out = Path(out)
    settings = load_settings(out)
    summary = summarise_compare(settings, load_runs(out, settings))
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    atomic_write_text(out / "summary.json", text)
    report = render_markdown(summary)
    atomic_write_text(out / "report.md", report)
    plot_curves(summary, out / "curves.png")
    atomic_write_text(out / "report.html", render_html(report, (out / "curves.png").read_bytes()))
    return summary


__all__ = ["HEADER", "render_html", "render_markdown", "render_report", "summarise_compare"]
