import json
import math

import pytest

from jitrl.analysis.explain import base_probabilities, explain, explain_text, load_decision
from jitrl.method.types import Decision, Estimates, Experience, Neighbour, State
from jitrl.running.records import decision_record

CANDS = ("go north", "go south", "take [lamp]")


def _decision(action: str = "go south", memory: bool = True) -> Decision:
    nbs = (
        Neighbour(Experience(State("dark room"), "go north", -10.0, "ep-a", 3, "zork1"), 0.8),
        Neighbour(Experience(State("dark room!"), "go south", 4.0, "ep-b", 5, "zork2"), 0.95),
    )
    est = Estimates(q=(-10.0, 4.0, 6.0), counts=(1, 1, 0), v=-2.5, advantages=(-7.5, 6.5, 8.5))
    return Decision(
        state=State("dark room, lamp on floor", "k1"),
        candidates=CANDS,
        base_logits=(0.0, -1.0, -2.0),
        neighbours=nbs if memory else (),
        estimates=est if memory else None,
        logits=(-15.0, 12.0, 15.0) if memory else (0.0, -1.0, -2.0),
        probs=(0.0, 0.04743, 0.95257) if memory else (0.66524, 0.24473, 0.09003),
        action=action,
        proposed=("take [lamp]",) if memory else (),
    )


@pytest.fixture
def run_dir(tmp_path):
    lines = [
        decision_record(0, 0, _decision(memory=False), 0.0),
        decision_record(0, 1, _decision(memory=False), 1.0),
        decision_record(1, 0, _decision("take [lamp]"), 0.0),
        decision_record(3, 0, _decision(), 0.0),
    ]
    (tmp_path / "decisions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return tmp_path


def test_records_carry_the_neighbour_task():
    rec = decision_record(0, 0, _decision(), 0.0)
    assert [n["task_id"] for n in rec["neighbours"]] == ["zork1", "zork2"]


def test_load_decision_finds_the_record(run_dir):
    rec = load_decision(run_dir, 1, 0)
    assert (rec["episode"], rec["step"], rec["action"]) == (1, 0, "take [lamp]")
    assert load_decision(run_dir, 0, 1)["reward"] == 1.0


def test_missing_file_names_it_and_hints_at_compare_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_decision(tmp_path, 0, 0)
    assert str(tmp_path / "decisions.jsonl") in str(e.value)
    assert "runs/<env>/<agent>/seed<S>/" in str(e.value)


def test_unknown_episode_lists_the_episodes(run_dir):
    with pytest.raises(LookupError, match=r"episode 2 .*episodes present: 0-1, 3"):
        load_decision(run_dir, 2, 0)


def test_unknown_step_says_how_many_steps(run_dir):
    with pytest.raises(LookupError, match=r"episode 0 has 2 steps .*steps 0-1.*no step 7"):
        load_decision(run_dir, 0, 7)


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '{"episode": 0}'])
def test_malformed_line_names_file_and_line(run_dir, bad):
    path = run_dir / "decisions.jsonl"
    good = path.read_text().splitlines()
    path.write_text("\n".join([good[0], "", bad, *good[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"decisions\.jsonl:3: "):
        load_decision(run_dir, 3, 0)
    assert load_decision(run_dir, 0, 0)["step"] == 0  # found before the bad line


def test_base_probabilities():
    p = base_probabilities([0.0, -1.0, -2.0])
    e = [1.0, math.exp(-1.0), math.exp(-2.0)]
    assert p == pytest.approx([x / sum(e) for x in e])
    assert sum(p) == pytest.approx(1.0)
    big = base_probabilities([1000.0, 1000.0])  # stable: no overflow
    assert big == pytest.approx([0.5, 0.5])
    assert base_probabilities([]) == []


def test_explain_text_shows_candidates_neighbours_and_reading(run_dir):
    text = explain_text(load_decision(run_dir, 1, 0))
    assert "Episode 1, step 0" in text and "dark room, lamp on floor" in text
    assert "Chosen: take [lamp]" in text  # rich markup in actions is not eaten
    for action in CANDS:
        assert action in text
    for prob in ("0.665", "0.245", "0.090", "0.047", "0.953"):  # base and corrected
        assert prob in text
    assert "memory-proposed" in text and "chosen" in text
    assert "zork1" in text and "ep-b/5" in text and "0.950" in text
    assert "V(s) = -2.500 over 2 neighbours" in text
    assert "Memory raised 'take [lamp]' from 0.090 to 0.953" in text
    lines = text.splitlines()  # sorted by corrected probability / similarity
    row = next(i for i, s in enumerate(lines) if "take [lamp]" in s and "chosen" in s)
    assert row < next(i for i, s in enumerate(lines) if s.lstrip().startswith("go north"))
    assert text.index("ep-b/5") < text.index("ep-a/3")


def test_no_memory_reading(run_dir):
    rec = load_decision(run_dir, 0, 0)
    assert rec["q"] is None
    text = explain_text(rec)
    assert "No memory: the LLM's choice." in text
    assert "No neighbours retrieved." in text
    assert "go south" in text


def test_explain_returns_a_renderable_and_tolerates_old_records(run_dir):
    rec = load_decision(run_dir, 3, 0)
    for nb in rec["neighbours"]:
        del nb["task_id"]  # runs written before neighbours carried their task
    assert explain(rec).renderables
    assert "ep-a/3" in explain_text(rec)
