"""Every benchmark script starts (imports and parses its arguments), and the decision
benchmark's recorded fallback states still build prompts with the current environment API."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(
    p.name
    for p in BENCH.glob("*.py")
    if "__main__" in p.read_text(encoding="utf-8") and "argparse" in p.read_text(encoding="utf-8")
)


def test_there_are_benchmarks_to_check() -> None:
    assert {"decision.py", "learning.py", "retrieval.py", "sweep.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_starts(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_recorded_decisions_build_prompts() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("decision_under_test", BENCH / "decision.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop("decision_under_test", None)
    decisions = module.recorded_decisions()
    assert len(decisions) == len(module.RECORDED_ZORK1)
    assert "West of House" in decisions[0].prompt.user
    assert decisions[0].candidates == ["open mailbox", "north", "south", "west"]


@pytest.mark.slow
def test_sweep_plays_then_summarises_without_playing(tmp_path: Path) -> None:
    command = [sys.executable, str(BENCH / "sweep.py"), "--env", "textworld:1", "--episodes", "2",
               "--max-steps", "5", "--test-episodes", "1", "--seeds", "1", "--window", "1",
               "--workers", "1", "--name", "t", "--out", str(tmp_path), "{}"]  # fmt: skip
    played = subprocess.run(command, cwd=BENCH, capture_output=True, text=True, timeout=600)
    assert played.returncode == 0, played.stderr
    result = json.loads((tmp_path / "sweep-t" / "sweep.json").read_text())
    row = result["variants"]["{}"]["table"]["tw1"]["jitrl"]
    assert row["first"]["n"] == row["last"]["n"] == row["test"]["n"] == 1
    episodes = tmp_path / "sweep-t" / "v0" / "runs" / "tw1" / "jitrl" / "seed1" / "episodes.jsonl"
    lines = episodes.read_text().splitlines()
    assert len(lines) == 3  # 2 learning episodes and 1 test episode

    again = subprocess.run([*command, "--summarise-only"], cwd=BENCH, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert episodes.read_text().splitlines() == lines  # nothing played again
    assert (
        json.loads((tmp_path / "sweep-t" / "sweep.json").read_text())["variants"]
        == (result["variants"])
    )


def _sweep_module() -> Any:
    """``benchmarks/sweep.py`` imported as a module (its folder on the path meanwhile)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("sweep_under_test", BENCH / "sweep.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_a_sweep_variant_can_set_a_setting_to_none(tmp_path: Path) -> None:
    module = _sweep_module()
    prepare = module.prepare  # bench_compare's, as sweep.py imported it
    settings = module.variant_settings('{"unseen_floor": null, "alpha": 2}')
    assert settings == {"unseen_floor": "none", "alpha": 2}
    base = {"env": "textworld:1", "agents": "jitrl", "model": "uniform", "episodes": 1}
    built, _, _ = prepare({**base, **settings}, tmp_path / "v0", workers=1)
    assert built.method.values.unseen_floor is None and built.method.values.alpha == 2
    default, _, _ = prepare(base, tmp_path / "v1", workers=1)
    assert default.method.values.unseen_floor == 0.0
    for bad in ("[1]", "{oops"):
        with pytest.raises(SystemExit, match="variant"):
            module.variant_settings(bad)


def test_a_sweep_summary_shows_every_seed() -> None:
    module = _sweep_module()
    first, last, test = (module._ci(v) for v in ([0.1, 0.2], [0.5, 0.25], [0.4, 0.3]))
    row = {"first": first, "last": last, "test": test}
    assert module.per_seed(row) == "0.10 → 0.50 / 0.40; 0.20 → 0.25 / 0.30"
    assert module.per_seed({**row, "test": None}) == "0.10 → 0.50; 0.20 → 0.25"
    assert module.per_seed({"first": None, "last": None, "test": None}) == "—"
    older = {k: {n: v for n, v in iv.items() if n != "seeds"} for k, iv in row.items()}
    assert module.per_seed(older) == "—"  # a summary written before the seeds were kept
    table = {"variants": {"{}": {"table": {"coin": {"jitrl": row}}}}}
    assert (
        module.markdown(table)
        .splitlines()[-1]
        .endswith("| 0.10 → 0.50 / 0.40; 0.20 → 0.25 / 0.30 |")
    )


def test_a_sweep_variant_naming_no_setting_is_one_line(tmp_path: Path) -> None:
    command = [sys.executable, str(BENCH / "sweep.py"), "--env", "textworld:1", "--episodes", "1",
               "--seeds", "1", "--out", str(tmp_path), '{"calibraton_prior": 2}']  # fmt: skip
    result = subprocess.run(command, cwd=BENCH, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "unknown setting 'calibraton_prior'" in result.stderr
    assert "did you mean 'calibration_prior'" in result.stderr


def test_ways_back_counts_the_decisions_spent_in_a_dead_end(tmp_path: Path) -> None:
    hall, end = ["go west", "go east"], ["look", "go east"]
    path = [
        ("hall", hall, "go west"),
        ("end", end, "look"),
        ("end", end, "go east"),
        ("hall", hall, "go west"),
        ("end", end, "look"),
        ("end", end, "go east"),
    ]
    rows = [
        {"episode": 0, "state": {"text": s, "key": None}, "candidates": c, "action": a}
        for s, c, a in path
    ]
    run = tmp_path / "run"
    run.mkdir()
    (run / "decisions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = importlib.util.spec_from_file_location("ways_back_under_test", BENCH / "ways_back.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    got = module.count(tmp_path)
    # the second visit to the dead end: everything there tried, "go east" is the way back
    assert got["decisions"] == 6
    assert got["with_way_back"] == pytest.approx(2 / 6)  # at "look" and at "go east"
    assert got["took_way_back"] == pytest.approx(1 / 6)
