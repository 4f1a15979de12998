"""The report of a `jitrl compare` folder (jitrl.analysis.report) on a hand-made folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as sps

from jitrl.analysis.report import render_report

T1 = sps.t.ppf(0.975, 1)  # 12.706...: the t quantile with two seeds
OLD_FIELDS = (
    "llm_calls",
    "billed_tokens",
    "completion_tokens",
    "memory_size",
    "neighbours",
    "foreign_neighbours",
)


def row(agent: str, seed: int, index: int, score: float, **kw: Any) -> dict[str, Any]:
    """One EpisodeResult line: 10 steps, 0.5 s of LLM and 0.01 s of memory time."""
    base = {
        "index": index,
        "episode_id": f"{agent}{seed}-{index}",
        "task_id": "t",
        "agent": agent,
        "seed": seed + index,
        "score": score,
        "steps": 10,
        "reward": score,
        "won": False,
        "lost": False,
        "wall_seconds": 1.0,
        "llm_seconds": 0.5,
        "memory_seconds": 0.01,
        "env_seconds": 0.1,
        "prompt_tokens": 100,
        "prefill_tokens": 10,
        "llm_calls": 10,
        "billed_tokens": 1000,
        "completion_tokens": 50,
        "memory_size": 0,
        "neighbours": 0,
        "foreign_neighbours": 0,
    }
    return {**base, **kw}


def write_run(out: Path, env: str, agent: str, seed: int, rows: list[dict[str, Any]]) -> Path:
    path = out / "runs" / env / agent / f"seed{seed}" / "episodes.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def jitrl_rows(seed: int, scores: list[float], billed: int = 1000, foreign: int = 1) -> list:
    return [
        row(
            "jitrl",
            seed,
            i,
            s,
            billed_tokens=billed + 100 * i,
            memory_size=10 * (i + 1),
            neighbours=4,
            foreign_neighbours=foreign,
        )
        for i, s in enumerate(scores)
    ]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Two envs × (static, jitrl) × 3 seeds of 4 episodes, window 2, some runs cut short."""
    settings = {
        "agents": ["static", "jitrl"],
        "seeds": [1, 2, 3],
        "episodes": 4,
        "max_steps": 10,
        "envs": {"alpha": "jericho:alpha.z5", "beta": "textworld:beta"},
        "window": 2,
        "price": {"input": 1.0, "output": 2.0},
        "warm_from": None,
        "model": "scripted",
    }
    (tmp_path / "compare.json").write_text(json.dumps(settings), encoding="utf-8")
    # alpha: static seed 3 never ran; jitrl seed 3 was interrupted after 2 episodes.
    for seed, scores in ((1, [1, 1, 1, 1]), (2, [1, 1, 1, 3])):
        write_run(
            tmp_path,
            "alpha",
            "static",
            seed,
            [row("static", seed, i, s) for i, s in enumerate(scores)],
        )
    write_run(tmp_path, "alpha", "jitrl", 1, jitrl_rows(1, [0, 2, 4, 6]))
    write_run(tmp_path, "alpha", "jitrl", 2, jitrl_rows(2, [2, 2, 4, 8]))
    write_run(tmp_path, "alpha", "jitrl", 3, jitrl_rows(3, [0, 1], foreign=3))
    # beta: static in the old format (no cost fields), jitrl seed 3 missing.
    for seed in (1, 2, 3):
        old = [
            {k: v for k, v in row("static", seed, i, 2).items() if k not in OLD_FIELDS}
            for i in range(4)
        ]
        write_run(tmp_path, "beta", "static", seed, old)
    for seed, scores in ((1, [1, 3, 5, 7]), (2, [3, 3, 3, 3])):
        rows = [
            row("jitrl", seed, i, s, billed_tokens=500, completion_tokens=100)
            for i, s in enumerate(scores)
        ]
        write_run(tmp_path, "beta", "jitrl", seed, rows)
    return tmp_path


def test_final_window_auc_and_curve(out: Path) -> None:
    summary = render_report(out)
    alpha = summary["envs"]["alpha"]
    static, jitrl = alpha["static"], alpha["jitrl"]
    assert static["seeds_done"] == {"1": 4, "2": 4, "3": 0}
    assert jitrl["seeds_done"] == {"1": 4, "2": 4, "3": 2}
    # Final window (last 2) per complete seed: static 1 and 2, jitrl 5 and 6.
    assert static["final_window"]["mean"] == pytest.approx(1.5)
    assert static["final_window"]["n"] == 2
    half = T1 * 0.5  # s = sqrt(0.5), s / sqrt(2) = 0.5
    assert static["final_window"]["low"] == pytest.approx(1.5 - half)
    assert static["final_window"]["high"] == pytest.approx(1.5 + half)
    assert jitrl["final_window"]["mean"] == pytest.approx(5.5)
    assert jitrl["final_window"]["n"] == 2  # the interrupted seed is left out
    # AUC per complete seed: (1 + 3 + 5) / 3 = 3 and (2 + 3 + 6) / 3 = 11/3.
    assert jitrl["auc"]["mean"] == pytest.approx((3 + 11 / 3) / 2)
    assert static["auc"]["mean"] == pytest.approx((1.0 + 4 / 3) / 2)
    # The curve uses every seed that reached the episode.
    assert [p["n"] for p in jitrl["curve"]] == [3, 3, 2, 2]
    assert [p["mean"] for p in jitrl["curve"]] == pytest.approx([2 / 3, 5 / 3, 4.0, 7.0])
    beta_static = summary["envs"]["beta"]["static"]["final_window"]
    assert beta_static == {"mean": 2.0, "low": 2.0, "high": 2.0, "n": 3}
    assert summary["suite"] == {
        "static": {"final_window_mean": pytest.approx(1.75), "envs": 2},
        "jitrl": {"final_window_mean": pytest.approx(5.0), "envs": 2},
    }


def test_per_window_scores_and_wins(out: Path) -> None:
    summary = render_report(out)
    jitrl = summary["envs"]["alpha"]["jitrl"]["windows"]
    # windows of 2 episodes, pooling seeds: [0,2]+[2,2]+[0,1] -> 7/6; [4,6]+[4,8] -> 5.5
    assert jitrl["score"] == pytest.approx([7 / 6, 5.5])
    assert jitrl["won"] == [0.0, 0.0]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Per window of 2 episodes: mean score (share won)" in report
    assert "| alpha | jitrl | 1.17 (0%) | 5.50 (0%) |" in report
    # several envs: a last row per agent averages them (beta jitrl: 2.5, 4.5)
    assert "| **mean over 2 envs** | jitrl | 1.83 (0%) | 5.00 (0%) |" in report


def test_cost_price_and_foreign_share(out: Path) -> None:
    summary = render_report(out)
    jitrl = summary["envs"]["alpha"]["jitrl"]["cost"]
    # Billed tokens 1000 + 100 * index over 10 episodes: 2 * 4600 + 2100 = 11300.
    assert jitrl["billed_tokens_per_episode"] == pytest.approx(1130.0)
    assert jitrl["completion_tokens_per_episode"] == pytest.approx(50.0)
    assert jitrl["llm_calls_per_episode"] == pytest.approx(10.0)
    assert jitrl["llm_ms_per_step"] == pytest.approx(50.0)
    assert jitrl["memory_ms_per_step"] == pytest.approx(1.0)
    assert jitrl["memory_size"] == pytest.approx((40 + 40 + 20) / 3)
    usd = (1130 * 1.0 + 50 * 2.0) / 1e6
    assert jitrl["usd_per_episode"] == pytest.approx(usd)
    assert jitrl["usd_per_point_over_static"] == pytest.approx(usd / (5.5 - 1.5))
    static = summary["envs"]["alpha"]["static"]["cost"]
    assert static["usd_per_episode"] == pytest.approx(1100 / 1e6)
    assert static["usd_per_point_over_static"] is None  # no gain over itself
    # 8 episodes with 1 foreign neighbour of 4, 2 with 3 of 4.
    assert summary["envs"]["alpha"]["jitrl"]["foreign_neighbour_share"] == pytest.approx(0.35)
    assert summary["envs"]["alpha"]["static"]["foreign_neighbour_share"] is None
    beta = summary["envs"]["beta"]
    assert beta["static"]["cost"]["billed_tokens_per_episode"] == 0  # old files: missing is 0
    assert beta["static"]["cost"]["usd_per_episode"] == 0.0
    assert beta["jitrl"]["cost"]["usd_per_point_over_static"] == pytest.approx(
        (500 + 200) / 1e6 / (4.5 - 2.0)
    )


def test_files_written_and_rerun_identical(out: Path) -> None:
    summary = render_report(out)
    text = (out / "summary.json").read_text(encoding="utf-8")

    def no_nan(name: str) -> None:
        raise AssertionError(f"{name} in summary.json")

    assert json.loads(text, parse_constant=no_nan) == json.loads(json.dumps(summary))
    assert summary["settings"] == json.loads((out / "compare.json").read_text())
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    report = (out / "report.md").read_text(encoding="utf-8")
    for word in ("static", "jitrl", "## alpha", "## beta", "jericho:alpha.z5", "Suite"):
        assert word in report
    assert "curves.png" in report and "$0.000307" in report and "35.0%" in report
    assert "2 (+1 partial)" in report
    render_report(out)
    assert (out / "summary.json").read_text(encoding="utf-8") == text
    assert not list(out.glob("*.tmp"))


def test_one_env_one_seed_no_price(tmp_path: Path) -> None:
    settings = {"agents": ["static", "jitrl", "random"], "seeds": [7], "episodes": 3}
    settings |= {"envs": {"g": "textworld:g"}, "price": None, "model": "m"}
    (tmp_path / "compare.json").write_text(json.dumps(settings))
    # Six episodes in the folder (an earlier, longer run): only the first three count.
    write_run(tmp_path, "g", "static", 7, [row("static", 7, i, i) for i in range(6)])
    summary = render_report(tmp_path)
    static = summary["envs"]["g"]["static"]
    assert list(summary["envs"]["g"]) == ["static"]
    assert static["seeds_done"] == {"7": 3}
    assert static["final_window"] == {"mean": 1.0, "low": None, "high": None, "n": 1}
    assert static["cost"]["usd_per_episode"] is None
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "1.00 ± n/a" in report and "No episodes yet: jitrl, random." in report
    assert "Suite" not in report


def test_no_complete_seed_yet(tmp_path: Path) -> None:
    settings = {"agents": ["static", "jitrl"], "seeds": [1, 2], "episodes": 5, "price": None}
    settings["envs"] = {"a": "textworld:a", "b": "textworld:b"}
    (tmp_path / "compare.json").write_text(json.dumps(settings))
    write_run(tmp_path, "a", "jitrl", 1, jitrl_rows(1, [1, 2]))
    summary = render_report(tmp_path)
    jitrl = summary["envs"]["a"]["jitrl"]
    assert jitrl["final_window"] is None and jitrl["auc"] is None
    assert [p["mean"] for p in jitrl["curve"]] == [1.0, 2.0]
    assert summary["envs"]["b"] == {} and summary["suite"] == {}
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| jitrl | 0 (+1 partial) | 2 | n/a | n/a |" in report
    assert "No agent has a complete seed yet." in report
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_missing_compare_json(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"compare\.json"):
        render_report(tmp_path)


def test_malformed_compare_json(tmp_path: Path) -> None:
    (tmp_path / "compare.json").write_text('{"agents": ["static"]}')
    with pytest.raises(ValueError, match=r"compare\.json.*seeds"):
        render_report(tmp_path)


def test_malformed_line_names_the_file(out: Path) -> None:
    path = out / "runs" / "beta" / "jitrl" / "seed2" / "episodes.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:25]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="not a JSON line") as err:
        render_report(out)
    assert f"{path}:2:" in str(err.value)
    assert not (out / "summary.json").exists()
