"""Candidate pruning for large action spaces."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.config import PruneConfig
from jitrl.method.pruning import breadth_first, object_words, prune, relevance
from jitrl.method.types import Estimates

STATE = (
    "task: find a living thing and move it to the green box | room: the garden, a butterfly,"
    " a door to the kitchen | inventory: an orange"
)
CANDIDATES = [
    "look around",
    "inventory",
    "close door to kitchen",
    "open door to kitchen",
    "go to kitchen",
    "go to door to kitchen",
    "pick up butterfly",
    "focus on butterfly",
    "move butterfly to green box",
    "eat orange",
    "pick up orange",
    "focus on orange",
    "pick up cup",
    "dunk cup into bowl",
    "pick up bowl",
    "focus on bowl",
]


def _kept(limit: int) -> list[str]:
    return [CANDIDATES[i] for i in prune(STATE, CANDIDATES, [], None, PruneConfig(prune_to=limit))]


def test_nothing_is_pruned_below_the_limit() -> None:
    n = len(CANDIDATES)
    assert prune(STATE, CANDIDATES, [], None, PruneConfig(prune_to=n)) == list(range(n))
    assert prune(STATE, CANDIDATES, [], None, PruneConfig(prune_to=None)) == list(range(n))


def test_object_words_are_the_things_several_actions_name() -> None:
    objects = dict(zip(CANDIDATES, object_words(CANDIDATES), strict=True))
    assert objects["look around"] == frozenset()  # 'around' only follows 'look'
    assert objects["inventory"] == frozenset()
    assert objects["pick up butterfly"] == {"butterfly"}  # 'up' only follows 'pick'
    assert objects["dunk cup into bowl"] == {"cup", "bowl"}
    assert objects["go to door to kitchen"] == {"door", "kitchen"}


def test_actions_about_no_thing_come_first_then_what_the_state_names() -> None:
    scores = dict(zip(CANDIDATES, relevance(STATE, CANDIDATES), strict=True))
    assert scores["look around"] == math.inf and scores["inventory"] == math.inf
    assert scores["pick up butterfly"] > scores["pick up cup"] == 0.0
    assert _kept(2) == ["look around", "inventory"]
    kept = _kept(6)
    assert {"pick up butterfly", "focus on butterfly"} <= set(kept)
    assert not {"pick up cup", "dunk cup into bowl", "pick up bowl", "focus on bowl"} & set(kept)


def test_web_elements_of_one_kind_still_rank_by_what_the_state_names() -> None:
    # on a page every candidate is a click; the page's words make their labels things
    items = [f"link 'Item{n}'" for n in range(40)]
    state = "task: press Submit | page: button 'Submit', button 'Cancel', " + ", ".join(items)
    candidates = ["click button 'Submit'", "click button 'Cancel'", "click link 'Hidden'"]
    candidates += [f"click {item}" for item in items]
    scores = relevance(state, candidates)
    assert all(math.isfinite(x) for x in scores)
    assert scores[0] == scores[1] > scores[3] > scores[2]
    assert prune(state, candidates, [], None, PruneConfig(prune_to=3)) == [0, 1, 3]


def test_a_longer_variant_of_a_simpler_candidate_waits_for_the_other_kinds() -> None:
    scores = relevance(STATE, CANDIDATES)
    everything = list(range(len(CANDIDATES)))
    objects = object_words(CANDIDATES, set(STATE.replace(",", " ").split()))
    order = [CANDIDATES[i] for i in breadth_first(CANDIDATES, scores, everything, objects)]
    assert order.index("go to kitchen") < order.index("go to door to kitchen")
    # every kind's simplest candidates come before it, even those the state does not name
    assert order.index("dunk cup into bowl") < order.index("go to door to kitchen")


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
