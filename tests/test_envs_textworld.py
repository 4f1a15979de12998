"""TextWorldEnv on real generated games, the game cache and the ``textworld`` factory specs."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("textworld", reason="needs the textworld extra: pip install 'jitrl[textworld]'")

import jitrl.envs.textworld as tw_module
from jitrl.envs import StepLimit, TextWorldConfig, TextWorldEnv, ensure_game, make_env
from jitrl.envs.textworld import clean_feedback, default_cache_dir, game_path

REPO_ROOT = Path(__file__).resolve().parents[1]
GAME_SEED = 3
SHA1_HEX = re.compile(r"^[0-9a-f]{40}$")
SUBPROCESS_TIMEOUT_S = 300
CONCURRENT_WRITERS = 2

pytestmark = pytest.mark.slow  # every test here plays or generates real games (seconds each)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``JITRL_CACHE`` root whose ``textworld`` folder holds the module's game."""
    return tmp_path_factory.mktemp("jitrl-cache")


@pytest.fixture(scope="module")
def config(cache_root: Path) -> TextWorldConfig:
    cfg = TextWorldConfig(
        seed=GAME_SEED, cache_dir=str(cache_root / "textworld"), privileged_key=True
    )
    ensure_game(cfg)
    return cfg


@pytest.fixture
def env(config: TextWorldConfig) -> Iterator[TextWorldEnv]:
    environment = TextWorldEnv(config)
    yield environment
    environment.close()


def _forbid_generation(*_: object) -> None:
    raise AssertionError("the game should have come from the cache")


def test_reset_gives_candidates_and_state(env: TextWorldEnv) -> None:
    obs, info = env.reset()
    assert env.task_id == f"textworld:{GAME_SEED}-custom-w5-o10-q5"
    assert obs and info.candidates
    assert not {"quit", "restart", "restore", "save"} & set(info.candidates)
    assert len(info.candidates) == len(set(info.candidates))
    state = info.state
    assert SHA1_HEX.match(state.key or "") and state.text.startswith("location: ")
    assert info.location and f"location: {info.location}" in state.text
    assert "$$" not in info.extra["observation"] and "$$" not in state.text
    assert info.score == 0.0 and info.max_score >= 1.0
    assert not info.won and not info.lost and env.walkthrough
    _, again = env.reset()
    assert again.state == state


def test_look_keeps_key_and_status_line_is_removed(env: TextWorldEnv) -> None:
    _, info = env.reset()
    obs, reward, terminated, truncated, looked = env.step("look")
    assert reward == 0.0 and not terminated and not truncated
    assert looked.state.key == info.state.key
    assert not re.search(r"=-\s*\d+/\d+", looked.extra["observation"])
    assert not re.search(r"\d+/\d+", looked.state.text)
    assert looked.extra["raw_observation"] == obs


def test_without_the_privileged_key_states_carry_their_view(config: TextWorldConfig) -> None:
    environment = TextWorldEnv(dataclasses.replace(config, privileged_key=False))
    try:
        _, info = environment.reset()
        assert (info.state.key or "").startswith("view:")
        _, _, _, _, looked = environment.step("look")
        assert looked.state.key == info.state.key  # printing the room changes nothing
        keys = {info.state.key}
        for action in environment.walkthrough:
            _, _, _, _, info = environment.step(action)
            keys.add(info.state.key)
        assert len(keys) > len(environment.walkthrough) // 2  # the quest's steps show
    finally:
        environment.close()
    plain = TextWorldEnv(dataclasses.replace(config, privileged_key=False, view_key=False))
    try:
        assert plain.reset()[1].state.key is None
    finally:
        plain.close()


def test_walkthrough_wins(env: TextWorldEnv) -> None:
    _, info = env.reset()
    keys = {info.state.key}
    total = 0.0
    for action in env.walkthrough:
        assert not info.won
        _, reward, terminated, _, info = env.step(action)
        total += reward
        keys.add(info.state.key)
    assert terminated and info.won and not info.lost
    assert total == info.score == info.max_score
    assert info.candidates == () and len(keys) == len(env.walkthrough) + 1
    with pytest.raises(RuntimeError, match="reset"):
        env.step("look")


def test_taking_an_item_shows_in_inventory(env: TextWorldEnv) -> None:
    _, info = env.reset()
    before = set(info.inventory)
    for action in env.walkthrough:
        _, _, _, _, info = env.step(action)
        if action.startswith("take "):
            break
    gained = set(info.inventory) - before
    assert len(gained) == 1 and next(iter(gained)) in action


def test_generation_is_deterministic(config: TextWorldConfig, tmp_path: Path) -> None:
    fresh = TextWorldConfig(seed=GAME_SEED, cache_dir=str(tmp_path))
    path = ensure_game(fresh)
    reference = game_path(config)
    assert path.read_bytes() == reference.read_bytes()
    assert path.with_suffix(".json").read_bytes() == reference.with_suffix(".json").read_bytes()
    assert not list(path.parent.glob(".tmp-*"))


def test_game_is_reused_from_cache(
    config: TextWorldConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = game_path(config)
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(tw_module, "_generate", _forbid_generation)
    assert ensure_game(config) == path and path.stat().st_mtime_ns == mtime
    TextWorldEnv(config).close()


def test_concurrent_generation_is_safe(tmp_path: Path) -> None:
    script = (
        "import sys; from jitrl.envs.textworld import TextWorldConfig, ensure_game; "
        "print(ensure_game(TextWorldConfig(seed=5, cache_dir=sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), *sys.path])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(CONCURRENT_WRITERS)
    ]
    outputs = {proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs) and len(outputs) == 1
    path = Path(outputs.pop())
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert not list(path.parent.glob(".tmp-*"))
    game = TextWorldEnv(TextWorldConfig(seed=5, cache_dir=str(tmp_path)))
    try:
        assert game.reset()[1].candidates
    finally:
        game.close()


def test_simple_game_has_dense_rewards(tmp_path: Path) -> None:
    game = TextWorldEnv(TextWorldConfig(seed=GAME_SEED, kind="simple", cache_dir=str(tmp_path)))
    try:
        assert game.task_id == f"textworld:{GAME_SEED}-simple-dense-detailed"
        game.reset()
        rewards = [game.step(action)[1] for action in game.walkthrough]
        assert sum(rewards) == game.reset()[1].max_score and sum(r > 0 for r in rewards) > 1
    finally:
        game.close()


def test_cache_dir_follows_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JITRL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "textworld"
    assert TextWorldConfig().resolved_cache_dir() == tmp_path / "textworld"
    monkeypatch.delenv("JITRL_CACHE")
    assert default_cache_dir() == Path("~/.cache/jitrl/textworld").expanduser()


def test_factory_builds_textworld(
    config: TextWorldConfig, cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JITRL_CACHE", str(cache_root))
    monkeypatch.setattr(tw_module, "_generate", _forbid_generation)
    for spec, seed in ((f"textworld:{GAME_SEED}", 99), ("textworld", GAME_SEED)):
        env = make_env(spec, max_steps=2, seed=seed)
        try:
            assert isinstance(env, StepLimit)
            assert env.task_id == f"textworld:{GAME_SEED}-custom-w5-o10-q5"
            env.reset(seed=seed)
            assert env.step("look")[3] is False
            assert env.step("look")[3] is True
        finally:
            env.close()


def test_clean_feedback() -> None:
    raw = "  | $$  \\$$\n ____ \nWelcome!\n\n-= Hall =-\nA hall.\n\n>      -= Hall =-0/4"
    assert clean_feedback(raw) == "Welcome!\n\n-= Hall =-\nA hall."


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"kind": "cooking"},
        {"world_size": 0},
        {"nb_objects": 0},
        {"quest_length": 0},
        {"rewards": "lots"},
        {"goal": "vague"},
        {"max_candidates": 0},
        {"max_observation_chars": 0},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TextWorldConfig(**kwargs)  # type: ignore[arg-type]
