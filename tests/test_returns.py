import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitrl.method.config import ReturnConfig
from jitrl.method.returns import (
    discounted_returns,
    episode_returns,
    lambda_returns,
    revisits,
    step_rewards,
)


def test_discounted_returns_by_hand():
    assert discounted_returns([1.0, 0.0, 2.0], 0.5) == [1.5, 1.0, 2.0]
    assert discounted_returns([], 0.9) == []
    assert discounted_returns([3.0, 4.0], 0.0) == [3.0, 4.0]
    assert discounted_returns([1.0, 1.0, 1.0], 1.0) == [3.0, 2.0, 1.0]


@given(
    st.lists(st.floats(-100, 100, allow_nan=False), max_size=40),
    st.floats(0.0, 1.0),
)
def test_returns_match_the_definition(rewards, gamma):
    got = discounted_returns(rewards, gamma)
    for t in range(len(rewards)):
        want = sum(gamma ** (u - t) * rewards[u] for u in range(t, len(rewards)))
        assert math.isclose(got[t], want, rel_tol=1e-9, abs_tol=1e-7)


def test_terminal_penalty_only_on_failure():
    cfg = ReturnConfig(gamma=0.5, terminal_penalty=10.0)
    assert step_rewards([1.0, 2.0], failed=False, config=cfg) == [1.0, 2.0]
    assert step_rewards([1.0, 2.0], failed=True, config=cfg) == [1.0, -8.0]
    shaped, rets = episode_returns([0.0, 0.0], failed=True, config=cfg)
    assert shaped == [0.0, -10.0]
    assert rets == [-5.0, -10.0]


def test_truncated_episode_is_not_filled_with_current_reward():
    # the last step's reward is not repeated into the missing future (a known bug elsewhere)
    assert discounted_returns([0.0, 5.0], 0.5) == [2.5, 5.0]


def test_bad_inputs():
    with pytest.raises(ValueError):
        step_rewards([float("nan")], failed=False, config=ReturnConfig())
    with pytest.raises(ValueError):
        ReturnConfig(gamma=1.5)
    with pytest.raises(ValueError):
        ReturnConfig(terminal_penalty=-1)


def test_revisit_flags_and_penalty():
    assert revisits(["a", "b", "a", "c", "b"]) == [False, True, False, True, False]
    assert revisits([]) == []
    cfg = ReturnConfig(gamma=0.0, revisit_penalty=1.0, terminal_penalty=0.0)
    shaped, rets = episode_returns(
        [0.0, 0.0, 5.0], failed=False, config=cfg, states=["a", "b", "a"]
    )
    assert shaped == [0.0, -1.0, 5.0] and rets == shaped
    with pytest.raises(ValueError):
        episode_returns([0.0], failed=False, config=cfg, states=["a", "b"])


def test_lambda_returns_by_hand():
    # G_2 = 2; G_1 = 0 + 0.5 * (0.5 * V_2 + 0.5 * G_2) = 0.5 * (0.5 * 4 + 1) = 1.5
    # G_0 = 1 + 0.5 * (0.5 * V_1 + 0.5 * G_1) = 1 + 0.5 * (0.5 * -1 + 0.75) = 1.125
    assert lambda_returns([1.0, 0.0, 2.0], [9.0, -1.0, 4.0], 0.5, 0.5) == [1.125, 1.5, 2.0]
    # where memory had no neighbours (None) the return carries on whole
    assert lambda_returns([1.0, 0.0, 2.0], [None, None, None], 0.5, 0.0) == [1.5, 1.0, 2.0]
    # lam = 0 is one-step TD: the reward and the next state's value only
    assert lambda_returns([1.0, 0.0, 2.0], [0.0, 3.0, 4.0], 0.5, 0.0) == [2.5, 2.0, 2.0]
    with pytest.raises(ValueError, match="values"):
        lambda_returns([1.0], [], 0.5, 0.5)
    with pytest.raises(ValueError, match="td_lambda"):
        ReturnConfig(td_lambda=1.5)


@given(
    st.lists(st.tuples(st.floats(-10, 10), st.one_of(st.none(), st.floats(-10, 10))), max_size=30),
    st.floats(0.0, 1.0),
)
def test_lambda_one_is_the_plain_return_and_values_only_enter_below_it(steps, gamma):
    rewards = [r for r, _ in steps]
    values = [v for _, v in steps]
    plain = discounted_returns(rewards, gamma)
    for got, want in zip(lambda_returns(rewards, values, gamma, 1.0), plain, strict=True):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    cfg = ReturnConfig(gamma=gamma, td_lambda=1.0, revisit_penalty=0.0)
    assert episode_returns(rewards, failed=False, config=cfg, values=values)[1] == plain
    # bootstrapping never changes the last step, which has no next state
    if rewards:
        assert lambda_returns(rewards, values, gamma, 0.3)[-1] == pytest.approx(rewards[-1])


def test_episode_returns_bootstrap_only_when_asked():
    cfg = ReturnConfig(gamma=0.5, td_lambda=0.0, revisit_penalty=0.0)
    _, rets = episode_returns([0.0, 0.0, 4.0], failed=False, config=cfg, values=[0.0, 1.0, 3.0])
    assert rets == [0.5, 1.5, 4.0]
    _, plain = episode_returns([0.0, 0.0, 4.0], failed=False, config=cfg)  # no values given
    assert plain == [1.0, 2.0, 4.0]
