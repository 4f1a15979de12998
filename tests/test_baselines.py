"""The non-LLM baselines: random choice and tabular Q-learning with a resumable table."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitrl.agents.baselines import QLearnAgent, QLearnConfig, RandomAgent
from jitrl.envs.base import BaseTextEnv, StepInfo
from jitrl.memory import open_store
from jitrl.method.types import State
from jitrl.running.loop import run_episode

ACTIONS = ["go left", "go right", "wait", "jump"]


class ChainEnv(BaseTextEnv):
    """Rooms 0..length: ``go right`` advances, ``go left`` goes back, ``wait`` stays, ``jump``
    kills. Reaching the last room wins 10 points; episodes stop after ``max_steps``."""

    task_id = "chain"

    def __init__(self, length: int = 4, max_steps: int = 12) -> None:
        self.length = length
        self.max_steps = max_steps
        self.pos = self.steps = 0

    def _info(self, *, won: bool = False, lost: bool = False) -> StepInfo:
        return self._remember(
            StepInfo(
                state=State(f"room {self.pos}", key=f"room{self.pos}"),
                candidates=() if won or lost else tuple(ACTIONS),
                score=10.0 if won else 0.0,
                won=won,
                lost=lost,
            )
        )

    def reset(self, *, seed: int | None = None, fold: str = "train") -> tuple[str, StepInfo]:
        self.pos = self.steps = 0
        return "room 0", self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, StepInfo]:
        self.steps += 1
        if action == "jump":
            return "you die", 0.0, True, False, self._info(lost=True)
        self.pos = max(0, self.pos + {"go left": -1, "go right": 1, "wait": 0}[action])
        won = self.pos == self.length
        truncated = self.steps >= self.max_steps and not won
        return f"room {self.pos}", 10.0 if won else 0.0, won, truncated, self._info(won=won)

    def close(self) -> None:
        pass


def play(agent: Any, episodes: int, env: ChainEnv | None = None, start: int = 0) -> list[bool]:
    """Play ``episodes`` episodes through the real episode loop; returns which were won."""
    env = env or ChainEnv()
    won = []
    for i in range(start, start + episodes):
        result, _ = run_episode(env, agent, index=i, seed=i, episode_id=f"ep{i}")
        won.append(result.won)
    return won


def info(state: State, candidates: list[str]) -> StepInfo:
    return StepInfo(state=state, candidates=tuple(candidates))


def test_random_is_uniform_reproducible_and_picks_candidates() -> None:
    cands = ["a", "b", "c", "d"]
    agent = RandomAgent(seed=3)
    agent.begin("t", "e")
    decisions = [agent.act("obs", info(State("s"), cands), None) for _ in range(4000)]
    counts = Counter(d.action for d in decisions)
    assert set(counts) == set(cands)
    assert all(850 < n < 1150 for n in counts.values())  # 1000 expected, sd about 27
    d = decisions[0]
    assert d.probs == (0.25,) * 4 and d.logits == d.base_logits == (0.0,) * 4
    assert d.estimates is None and d.neighbours == () and d.llm_seconds == 0.0
    again = RandomAgent(seed=3)
    assert [again.act("o", info(State("s"), cands), None).action for _ in range(50)] == [
        x.action for x in decisions[:50]
    ]
    other = RandomAgent(seed=4)
    assert [other.act("o", info(State("s"), cands), None).action for _ in range(50)] != [
        x.action for x in decisions[:50]
    ]
    agent.reward(1.0)
    agent.end(failed=False)
    assert agent.memory_size() == 0 and agent.name == "random"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_qlearn_learns_the_chain_and_random_does_not(list_store: Any, seed: int) -> None:
    qlearn = QLearnAgent(list_store, seed=seed)
    learnt = play(qlearn, 40)
    assert True in learnt[:15] and all(learnt[-15:]), learnt  # then the goal, every time
    rand = play(RandomAgent(seed=seed), 40)
    assert sum(rand) < sum(learnt) and sum(rand[-10:]) < 10
    path = [State(f"room {i}", key=f"room{i}") for i in range(4)]
    for s in path:  # "go right" is the best action in every room, worth gamma^k * 10
        best = max(ACTIONS, key=lambda a, s=s: qlearn.q_value(s, a))
        assert best == "go right"
    assert qlearn.q_value(path[3], "go right") == pytest.approx(10.0, abs=1e-3)
    assert qlearn.q_value(path[0], "jump") <= 0.0  # death: 10 + 0.5 * (0 - 10 - 10) at most
    assert len(list_store.episodes) == 40 and qlearn.memory_size() == 16


def test_update_matches_hand_computation() -> None:
    cfg = QLearnConfig(learning_rate=0.5, gamma=0.9, optimistic_value=10.0, terminal_penalty=4.0)
    agent = QLearnAgent(None, cfg, seed=0)
    s0, s1 = State("room 0", key="k0"), State("room 1", key="k1")
    agent.begin("t", "e1")
    d0 = agent.act("", info(s0, ["a"]), None)
    assert d0.action == "a" and d0.logits == (10.0,) and d0.probs == (1.0,)
    agent.reward(2.0)
    agent.act("", info(s1, ["b", "c"]), None)  # s1 untried: bootstrap is 10
    assert agent.q_value(s0, "a") == pytest.approx(10 + 0.5 * (2 + 0.9 * 10 - 10))  # 10.5
    agent.reward(1.0)
    agent.end(failed=True)  # terminal: target 1 - 4 = -3
    (taken,) = [a for a in ("b", "c") if (s1.identity, a) in agent.table]
    assert agent.q_value(s1, taken) == pytest.approx(10 + 0.5 * (-3 - 10))  # 3.5
    agent.begin("t", "e2")
    d = agent.act("", info(s0, ["a", "z"]), None)
    assert d.logits == (10.5, 10.0) and d.action == "a" and d.probs == (1.0, 0.0)
    agent.reward(0.0)
    other = "c" if taken == "b" else "b"
    d = agent.act("", info(s1, [taken, other]), None)
    assert d.action == other  # untried (10) beats the tried 3.5; bootstrap max is 10
    assert agent.q_value(s0, "a") == pytest.approx(10.5 + 0.5 * (0 + 0.9 * 10 - 10.5))
    assert agent.memory_size() == 2  # (s0, a) and (s1, taken); (s1, other) awaits its reward
    agent.reward(5.0)
    agent.end(failed=False)  # terminal, no penalty: target 5
    assert agent.q_value(s1, other) == pytest.approx(10 + 0.5 * (5 - 10))
    assert agent.memory_size() == 3


def test_ties_are_broken_at_random_and_seeded() -> None:
    def firsts(seed: int) -> list[str]:
        agent = QLearnAgent(None, seed=seed)
        out = []
        for i in range(40):
            agent.begin("t", f"e{i}")
            out.append(agent.act("", info(State(f"s{i}"), ["a", "b", "c"]), None).action)
        return out

    assert firsts(5) == firsts(5) and len(set(firsts(5))) == 3


def test_resume_from_sqlite_rebuilds_the_same_table(tmp_path: Any) -> None:
    path = tmp_path / "m.sqlite"
    agent = QLearnAgent(open_store(path), seed=2)
    play(agent, 12)
    table = agent.table
    agent.close()
    resumed = QLearnAgent(open_store(path), seed=99)
    assert resumed.table == table  # exactly, not approximately
    play(resumed, 6, start=12)  # carries on: more episodes, same store
    resumed.close()
    again = QLearnAgent(open_store(path))
    assert again.table == resumed.table and len(again.table) > 0
    stored = list(open_store(path))
    assert len({e.episode_id for e in stored}) == 18
    first = [e for e in stored if e.episode_id == "ep0"]
    assert [e.step for e in first] == list(range(len(first)))
    assert first[0].task_id == "chain" and first[-1].ret == first[-1].reward
    again.close()


def test_stored_returns_and_rewards() -> None:
    from tests.conftest import ListStore

    store = ListStore()
    agent = QLearnAgent(store, QLearnConfig(gamma=0.5, terminal_penalty=3.0))
    agent.begin("task", "e")
    for t, r in enumerate([0.0, 4.0, 2.0]):
        agent.act("", info(State(f"s{t}"), ["a"]), None)
        agent.reward(r)
    agent.end(failed=True)
    assert [e.reward for e in store.items] == [0.0, 4.0, -1.0]  # the loss costs 3
    assert [e.ret for e in store.items] == [1.75, 3.5, -1.0]
    assert {e.task_id for e in store.items} == {"task"}


def test_a_refused_episode_leaves_the_table_as_before(list_store: Any) -> None:
    agent = QLearnAgent(list_store, seed=0)
    play(agent, 3)
    before = agent.table
    with pytest.raises(AssertionError):  # ListStore refuses a duplicate episode id
        play(agent, 1, start=1)
    assert agent.table == before


def test_protocol_misuse_and_config_validation() -> None:
    agent = QLearnAgent(None)
    with pytest.raises(RuntimeError):
        agent.act("", info(State("s"), ["a"]), None)
    agent.begin("t", "e")
    with pytest.raises(RuntimeError):
        agent.reward(1.0)
    with pytest.raises(ValueError):
        agent.act("", info(State("s"), []), None)
    agent.act("", info(State("s"), ["a"]), None)
    with pytest.raises(ValueError):
        agent.reward(float("nan"))
    agent.end(failed=False)  # no reward given: counts as 0
    assert agent.q_value(State("s"), "a") == pytest.approx(5.0)
    for bad in (
        {"learning_rate": 0.0},
        {"learning_rate": 1.5},
        {"gamma": -0.1},
        {"gamma": 1.1},
        {"optimistic_value": float("inf")},
        {"terminal_penalty": -1.0},
    ):
        with pytest.raises(ValueError):
            QLearnConfig(**bad)


def test_text_is_the_state_when_there_is_no_key() -> None:
    assert State("hall", None).identity != State("x", "hall").identity
    assert State("hall", "k").identity == State("other text", "k").identity


episode_steps = st.lists(
    st.tuples(
        st.integers(0, 3),  # state
        st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True),  # candidates
        st.floats(-1.0, 1.0),  # reward
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    episodes=st.lists(st.tuples(episode_steps, st.booleans()), min_size=1, max_size=6),
    gamma=st.floats(0.0, 0.95),
    lr=st.floats(0.01, 1.0),
    optimistic=st.floats(0.0, 30.0),
    penalty=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
)
def test_values_stay_bounded_and_replay_is_exact(
    episodes: list[tuple[list[tuple[int, list[str], float]], bool]],
    gamma: float,
    lr: float,
    optimistic: float,
    penalty: float,
    seed: int,
) -> None:
    from tests.conftest import ListStore

    cfg = QLearnConfig(lr, gamma, optimistic, penalty)
    store = ListStore()
    agent = QLearnAgent(store, cfg, seed=seed)
    for n, (steps, failed) in enumerate(episodes):
        agent.begin("t", f"e{n}")
        for s, cands, r in steps:
            agent.act("", info(State(f"s{s}", key=str(s)), cands), None)
            agent.reward(r)
        agent.end(failed=failed)
    low = min(optimistic, (-1.0 - penalty) / (1.0 - gamma))
    high = max(optimistic, 1.0 / (1.0 - gamma))
    assert all(low - 1e-9 <= q <= high + 1e-9 for q in agent.table.values())
    assert QLearnAgent(store, cfg, seed=seed + 1).table == agent.table


class FlakyEnv(ChainEnv):
    """The chain, whose page times out at the given step of every episode (a web failure)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        from jitrl.envs.errors import WebTimeoutError

        if self.steps + 1 == self.fail_at:
            self.steps += 1
            raise WebTimeoutError("page timed out")
        return super().step(action)


def test_an_environment_failure_ends_the_episode_as_lost_and_is_learnt_from(list_store):
    agent = QLearnAgent(list_store, seed=1)
    env = FlakyEnv(fail_at=3)
    result, trace = run_episode(env, agent, index=0, seed=1, episode_id="e0")
    assert result.lost and not result.won and result.error == "page timed out"
    assert result.steps == 3 and len(trace) == 3
    assert len(list_store) == 3  # what was played is stored
    result, _ = run_episode(env, agent, index=1, seed=2, episode_id="e1")  # the run goes on
    assert result.index == 1 and 1 <= result.steps <= 3
