import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.analysis.diagnosis import diagnose, load_rows, reading
from jitrl.method.types import Decision, Estimates, State
from jitrl.running.records import decision_record

CANDS = ("go north", "go south", "take lamp")


def _record(episode, step, action, reward, *, advantage, logits, weight=0.5, lead="model"):
    i = CANDS.index(action)
    adv = [0.0, 0.0, 0.0]
    adv[i] = advantage
    est = Estimates(q=tuple(adv), counts=(1, 1, 1), v=0.0, advantages=tuple(adv))
    decision = Decision(
        state=State(f"room {step}"),
        candidates=CANDS,
        base_logits=tuple(logits),
        neighbours=(),
        estimates=est,
        logits=tuple(logits),
        probs=(1 / 3, 1 / 3, 1 / 3),
        action=action,
        prior_weight=weight,
        lead=lead,
    )
    return decision_record(episode, step, decision, reward)


def _write(folder, records, gamma=None):
    folder.mkdir(exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "decisions.jsonl").write_text(lines)
    if gamma is not None:
        run = {"settings": {"method": {"returns": {"gamma": gamma}}}}
        (folder / "run.json").write_text(json.dumps(run))
    return folder


def _run(folder, *, memory_knows: bool, model_knows: bool, weight=0.05, episodes=20):
    """One-step episodes: ``take lamp`` pays 1, the rest 0. A source that 'knows' scores the
    action taken by its reward (plus noise); one that does not scores it at random."""
    rng = random.Random(7)
    records = []
    for ep in range(episodes):
        action = rng.choice(CANDS)
        reward = 1.0 if action == "take lamp" else 0.0
        knows = reward + rng.uniform(-0.3, 0.3)
        advantage = knows if memory_knows else rng.uniform(-1, 1)
        logits = [rng.uniform(-3, 0) for _ in CANDS]
        logits[CANDS.index(action)] = (knows if model_knows else rng.uniform(-1, 1)) * 3 - 3
        records.append(
            _record(ep, 0, action, reward, advantage=advantage, logits=logits, weight=weight)
        )
    return _write(folder, records)


def test_memory_that_predicts_outcomes_is_credited(tmp_path):
    windows, later = diagnose(_run(tmp_path, memory_knows=True, model_knows=False), window=10)
    assert [(w.first, w.last, w.decisions) for w in windows] == [(0, 9, 10), (10, 19, 10)]
    assert later.memory_rho is not None and later.memory_rho > 0.7
    assert later.model_rho is not None and abs(later.model_rho) < later.memory_rho
    assert later.model_weight == pytest.approx(0.05)
    assert reading(later).startswith("Memory predicted outcomes better")


def test_a_model_that_predicts_outcomes_but_lost_its_weight_is_flagged(tmp_path):
    _, later = diagnose(_run(tmp_path, memory_knows=False, model_knows=True), window=5)
    assert later.model_rho is not None and later.model_rho > 0.7
    assert "larger beta" in reading(later)
    _, trusted = diagnose(
        _run(tmp_path / "b", memory_knows=False, model_knows=True, weight=0.9), window=5
    )
    assert "larger beta" not in reading(trusted)
    assert reading(trusted).startswith("The model predicted outcomes at least as well")


def test_realised_advantage_is_the_discounted_return_minus_v(tmp_path):
    recs = [
        _record(0, 0, "go north", 0.0, advantage=0.1, logits=(0, -1, -2)),
        _record(0, 1, "go south", 0.0, advantage=0.2, logits=(0, -1, -2)),
        _record(0, 2, "take lamp", 1.0, advantage=0.3, logits=(0, -1, -2)),
    ]
    recs[0]["v"] = 0.25
    rows = load_rows(_write(tmp_path, recs, gamma=0.5))
    assert [r.realised for r in rows] == pytest.approx([0.0, 0.5, 1.0])
    assert [r.off_model for r in rows] == [False, True, True]


def test_a_uniform_model_has_no_preferences_to_judge(tmp_path):
    rng = random.Random(1)
    recs = [
        _record(ep, 0, a, float(a == "take lamp"), advantage=rng.random(), logits=(0, 0, 0))
        for ep, a in enumerate(rng.choice(CANDS) for _ in range(30))
    ]
    windows, later = diagnose(_write(tmp_path, recs), window=10)
    assert all(w.model_rho is None and w.off_model is None for w in windows)
    assert reading(later).startswith("No model preferences to judge")


def test_decisions_without_memory_are_left_out_and_few_are_not_judged(tmp_path):
    rec = _record(0, 0, "take lamp", 1.0, advantage=0.5, logits=(0, -1, -2))
    bare = dict(rec, v=None, advantages=None, q=None, counts=None)
    windows, later = diagnose(_write(tmp_path, [bare, rec]), window=1)
    assert windows[0].decisions == 1 and windows[0].memory_rho is None
    assert later.decisions == 0
    assert reading(later).startswith("Too few decisions")


def test_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"decisions\.jsonl"):
        diagnose(tmp_path)
    (tmp_path / "decisions.jsonl").write_text('{"episode": 0, "step": 0}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"decisions.jsonl:2: not a decision record"):
        diagnose(tmp_path)
    with pytest.raises(ValueError, match="window"):
        diagnose(tmp_path, window=0)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from(CANDS), st.floats(-1, 1)),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 12),
)
def test_windows_cover_every_judged_decision_once(tmp_path_factory, steps, window):
    recs = [
        _record(ep, i, a, float(a == "take lamp"), advantage=x, logits=(x, 0, -x))
        for i, (ep, a, x) in enumerate(steps)
    ]
    folder = _write(tmp_path_factory.mktemp("d"), recs)
    windows, later = diagnose(folder, window=window)
    assert sum(w.decisions for w in windows) == len(recs)
    assert later.decisions == sum(1 for ep, _, _ in steps if ep >= window)
    assert all(w.last - w.first + 1 == window for w in windows)
    for w in windows:
        for rho in (w.memory_rho, w.model_rho):
            assert rho is None or -1.0 <= rho <= 1.0


def test_a_habit_shows_as_the_commonest_kind_and_its_share(tmp_path):
    """Seven of ten decisions of the second window go north: ``go`` 70 %; the first window
    takes the lamp every time."""
    records = [
        _record(0, step, "take lamp", 0.0, advantage=0.1, logits=[0.0, -1.0, -2.0])
        for step in range(10)
    ]
    actions = ["go north"] * 7 + ["take lamp"] * 3
    records += [
        _record(1, step, a, 0.0, advantage=0.1, logits=[0.0, -1.0, -2.0])
        for step, a in enumerate(actions)
    ]
    windows, later = diagnose(_write(tmp_path, records), window=1)
    assert [(w.top_kind, w.top_share) for w in windows] == [("take", 1.0), ("go", 0.7)]
    assert (later.top_kind, later.top_share) == ("go", 0.7)


def test_the_share_of_memory_led_decisions_is_shown_per_window(tmp_path):
    """Episode 1 is led by memory (flat logits, weight 0): half of the second window's
    decisions; a record written before leads were kept counts as model-led."""
    flat = [0.0, 0.0, 0.0]
    records = [
        _record(0, s, "take lamp", 0.0, advantage=0.1, logits=[0.0, -1.0, -2.0]) for s in range(4)
    ]
    records += [
        _record(1, s, "go north", 0.0, advantage=0.1, logits=flat, weight=0.0, lead="memory")
        for s in range(4)
    ]
    records += [
        _record(2, s, "go north", 0.0, advantage=0.1, logits=[0.0, -1.0, -2.0]) for s in range(4)
    ]
    del records[0]["lead"]
    windows, later = diagnose(_write(tmp_path, records), window=2)
    assert [w.memory_led for w in windows] == [0.5, 0.0]
    assert later.memory_led == 0.0
    # the model's weight where it led: memory-led episodes (weight 0 by design) would make a
    # model that the calibration trusts look ignored, and the reading advise a larger beta
    assert windows[0].model_weight == 0.5
