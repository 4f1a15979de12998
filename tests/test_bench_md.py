"""``benchmarks/bench_md.py``: each benchmark's block of BENCHMARKS.md is replaced, not appended."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_md.py"


def test_blocks_are_replaced_in_place_and_new_ones_appended(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_md_under_test", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Bench\n\nprose before\n<!-- A -->\nold\n<!-- /A -->\nprose after\n")
    module.replace_block("A", "new figures\n", "## A", path=doc)
    module.replace_block("B", "b figures", "## Section B", path=doc)
    assert doc.read_text() == (
        "# Bench\n\nprose before\n<!-- A -->\nnew figures\n<!-- /A -->\nprose after\n\n"
        "## Section B\n\n<!-- B -->\nb figures\n<!-- /B -->\n"
    )
    module.replace_block("B", "b again", "## Section B", path=doc)
    assert doc.read_text().count("## Section B") == 1 and "b again" in doc.read_text()
