import math
from dataclasses import replace

import pytest

from jitrl.method.config import ValueConfig
from jitrl.method.types import Experience, Neighbour, State
from jitrl.method.values import estimate, proposals


def nb(action, ret, sim=1.0):
    return Neighbour(Experience(State("s"), action, ret, "e", 0), sim)


def test_no_neighbours_means_no_correction():
    est = estimate([], ["a", "b"], ValueConfig())
    assert est.advantages == (0.0, 0.0) and est.v == 0.0 and est.counts == (0, 0)


def test_weighted_q_v_and_advantage():
    ns = [nb("a", 10.0, 1.0), nb("a", 0.0, 0.5), nb("b", -4.0, 0.5)]
    est = estimate(ns, ["a", "b"], ValueConfig(alpha=0.0))
    v = (10.0 * 1.0 + 0.0 * 0.5 - 4.0 * 0.5) / 2.0
    qa = (10.0 * 1.0) / 1.5
    assert est.v == pytest.approx(v)
    assert est.q == pytest.approx((qa, -4.0))
    assert est.advantages == pytest.approx((qa - v, -4.0 - v))
    assert est.counts == (2, 1)


def test_unseen_bonus_shrinks_with_evidence():
    cfg = ValueConfig(alpha=5.0)
    few = estimate([nb("a", 1.0)], ["a", "new"], cfg)
    many = estimate([nb("a", 1.0)] * 9, ["a", "new"], cfg)
    assert few.advantages[1] == pytest.approx(5.0 / 2)
    assert many.advantages[1] == pytest.approx(5.0 / 10)
    assert few.advantages[0] == pytest.approx(0.0)


def test_seen_bonus_and_rescaling():
    ns = [nb("a", 2.0), nb("a", 2.0), nb("b", 0.0)]
    est = estimate(ns, ["a", "b"], ValueConfig(alpha=0.0, seen_bonus=1.0))
    v = 4.0 / 3.0
    assert est.q[0] == pytest.approx(2.0 + math.sqrt(math.log(3) / 2))
    assert est.q[1] == pytest.approx(0.0 + math.sqrt(math.log(3) / 1))
    scaled = estimate(ns, ["a", "b", "c"], ValueConfig(alpha=1.0, scale="max_abs"))
    assert max(abs(a) for a in scaled.advantages) == pytest.approx(1.0)
    assert scaled.v == pytest.approx(v)


def test_proposals_are_positive_advantage_actions_not_yet_candidates():
    ns = [nb("open door", 10.0), nb("eat lamp", -5.0), nb("look", 1.0)]
    got = proposals(ns, ["look"], ValueConfig(alpha=0.0))
    assert got == ["open door"]
    assert proposals([nb("open door", 3.0)], ["look"], ValueConfig()) == ["open door"]
    assert proposals([nb("open door", -3.0)], ["look"], ValueConfig()) == []
    assert proposals([], ["look"], ValueConfig()) == []


def test_unseen_floor_keeps_untried_actions_above_a_deadly_one():
    ns = [nb("jump", -10.0)] * 3
    plain = estimate(ns, ["jump", "wait"], ValueConfig(alpha=4.0, unseen_floor=None))
    floored = estimate(ns, ["jump", "wait"], ValueConfig(alpha=4.0, unseen_floor=0.0))
    assert plain.q[1] - plain.q[0] == pytest.approx(1.0)  # only the bonus
    assert floored.q[1] == pytest.approx(1.0) and floored.q[1] - floored.q[0] == pytest.approx(11.0)
    good = [nb("dig", 6.0)] * 3
    assert estimate(good, ["dig", "x"], ValueConfig(alpha=4.0)).q[1] == pytest.approx(7.0)


def test_a_candidate_worded_for_another_instance_inherits_the_value() -> None:
    words = ValueConfig(alpha=0.0, action_similarity="words", action_threshold=0.3)
    ns = [nb("take 37mg of wood", 2.0), nb("drop the wood", -1.0)]
    est = estimate(ns, ["take 25g of brick", "sing"], words)
    assert est.counts == (1, 0)  # "take ... of ..." matches, "sing" matches nothing
    assert 0.0 < est.q[0] < 2.0  # the matching neighbour's return, tempered by optimism
    exact = estimate(ns, ["take 25g of brick", "sing"], ValueConfig(alpha=0.0))
    assert exact.counts[0] == 1  # the default is words
    assert estimate(ns, ["take 25g of brick"], ValueConfig(action_similarity="exact")).counts == (
        0,
    )


def test_own_evidence_first_then_similar_actions_then_optimism() -> None:
    cfg = ValueConfig(
        alpha=0.0,
        unseen_floor=0.0,
        action_similarity="words",
        action_prior=1.0,
        kind_backoff=False,
    )
    north, south = nb("open door to north", 4.0), nb("open door to south", -4.0)
    v = 0.0  # mean return of the two neighbours; unseen value max(V, 0) + 0
    # the similar action (weight 0.6) backed off to optimism, then one own neighbour
    q_similar = (0.6 * -4.0 + 1.0 * v) / (0.6 + 1.0)
    q_north = (4.0 + q_similar) / (1.0 + 1.0)
    assert estimate([north, south], ["open door to north"], cfg).q[0] == pytest.approx(q_north)
    # with more evidence of its own, the similar action fades
    own = [north, nb("open door to north", 4.0), nb("open door to north", 4.0)]
    many = estimate([*own, south], ["open door to north"], cfg).q[0]
    assert q_north < many < 4.0
    # no evidence of its own: similar actions, tempered by the optimism of an untried action
    alone = estimate([south], ["open door to north"], cfg)
    assert alone.q[0] == pytest.approx((0.6 * -4.0 + 1.0 * 0.0) / 1.6)
    # with the kind backoff (the default) the optimism itself is first tempered by the other
    # "open" action's return
    kinds = estimate([south], ["open door to north"], replace(cfg, kind_backoff=True))
    assert kinds.q[0] == pytest.approx((0.6 * -4.0 + 1.0 * (-4.0 + 0.0) / 2.0) / 1.6)
    no_prior = ValueConfig(alpha=0.0, action_similarity="words", action_prior=0.0)
    assert estimate([north, south], ["open door to north"], no_prior).q[0] == pytest.approx(4.0)


def test_actions_that_looped_here_lose_value_per_loop() -> None:
    cfg = ValueConfig(alpha=0.0, loop_penalty=1.5)
    ns = [nb("wait", 0.0), nb("walk", 0.0)]
    est = estimate(ns, ["wait", "walk"], cfg, looped={"wait": 2})
    assert est.q == pytest.approx((-3.0, 0.0))
    assert estimate(ns, ["wait"], ValueConfig(alpha=0.0, loop_penalty=0.0), {"wait": 2}).q == (0.0,)


def test_kind_backoff_makes_untried_actions_of_a_deadly_kind_unattractive() -> None:
    # three different "focus on X" were fatal; "look around" was uneventful
    neighbours = [
        nb("focus on door", -100.0),
        nb("focus on art studio", -100.0),
        nb("focus on soil", -100.0),
        nb("look around", 0.0),
    ]
    candidates = ["focus on banana", "open drawer"]
    plain_config = ValueConfig(action_similarity="exact", kind_backoff=False)
    plain = estimate(neighbours, candidates, plain_config)
    assert plain.q[0] == plain.q[1] > 0.0  # both untried: the same optimism
    kinds = estimate(
        neighbours, candidates, ValueConfig(action_similarity="exact", kind_backoff=True)
    )
    assert kinds.q[1] == plain.q[1]  # no neighbour opened anything: optimism as before
    # the deadly kind pulls its untried one down to about the value of the state
    assert kinds.advantages[0] < 1.0 < 75.0 < kinds.advantages[1]
    assert kinds.q[0] == pytest.approx((-300.0 + plain.q[0]) / 4.0)
    assert kinds.counts == plain.counts == (0, 0)


def test_a_candidate_draws_nothing_from_an_action_of_another_kind() -> None:
    closed = [nb("close door to south", -4.0), nb("move north", 0.0)]
    cfg = ValueConfig(alpha=0.0, unseen_floor=None, kind_backoff=False)
    est = estimate(closed, ["open door to south"], cfg)
    assert est.counts == (0,)  # the closing counts for nothing: the candidate is untried
    mixed = estimate(closed, ["open door to south"], replace(cfg, action_same_kind=False))
    assert mixed.counts == (1,) and mixed.q[0] < est.q[0]  # the earlier releases' pooling


def test_an_offered_action_keeps_its_evidence_to_itself_when_exclusive() -> None:
    """Side by side, "put oil in shelf" and "put oil in chair" are alternatives; in another
    instance, where only one of them is offered, the other still stands in for it."""
    seen = [nb("put oil in shelf", 1.0), nb("move north", 0.0)]
    cfg = ValueConfig(
        alpha=0.0, unseen_floor=None, kind_backoff=False, kind_prior=0.0, action_exclusive=False
    )
    exclusive = replace(cfg, action_exclusive=True)
    assert ValueConfig().action_exclusive  # the default
    both = ["put oil in shelf", "put oil in chair"]
    pooled, alone = estimate(seen, both, cfg), estimate(seen, both, exclusive)
    assert pooled.counts == (1, 1) and pooled.q[1] > pooled.v  # the chair borrows the shelf's
    assert alone.counts == (1, 0) and alone.q[1] == pytest.approx(alone.v)  # untried
    assert alone.q[0] == pooled.q[0] == pytest.approx(1.0)
    other = estimate(seen, ["put oil in chair", "move north"], exclusive)  # shelf not offered
    assert other.counts == (1, 1) and other.q[0] > other.v
