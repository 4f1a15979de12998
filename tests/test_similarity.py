import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.config import RetrievalConfig
from jitrl.method.similarity import action_kind, action_similarity, jaccard, ngrams, similarity
from jitrl.method.types import Experience, State
from jitrl.retrieval.index import MemoryIndex


def exp(text, action="go north", ret=1.0, key=None, ep="e", step=0):
    return Experience(State(text, key), action, ret, ep, step)


def test_ngrams_include_unigrams_and_bigrams():
    assert ngrams("West of House, mailbox", 2) == frozenset(
        {"west", "of", "house", "mailbox", "west of", "of house", "house mailbox"}
    )
    assert ngrams("", 3) == frozenset()


def test_jaccard_basics():
    a, b = frozenset("abc"), frozenset("bcd")
    assert jaccard(a, b) == pytest.approx(2 / 4)
    assert jaccard(a, a) == 1.0
    assert jaccard(frozenset(), frozenset()) == 0.0
    assert jaccard(a, frozenset()) == 0.0


def test_mix_and_key_similarity():
    cfg = RetrievalConfig(similarity="mix", key_weight=0.5)
    s1, s2 = State("kitchen table knife", "k1"), State("kitchen table knife", "k2")
    assert similarity(s1, s1, cfg) == 1.0
    assert similarity(s1, s2, cfg) == pytest.approx(0.5)
    assert similarity(s1, s2, RetrievalConfig(similarity="key")) == 0.0
    assert similarity(s1, State("x", "k1"), RetrievalConfig(similarity="key")) == 1.0


def test_top_k_threshold_and_recency():
    cfg = RetrievalConfig(k=2, threshold=0.5, similarity="ngram")
    idx = MemoryIndex(cfg)
    idx.add([exp("kitchen table knife", step=0), exp("kitchen table knife", step=1)])
    idx.add([exp("kitchen table knife", step=2), exp("forest path trees", step=3)])
    got = idx.neighbours(State("kitchen table knife"))
    assert [n.experience.step for n in got] == [2, 1]  # most recent first, k = 2
    assert all(n.similarity == 1.0 for n in got)
    assert idx.neighbours(State("desert sand dune")) == []
    assert len(idx) == 4


texts = st.lists(
    st.sampled_from(["room", "key", "door", "lamp", "table", "north", "south", "dark"]),
    min_size=0,
    max_size=6,
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(texts, st.sampled_from([None, "a", "b"])), min_size=1, max_size=25),
    texts,
    st.sampled_from([None, "a", "b"]),
    st.sampled_from(["ngram", "key", "mix"]),
)
def test_index_agrees_with_exact_scan(records, qtext, qkey, kind):
    cfg = RetrievalConfig(k=1000, threshold=0.2, similarity=kind, ngram=2)
    exps = [exp(t, key=k, step=i) for i, (t, k) in enumerate(records)]
    idx = MemoryIndex(cfg, exps)
    query = State(qtext, qkey)
    got = {(n.experience.step, round(n.similarity, 9)) for n in idx.neighbours(query)}
    want = {
        (e.step, round(similarity(query, e.state, cfg), 9))
        for e in exps
        if similarity(query, e.state, cfg) >= cfg.threshold
    }
    assert got == want


def test_index_sorted_by_similarity():
    rng = random.Random(0)
    words = ["room", "key", "door", "lamp", "table", "north", "south", "dark"]
    exps = [exp(" ".join(rng.sample(words, 4)), step=i) for i in range(200)]
    idx = MemoryIndex(RetrievalConfig(k=10, threshold=0.1, similarity="ngram"), exps)
    sims = [n.similarity for n in idx.neighbours(State("room key door lamp"))]
    assert len(sims) == 10 and sims == sorted(sims, reverse=True)


def test_config_validation():
    with pytest.raises(ValueError):
        RetrievalConfig(k=0)
    with pytest.raises(ValueError):
        RetrievalConfig(threshold=0.0)
    with pytest.raises(ValueError):
        RetrievalConfig(similarity="cosine")  # type: ignore[arg-type]


# --- what "similar" means by default (issue 12): texts, with keys that add but never gate ---


def test_text_similarity_retrieves_near_duplicates_without_keys() -> None:

    cfg = RetrievalConfig()  # defaults: text similarity, threshold 0.3
    kitchen_a = State("room: the kitchen, a stove, a fridge, a coin | inventory: nothing")
    kitchen_b = State("room: the kitchen, a stove, a fridge | inventory: a key")
    garden = State("room: a garden with roses and a bench | inventory: a key")
    assert similarity(kitchen_a, kitchen_b, cfg) >= cfg.threshold
    assert similarity(kitchen_a, garden, cfg) < cfg.threshold
    index = MemoryIndex(cfg, [Experience(kitchen_b, "open fridge", 1.0, "e1", 0)])
    assert [nb.experience.action for nb in index.neighbours(kitchen_a)] == ["open fridge"]


def test_an_exact_key_adds_to_similarity_and_never_gates_it() -> None:

    cfg = RetrievalConfig(key_weight=0.5)
    a, b = State("the same words here", "k1"), State("the same words there", "k2")
    same_key = State("the same words there", "k1")
    jac = similarity(State(a.text), State(b.text), cfg)
    assert similarity(a, b, cfg) == pytest.approx(jac)  # different keys: the text decides
    assert similarity(a, same_key, cfg) == pytest.approx(jac + 0.5 * (1 - jac))
    assert similarity(State(a.text), b, cfg) == pytest.approx(jac)  # one key missing
    legacy = RetrievalConfig(similarity="mix", key_weight=0.5)
    assert similarity(State(a.text), State(a.text), legacy) == 0.5  # why mix was a gate


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=40), st.text(min_size=0, max_size=40))
def test_action_similarity_is_symmetric_bounded_and_one_for_equals(a: str, b: str) -> None:

    for kind in ("exact", "words"):
        ab = action_similarity(a, b, kind, 0.3)
        assert ab == action_similarity(b, a, kind, 0.3)
        assert 0.0 <= ab <= 1.0
        assert action_similarity(a, a, kind, 0.3) == 1.0
        assert ab == 0.0 or ab >= 0.3 or a == b


def test_actions_worded_for_another_instance_correspond() -> None:

    assert action_similarity("take 25g of brick", "take 37mg of wood", "words", 0.3) > 0.3
    assert action_similarity("take 25g of brick", "take 37mg of wood", "exact", 0.3) == 0.0
    assert action_similarity("click button 'Submit'", "click button 'Submit'", "words", 0.3) == 1
    assert action_similarity("eat the lamp", "go north", "words", 0.3) == 0.0


def test_actions_of_another_kind_never_correspond() -> None:
    # three words of four in common, but opening a door says nothing about closing it
    assert action_similarity("open door to south", "close door to south", "words", 0.3) == 0.0
    assert action_similarity("take coin", "put coin in box", "words", 0.3) == 0.0
    assert action_similarity("open door to south", "open door to north", "words", 0.3) == 0.6
    # switched off, the words alone decide (the earlier releases)
    pooled = action_similarity("open door to south", "close door to south", "words", 0.3, False)
    assert pooled == 0.6


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abc ", min_size=1, max_size=20), st.text(alphabet="abc ", max_size=20))
def test_only_actions_of_one_kind_correspond(a: str, b: str) -> None:
    got = action_similarity(a, b, "words", 0.01)
    if a != b and action_kind(a) != action_kind(b):
        assert got == 0.0
