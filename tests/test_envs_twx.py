"""TextWorldExpress and ScienceWorld adapters on the real games (bundled Java servers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jitrl.envs import make_env
from jitrl.envs.base import StepInfo, TextEnv
from jitrl.envs.instances import draw
from jitrl.envs.twx import TWXConfig, parse_spec

pytest.importorskip("textworld_express")


@pytest.fixture(scope="module")
def coin() -> Iterator[TextEnv]:
    env = make_env("twx:coin", max_steps=30, seed=1)
    yield env
    env.close()


def test_every_seed_draws_an_instance_of_its_fold(coin: TextEnv) -> None:
    seen = {}
    for seed in range(6):
        _, info = coin.reset(seed=seed)
        seen[seed] = info.extra["instance"]
        assert info.extra["fold"] == "train" and info.candidates and info.goal
    assert len(set(seen.values())) >= 5  # different seeds, different instances
    _, again = coin.reset(seed=3)
    assert again.extra["instance"] == seen[3]  # the same seed, the same instance
    _, test = coin.reset(seed=3, fold="test")
    assert test.extra["fold"] == "test" and test.extra["instance"] != seen[3]
    with pytest.raises(ValueError, match="fold"):
        coin.reset(seed=1, fold="holdout")  # type: ignore[arg-type]


def test_states_are_text_with_the_task_and_their_view_as_key(coin: TextEnv) -> None:
    _, info = coin.reset(seed=2)
    assert isinstance(info, StepInfo) and info.state.key is not None
    assert info.state.key.startswith("view:")
    assert info.state.text.startswith("task: your task is to search the environment")
    assert "| room: you are in the" in info.state.text and info.location


def test_a_step_that_only_prints_or_is_undone_leads_back_to_the_same_view(coin: TextEnv) -> None:
    _, start = coin.reset(seed=2)
    _, _, _, _, after = coin.step("inventory")
    assert after.state.text != start.state.text  # the last message differs ...
    assert after.state.key == start.state.key  # ... the view does not
    door = next(a for a in start.candidates if a.startswith("open door"))
    _, _, _, _, opened = coin.step(door)
    assert opened.state.key != start.state.key  # the room changed
    _, _, _, _, closed = coin.step(door.replace("open", "close", 1))
    assert closed.state.key == start.state.key and closed.state.text != start.state.text


def test_without_the_view_key_states_have_no_key() -> None:
    env = make_env("twx:coin", max_steps=5, seed=1, view_key=False)
    try:
        _, info = env.reset(seed=2)
        assert info.state.key is None and info.state.text.startswith("task: ")
    finally:
        env.close()


def test_the_gold_path_wins_and_rewards_are_score_deltas(coin: TextEnv) -> None:
    _, info = coin.reset(seed=4)
    total = 0.0
    for action in coin.unwrapped.gold_path():  # type: ignore[attr-defined]
        assert coin.is_valid(action) and action in info.candidates
        _, reward, done, _, info = coin.step(action)
        total += reward
        if done:
            break
    assert info.won and total == pytest.approx(info.score) == pytest.approx(1.0)
    assert info.candidates == ()


def test_bad_specs_are_refused() -> None:
    assert parse_spec("twc?numLocations=3") == TWXConfig(game="twc", params="numLocations=3")
    with pytest.raises(ValueError, match="unknown TextWorldExpress game"):
        parse_spec("pong")
    with pytest.raises(ValueError, match="name=value"):
        parse_spec("coin?rm -rf")
    assert draw(1, [7, 8, 9]) in (7, 8, 9) and draw(1, [7, 8, 9]) == draw(1, [7, 8, 9])


def test_scienceworld_variations_and_candidates() -> None:
    pytest.importorskip("scienceworld")
    env = make_env("scienceworld:find-living-thing", max_steps=5, seed=1)
    try:
        _, info = env.reset(seed=1)
        assert info.goal.startswith("your task is to find") or "living thing" in info.goal
        assert len(info.candidates) > 50 and (info.state.key or "").startswith("view:")
        variation = info.extra["variation"]
        _, test = env.reset(seed=1, fold="test")
        assert test.extra["variation"] != variation
        _, reward, _, _, after = env.step(test.candidates[0])
        assert reward == pytest.approx(after.score - test.score)
    finally:
        env.close()
    with pytest.raises(ValueError, match="unknown ScienceWorld task"):
        make_env("scienceworld:juggling", max_steps=5, seed=1)
