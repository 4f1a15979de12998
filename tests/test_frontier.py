from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.config import JitRLConfig, PolicyConfig, ValueConfig
from jitrl.method.frontier import Step, distances, ways_back
from jitrl.method.learner import JitRL
from jitrl.method.types import State

DEAD_END = ["look", "inventory", "go east"]
HALL = ["go west", "go east"]


def test_the_way_out_of_a_dead_end_is_a_way_back():
    # hall --go west--> dead end; everything in the dead end was tried
    steps = [
        Step("hall", HALL, "go west"),
        Step("end", DEAD_END, "look"),
        Step("end", DEAD_END, "inventory"),
        Step("end", DEAD_END, "go east"),
        Step("hall", HALL, "go west"),
    ]
    assert distances(steps, "end", DEAD_END) == {"hall": 0, "end": 1}
    assert ways_back(steps, "end", DEAD_END) == {"go east"}


def test_nothing_is_a_way_back_on_the_frontier_or_without_a_known_way():
    steps = [Step("hall", HALL, "go west"), Step("end", DEAD_END, "look")]
    assert ways_back(steps, "end", DEAD_END) == set()  # untried actions here come first
    tried = [Step("end", ["look"], "look")]
    assert ways_back(tried, "end", ["look"]) == set()  # nowhere left to go
    assert ways_back([], "start", ["a"]) == set()


def test_an_action_no_longer_offered_is_not_a_way_back():
    steps = [
        Step("hall", HALL, "go west"),
        Step("end", DEAD_END, "go east"),
        Step("hall", HALL, "go west"),
    ]
    # the door closed behind: "go east" is not offered now
    assert ways_back(steps, "end", ["look"]) == set()


def test_the_shortest_way_is_kept_and_a_longer_one_is_not():
    # a -> b -> c (c has untried actions); a -> d -> a is a cycle
    steps = [
        Step("a", ["to b", "to d"], "to d"),
        Step("d", ["to a"], "to a"),
        Step("a", ["to b", "to d"], "to b"),
        Step("b", ["to c", "to a"], "to a"),
        Step("a", ["to b", "to d"], "to b"),
        Step("b", ["to c", "to a"], "to c"),
        Step("c", ["to b", "dig"], "to b"),
    ]
    assert distances(steps, "b", ["to c", "to a"])["c"] == 0
    assert ways_back(steps, "b", ["to c", "to a"]) == {"to c"}
    assert ways_back(steps, "a", ["to b", "to d"]) == {"to b"}


STATES = st.sampled_from("abcde")
ACTIONS = st.sampled_from(["n", "s", "e", "w"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(STATES, st.lists(ACTIONS, min_size=1, max_size=4, unique=True), ACTIONS),
        max_size=25,
    ),
    STATES,
)
def test_following_ways_back_never_cycles_and_ends_on_the_frontier(raw, start):
    steps = [Step(s, tuple(c) if a in c else (*c, a), a) for s, c, a in raw]
    offers = {s.state: s.candidates for s in steps}
    here, seen = start, set()
    current = offers.get(here, ("n",))
    while (back := ways_back(steps, here, current)) and here not in seen:
        seen.add(here)
        action = sorted(back)[0]
        dest = [
            steps[t + 1].state if t + 1 < len(steps) else here
            for t, s in enumerate(steps)
            if s.state == here and s.action == action
        ][-1]
        assert distances(steps, here, current)[dest] < distances(steps, here, current)[here]
        here, current = dest, offers.get(dest, ("n",))
    assert here not in seen  # no state is left by a way back twice: no cycle


def _dead_end_run(store, frontier: bool) -> list[str]:
    """A hall with the goal to the east and a dead end to the west that the model prefers; in
    the dead end the model likes looking around better than leaving."""
    values = ValueConfig(alpha=0.0, kind_backoff=False, kind_prior=0.0, loop_frontier=frontier)
    config = replace(JitRLConfig(), values=values, policy=PolicyConfig(pace="calibrated"))
    ep = JitRL(store, config).episode("t", "dead end")
    where, path = "hall", []
    for _ in range(30):
        cands, logits = (HALL, [0.0, -2.0]) if where == "hall" else (DEAD_END, [0.0, 0.0, -2.0])
        d = ep.decide(State(f"you are in the {where}"), cands, logits=logits)
        path.append(f"{where}:{d.action}")
        if where == "hall" and d.action == "go east":
            break
        where = {"go west": "end", "go east": "hall"}.get(d.action, where)
        ep.reward(0.0)
    return path


def test_a_dead_end_is_left_sooner_when_the_way_back_is_not_a_loop(list_store):
    off, on = _dead_end_run(list_store, frontier=False), _dead_end_run(list_store, frontier=True)
    assert on[-1] == "hall:go east" and off[-1] == "hall:go east"  # both reach the goal
    assert len(on) < len(off)
    assert not ValueConfig().loop_frontier  # off by default (BENCHMARKS.md)
