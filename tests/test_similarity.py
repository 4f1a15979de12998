import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.config import RetrievalConfig
from jitrl.method.similarity import jaccard, ngrams, similarity
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
