"""``index="auto"``: the exact scan while memory is small, the vector index (re-scored exactly)
once it holds ``auto_index_records`` records, so that a large memory stays cheap per decision."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from jitrl.method.config import JitRLConfig, RetrievalConfig
from jitrl.method.learner import JitRL
from jitrl.method.types import Experience, State
from jitrl.retrieval import factory
from jitrl.retrieval.factory import resolve_auto
from jitrl.retrieval.index import MemoryIndex
from jitrl.retrieval.vector import VectorIndex

pytest.importorskip("usearch")

WORDS = [
    "kitchen",
    "hall",
    "lamp",
    "key",
    "door",
    "table",
    "knife",
    "apple",
    "stove",
    "cellar",
    "attic",
    "garden",
    "shed",
]


def records(n: int, episode: str = "e") -> list[Experience]:
    out = []
    for i in range(n):
        text = f"{WORDS[i % 13]} {WORDS[(i * 7) % 13]} room {i % 17} with a {WORDS[(i * 3) % 13]}"
        out.append(Experience(State(text), f"take {WORDS[i % 13]}", float(i % 5), episode, i))
    return out


def test_the_vector_index_takes_over_past_the_limit_with_the_same_top_neighbour() -> None:
    cfg = RetrievalConfig(index="auto", auto_index_records=100)
    small = MemoryIndex(cfg, records(99))
    assert small.candidates is None  # still the exact scan
    exact = MemoryIndex(RetrievalConfig(index="exact"), records(300))
    auto = MemoryIndex(cfg, records(300))
    assert isinstance(auto.candidates, VectorIndex) and len(auto.candidates) == len(auto.texts)
    for probe in records(300)[::37]:
        want, got = exact.neighbours(probe.state), auto.neighbours(probe.state)
        assert got and got[0].similarity == want[0].similarity == 1.0
        assert {n.experience.step for n in got} <= {n.experience.step for n in want}


def test_without_usearch_auto_stays_exact_and_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def missing(config: RetrievalConfig) -> None:
        raise ImportError("No module named 'usearch'")

    monkeypatch.setattr(factory, "make_candidate_index", missing)
    with caplog.at_level(logging.WARNING, logger="jitrl.retrieval.index"):
        index = MemoryIndex(RetrievalConfig(auto_index_records=10), records(40))
    assert index.candidates is None and len(index.neighbours(records(1)[0].state)) > 0
    assert "jitrl[scale]" in caplog.text


def test_resolve_auto() -> None:
    cfg = RetrievalConfig(auto_index_records=1000)
    assert resolve_auto(cfg, 999).index == "auto"
    assert resolve_auto(cfg, 1000).index == "vector"
    exact = RetrievalConfig(index="exact")
    assert resolve_auto(exact, 10**6) is exact


def test_a_large_store_opens_with_the_vector_index_saved_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    config = JitRLConfig(retrieval=RetrievalConfig(auto_index_records=50))
    jit = JitRL(path, config)
    jit.store.add_episode(records(60, "big"))  # type: ignore[union-attr]
    jit.close()
    again = JitRL(path, config)
    assert isinstance(again.index.candidates, VectorIndex) and len(again.index) == 60
    again.close()
    assert (tmp_path / "m.sqlite.vec").is_dir()
