"""Candidate pruning for large action spaces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.config import PruneConfig
from jitrl.method.pruning import prune, relevance
from jitrl.method.types import Estimates

STATE = "task: find a living thing and move it to the green box | room: the garden, a butterfly"
CANDIDATES = [
    "close door",
    "pick up butterfly",
    "focus on butterfly",
    "move butterfly to green box",
    "eat orange",
    "open door to kitchen",
    "look around",
    "dunk cup into bowl",
]


def test_nothing_is_pruned_below_the_limit() -> None:
    assert prune(STATE, CANDIDATES, [], None, PruneConfig(prune_to=8)) == list(range(8))
    assert prune(STATE, CANDIDATES, [], None, PruneConfig(prune_to=None)) == list(range(8))


def test_the_words_the_state_names_survive() -> None:
    kept = prune(STATE, CANDIDATES, [], None, PruneConfig(prune_to=3))
    assert [CANDIDATES[i] for i in kept] == [
        "pick up butterfly",
        "focus on butterfly",
        "move butterfly to green box",
    ]
    scores = relevance(STATE, CANDIDATES)
    assert scores[CANDIDATES.index("eat orange")] == 0.0


def test_memory_proposals_and_evidence_always_survive() -> None:
    counts = tuple(1 if c == "look around" else 0 for c in CANDIDATES)
    q = tuple(5.0 if c == "look around" else 0.0 for c in CANDIDATES)
    est = Estimates(q=q, counts=counts, v=0.0, advantages=q)
    kept = prune(STATE, CANDIDATES, ["eat orange"], est, PruneConfig(prune_to=3))
    names = [CANDIDATES[i] for i in kept]
    assert "eat orange" in names and "look around" in names and len(names) == 3


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text("abcde ", min_size=1, max_size=12), min_size=1, max_size=30, unique=True),
    st.integers(1, 40),
    st.data(),
)
def test_pruning_keeps_at_most_the_limit_in_order_and_the_proposals(cands, limit, data) -> None:
    proposed = data.draw(st.lists(st.sampled_from(cands), max_size=min(3, limit), unique=True))
    kept = prune("a b c state", cands, proposed, None, PruneConfig(prune_to=limit))
    assert kept == sorted(set(kept))
    assert len(kept) == min(len(cands), max(limit, len(proposed)))
    assert {cands.index(p) for p in proposed} <= set(kept)
