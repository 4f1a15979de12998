"""Writing a benchmark's figures into BENCHMARKS.md, between markers of its own.

Each benchmark owns one block, ``<!-- NAME -->`` ... ``<!-- /NAME -->``; a rerun replaces only
that block, so prose written around it survives. A block seen for the first time is appended
under ``heading``.
"""

from __future__ import annotations

import re
from pathlib import Path

from jitrl.fileio import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "BENCHMARKS.md"


def replace_block(name: str, body: str, heading: str, path: Path = BENCHMARKS) -> None:
    """Put ``body`` between the ``name`` markers of ``path`` (appended under ``heading`` if new)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"{re.escape(start)}.*?{re.escape(end)}", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{block}\n"
    atomic_write_text(path, text)
