import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitrl.method.config import ReturnConfig
from jitrl.method.returns import discounted_returns, episode_returns, revisits, step_rewards


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
