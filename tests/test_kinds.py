"""The task-wide value of each kind of action (``jitrl.method.kinds``) and the kind prior."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitrl.method.config import JitRLConfig, PolicyConfig, ValueConfig
from jitrl.method.kinds import KindValues
from jitrl.method.learner import JitRL
from jitrl.method.types import Experience, Neighbour, State
from jitrl.method.values import estimate


def record(action, reward, task="t", state="s"):
    return Experience(State(state), action, reward, "e", 0, task_id=task, reward=reward)


def nb(action, ret, sim=1.0):
    return Neighbour(record(action, ret), sim)


def test_offsets_are_each_kinds_mean_step_reward_minus_the_tasks():
    kinds = KindValues()
    for action, ret in [("move north", 0.0), ("move south", 1.0), ("look", -1.0), ("look", -1.0)]:
        kinds.add(record(action, ret))
    kinds.add(record("look", 5.0, task="other"))
    mean = (0.0 + 1.0 - 2.0) / 4
    assert kinds.offsets("t") == pytest.approx({"move": 0.5 - mean, "look": -1.0 - mean})
    assert kinds.offsets("other") == pytest.approx({"look": 0.0})
    assert kinds.offsets("unknown") == {}
    assert kinds.count("t", "look") == 2 and kinds.count("t", "take") == 0


def test_a_kind_is_valued_by_what_it_does_not_by_what_followed():
    kinds = KindValues()
    # looking came just before the win (a high return) but scored nothing itself
    kinds.add(Experience(State("s"), "look", 0.9, "e", 0, task_id="t", reward=0.0))
    kinds.add(Experience(State("s"), "take coin", 1.0, "e", 1, task_id="t", reward=1.0))
    assert kinds.offsets("t") == pytest.approx({"look": -0.5, "take": 0.5})


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["move east", "look", "take coin", "open door"]),
            st.floats(-10, 10, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_offsets_weighted_by_their_counts_sum_to_zero(rows):
    kinds = KindValues()
    for action, reward in rows:
        kinds.add(record(action, reward))
    offsets = kinds.offsets("t")
    total = sum(kinds.count("t", kind) * offset for kind, offset in offsets.items())
    assert total == pytest.approx(0.0, abs=1e-6)


def test_a_rare_kinds_few_lucky_returns_are_shrunk_towards_what_the_kind_returns_overall():
    neighbours = [nb("move east", -0.2)] * 20 + [nb("look", 0.3)] * 2
    offsets = {"move": 0.05, "look": -0.3}
    plain = estimate(neighbours, ["move east", "look"], ValueConfig())
    assert plain.q[1] > plain.q[0]  # two lucky returns make looking look best
    cfg = ValueConfig(kind_prior=10.0)
    shrunk = estimate(neighbours, ["move east", "look"], cfg, kind_offsets=offsets)
    v = shrunk.v
    assert shrunk.q[1] == pytest.approx((2 * 0.3 + 10 * (v - 0.3)) / 12)
    assert shrunk.q[0] == pytest.approx((20 * -0.2 + 10 * (v + 0.05)) / 30)
    assert shrunk.q[1] < shrunk.q[0]
    assert shrunk.counts == plain.counts and shrunk.v == plain.v


def test_without_a_weight_or_an_offset_the_kind_prior_changes_nothing():
    neighbours = [nb("move east", -0.2), nb("look", 0.3)]
    cands = ["move east", "look", "take coin"]
    plain = estimate(neighbours, cands, ValueConfig())
    off = estimate(neighbours, cands, ValueConfig(kind_prior=0.0), kind_offsets={"look": -1.0})
    unknown = estimate(neighbours, cands, ValueConfig(kind_prior=5.0), kind_offsets={"go": 1.0})
    assert off.q == plain.q == unknown.q


def test_an_untried_action_is_shrunk_with_the_weight_of_its_optimism():
    cfg = ValueConfig(kind_prior=3.0, kind_backoff=False)
    est = estimate([nb("move east", 0.0)], ["look"], cfg, kind_offsets={"look": -0.5})
    optimism = 0.0 + cfg.alpha / 2
    assert est.q[0] == pytest.approx((cfg.action_prior * optimism + 3.0 * (0.0 - 0.5)) / 4.0)


def test_the_learner_values_kinds_over_its_whole_memory(list_store):
    plain = JitRLConfig(policy=PolicyConfig(pace="calibrated"))  # the logits lead every episode
    plain = replace(plain, values=replace(plain.values, kind_prior=0.0))
    jit = JitRL(list_store, plain)
    for i in range(6):  # looking never pays on this task; taking does
        with jit.episode("task", f"e{i}") as ep:
            ep.decide(f"room {i} with a lamp", ["look", "take lamp"], logits=[0.0, -9.0])
            ep.reward(0.0)
            ep.decide(f"room {i} holding a lamp", ["take lamp", "look"], logits=[0.0, -9.0])
            ep.reward(1.0)
    offsets = jit.index.kinds.offsets("task")
    assert offsets["take"] > 0.0 > offsets["look"]
    assert jit.index.kinds.count("task", "look") == 6
    shrinking = replace(plain, values=replace(plain.values, kind_prior=10.0))
    reopened = JitRL(list_store, shrinking)  # loaded from the store: the same values
    assert reopened.index.kinds.offsets("task") == pytest.approx(offsets)
    state, cands = "room 9 with a lamp", ["look", "take lamp"]
    before = jit.decide(state, cands, logits=[0.0, 0.0], task_id="task").estimates
    after = reopened.decide(state, cands, logits=[0.0, 0.0], task_id="task").estimates
    assert before is not None and after is not None
    weight = 6 * 0.5  # six looks, each of similarity 0.5
    expected = (weight * before.q[0] + 10.0 * (before.v + offsets["look"])) / (weight + 10.0)
    assert after.q[0] == pytest.approx(expected) and after.q[0] < before.q[0]
    other = reopened.decide(state, cands, logits=[0.0, 0.0], task_id="another task").estimates
    assert other is not None and other.q == before.q  # another task's kinds are its own
