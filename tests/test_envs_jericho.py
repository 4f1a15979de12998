"""JerichoEnv on real games (zork1, detective, library) and the ``jericho:`` factory spec.

Game files come from ``$JITRL_JERICHO_DIR`` or ``../shared/games/jericho`` next to the repository;
the tests skip only when neither exists.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("jericho", reason="needs the jericho extra: pip install 'jitrl[jericho]'")

from jitrl.envs import JerichoConfig, JerichoEnv, StepLimit, make_env
from jitrl.envs.game_text import format_state_text, is_meta_command, normalise_observation
from jitrl.envs.jericho import EMULATOR_SEED_OFFSET
from jitrl.method.types import State

from .conftest import jericho_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_GAMES = REPO_ROOT.parent / "shared" / "games" / "jericho"
ZORK_MAX_SCORE = 350.0
EGG_POINTS = 5.0
TO_EGG = ["north", "north", "up", "get egg"]  # zork1's walkthrough opening; the egg scores 5.
DETECTIVE_DEATH = ["north", "west", "north"]  # walking into the restaurant gets you killed.
TROLL_STEPS = 30  # zork1's walkthrough reaches the (random) troll fight by then.
EPISODE_STEPS = 25
SUBPROCESS_TIMEOUT_S = 300
MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


GAME_DIR = jericho_dir()
pytestmark = pytest.mark.skipif(
    GAME_DIR is None, reason=f"no Jericho games: set JITRL_JERICHO_DIR or provide {SHARED_GAMES}"
)


def game(name: str) -> Path:
    """Path of a game file, skipping the test if this game is missing."""
    assert GAME_DIR is not None
    path = GAME_DIR / f"{name}.z5"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture
def zork() -> Iterator[JerichoEnv]:
    env = JerichoEnv(game("zork1"), JerichoConfig(privileged_key=True))
    yield env
    env.close()


def test_states_are_text_and_a_view_unless_the_privileged_key_is_asked_for() -> None:
    env = JerichoEnv(game("zork1"))
    try:
        _, info = env.reset()
        assert info.state.text.startswith("location: west house")
        assert info.state.key is not None and info.state.key.startswith("view:")
        state_hash = info.extra["state_hash"]
        assert len(state_hash) == 32 and state_hash not in info.state.key  # not given to memory
        moves = info.extra["moves"]
        _, _, _, _, opened = env.step("open mailbox")
        assert opened.extra["moves"] == moves + 1  # the view's look spent no move
        _, _, _, _, closed = env.step("close mailbox")
        assert opened.state.key != info.state.key  # the mailbox shows open
        assert closed.state.key == info.state.key  # undone: the same view, another message
        assert closed.state.text != info.state.text
    finally:
        env.close()
    plain = JerichoEnv(game("zork1"), JerichoConfig(view_key=False))
    try:
        _, info = plain.reset()
        assert info.state.key is None
    finally:
        plain.close()


def play(env: JerichoEnv, actions: list[str]) -> list[tuple[str, float, bool, list[str], str]]:
    """Step through ``actions``; return (observation, reward, terminated, candidates, key)."""
    out = []
    for action in actions:
        obs, reward, terminated, _, info = env.step(action)
        out.append((obs, reward, terminated, info.candidates, info.state.key))
        if terminated:
            break
    return out


def random_episode(env: JerichoEnv, seed: int, steps: int) -> list[tuple[str, ...]]:
    """A random-candidate episode (actions drawn with ``random.Random(0)``) as comparable rows."""
    rng = random.Random(0)
    obs, info = env.reset(seed=seed)
    rows: list[tuple[str, ...]] = [(obs, str(info.state), *info.candidates)]
    for _ in range(steps):
        if not info.candidates:
            break
        obs, reward, terminated, _, info = env.step(rng.choice(info.candidates))
        rows.append((obs, str(reward), str(info.state), *info.candidates))
        if terminated:
            break
    return rows


def test_reset_gives_candidates_and_state(zork: JerichoEnv) -> None:
    obs, info = zork.reset()
    assert zork.task_id == "jericho:zork1"
    assert "West of House" in obs and info.extra["observation"] == obs
    assert "open mailbox" in info.candidates
    assert len(info.candidates) == len(set(info.candidates))
    state = info.state
    assert isinstance(state, State) and MD5_HEX.match(state.key or "")
    assert state.text.startswith("location: ")
    assert "| inventory: nothing | observation: " in state.text
    assert "serial number" not in state.text and state.text == state.text.lower()
    assert info.score == 0.0 and info.max_score == ZORK_MAX_SCORE
    assert not info.won and not info.lost and info.inventory == ()


def test_mailbox_then_leaflet_changes_state(zork: JerichoEnv) -> None:
    _, info0 = zork.reset()
    obs, reward, terminated, truncated, info1 = zork.step("open mailbox")
    assert "leaflet" in obs and reward == 0.0 and not terminated and not truncated
    assert "take leaflet" in info1.candidates
    assert info1.state.key != info0.state.key
    _, _, _, _, info2 = zork.step("take leaflet")
    assert info2.inventory == ("leaflet",)
    assert "inventory: leaflet" in info2.state.text
    assert info2.state.key != info1.state.key


def test_scoring_step_reward_is_score_delta(zork: JerichoEnv) -> None:
    _, info = zork.reset()
    score = info.score
    for action in TO_EGG:
        _, reward, _, _, info = zork.step(action)
        assert reward == info.score - score
        score = info.score
    assert reward == EGG_POINTS and score == EGG_POINTS
    assert "egg" in " ".join(info.inventory)


def test_equal_states_have_equal_keys(zork: JerichoEnv) -> None:
    _, start = zork.reset()
    _, _, _, _, north = zork.step("north")
    _, _, _, _, back = zork.step("west")  # North of House -> West of House
    assert north.state.key != start.state.key
    assert back.state.key == start.state.key
    _, again = zork.reset()
    assert again.state == start.state


def test_valid_action_cache_hits(zork: JerichoEnv) -> None:
    zork.reset()
    zork.step("north")
    zork.step("west")
    assert zork.cache_hits == 1 and zork.cache_misses == 2
    zork.reset()
    assert zork.cache_hits == 2 and 0.0 < zork.cache_hit_rate < 1.0


def test_cache_evicts_least_recently_used() -> None:
    env = JerichoEnv(game("zork1"), JerichoConfig(cache_max_entries=1))
    try:
        env.reset()
        env.step("north")  # evicts West of House
        env.step("west")
        assert env.cache_hits == 0 and env.cache_misses == 3
    finally:
        env.close()


def test_fallback_when_no_valid_actions(zork: JerichoEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zork, "_valid_actions", lambda key: ())
    assert zork.reset()[1].candidates == tuple(JerichoConfig().fallback_actions)


@pytest.mark.slow
def test_same_seed_identical_trajectory_with_and_without_cache() -> None:
    cached = JerichoEnv(game("zork1"))
    uncached = JerichoEnv(game("zork1"), JerichoConfig(cache_valid_actions=False))
    try:
        first = random_episode(cached, seed=2, steps=EPISODE_STEPS)
        second = random_episode(cached, seed=2, steps=EPISODE_STEPS)  # served from the cache
        third = random_episode(uncached, seed=2, steps=EPISODE_STEPS)
        assert cached.cache_hits > 0 and uncached.cache_hits == 0
        assert first == second == third
    finally:
        cached.close()
        uncached.close()


_EPISODE_SCRIPT = """
import json, random, sys
from jitrl.envs import JerichoEnv
env = JerichoEnv(sys.argv[1])
rng = random.Random(0)
obs, info = env.reset(seed=2)
rows = [info.candidates]
for _ in range(int(sys.argv[2])):
    obs, _, done, _, info = env.step(rng.choice(info.candidates))
    rows.append([obs, info.candidates])
    if done or not info.candidates:
        break
print(json.dumps(rows))
"""


@pytest.mark.slow
def test_candidates_do_not_depend_on_hash_seed() -> None:
    """Jericho's own valid actions vary with PYTHONHASHSEED (order and representative)."""
    path = game("zork1")
    procs = []
    for hash_seed in ("1", "2"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), *sys.path]),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _EPISODE_SCRIPT, str(path), str(EPISODE_STEPS)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert json.loads(outputs[0]) == json.loads(outputs[1])


@pytest.mark.slow
def test_distinct_seeds_give_distinct_runs(zork: JerichoEnv) -> None:
    moves = zork.walkthrough()[:TROLL_STEPS]
    runs: dict[int, list[list[str]]] = {}
    for seed in (2, 3, 2):
        zork.reset(seed=seed)
        runs.setdefault(seed, []).append([row[0] for row in play(zork, moves)])
    assert runs[2][0] == runs[2][1]
    assert runs[2][0] != runs[3][0]
    assert zork.seed == 2


def test_seed_zero_is_valid_and_shifted() -> None:
    env = JerichoEnv(game("zork1"), JerichoConfig(seed=0))
    try:
        env.reset()
        assert env.seed == 0 and env._frotz()._seed == EMULATOR_SEED_OFFSET
    finally:
        env.close()


def test_death_ends_episode_without_candidates() -> None:
    env = JerichoEnv(game("detective"))
    try:
        _, info = env.reset()
        assert info.score > 0  # detective starts with points: rewards are deltas from here
        rows = play(env, DETECTIVE_DEATH)
        assert rows[-1][2] is True and rows[-1][3] == ()
        assert [r[2] for r in rows[:-1]] == [False, False]
        with pytest.raises(RuntimeError, match="reset"):
            env.step("look")
        _, info = env.reset()
        assert info.candidates
    finally:
        env.close()


def test_step_limit_truncates(zork: JerichoEnv) -> None:
    limited = StepLimit(zork, max_steps=2)
    limited.reset()
    assert limited.step("north")[3] is False
    _, _, terminated, truncated, _ = limited.step("west")
    assert truncated and not terminated
    limited.reset()
    assert limited.step("north")[3] is False


@pytest.mark.slow
def test_junk_filter_and_candidate_cap() -> None:
    path = game("library")  # "xyzzy" is a valid action in library's lobby
    raw = JerichoEnv(path, JerichoConfig(drop_junk_actions=False))
    capped = JerichoEnv(path, JerichoConfig(max_candidates=2))
    try:
        assert "xyzzy" in raw.reset()[1].candidates
        candidates = capped.reset()[1].candidates
        assert len(candidates) == 2 and "xyzzy" not in candidates
    finally:
        raw.close()
        capped.close()


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        JerichoEnv(tmp_path / "nope.z5")
    junk = tmp_path / "junk.z5"
    junk.write_bytes(b"not a story file" * 64)
    with pytest.raises(ValueError, match="not a game Jericho supports"):
        JerichoEnv(junk)


def test_close_frees_and_is_idempotent() -> None:
    env = JerichoEnv(game("zork1"))
    env.reset()
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"seed": 2**31},
        {"max_observation_chars": 0},
        {"cache_max_entries": 0},
        {"max_candidates": 0},
        {"fallback_actions": ()},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        JerichoConfig(**kwargs)  # type: ignore[arg-type]


def test_text_helpers() -> None:
    noisy = "Taken.\n\n[Your score has just gone up by ten points.]\nIn that game you scored 5"
    assert normalise_observation(noisy, 100) == "taken."
    assert normalise_observation("A  b\nC", 3) == "a b"
    expected = "location: hall | inventory: lamp | observation: x"
    assert format_state_text("Hall", ["Lamp"], "x") == expected
    assert is_meta_command("save") and is_meta_command("QUIT") and not is_meta_command("look")
    assert is_meta_command("xyzzy", include_magic=True) and not is_meta_command("xyzzy")


def test_factory_builds_jericho(monkeypatch: pytest.MonkeyPatch) -> None:
    path = game("zork1")
    env = make_env(f"jericho:{path}", max_steps=3, seed=4)
    try:
        assert isinstance(env, StepLimit) and env.task_id == "jericho:zork1"
        assert env.max_steps == 3 and isinstance(env.env, JerichoEnv) and env.env.seed == 4
    finally:
        env.close()
    monkeypatch.setenv("JITRL_JERICHO_DIR", str(path.parent))
    named = make_env("jericho:zork1", max_steps=1, seed=1)
    named.close()


@pytest.mark.parametrize(
    "spec", ["", "jericho", "jericho:", "zork1", "textworld:x", "tw:1", "textworld:-1"]
)
def test_factory_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="valid forms"):
        make_env(spec, max_steps=5, seed=1)
