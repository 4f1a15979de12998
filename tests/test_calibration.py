"""The calibrated prior: how much the model is trusted, fitted from memory's evidence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.calibration import (
    REFIT_EVERY,
    Outcome,
    PriorCalibration,
    Sample,
    fit_trust,
    fit_weight,
    mix,
    sample_of,
)
from jitrl.method.config import JitRLConfig, PolicyConfig
from jitrl.method.learner import JitRL
from jitrl.method.policy import corrected_logits
from tests.conftest import ListStore


def _samples(correlation: float, n: int = 300, width: int = 5, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q = rng.normal(size=width)
        z = correlation * q + 0.3 * rng.normal(size=width)
        out.append(Sample(tuple(z), tuple(q)))
    return out


def test_a_model_that_prefers_what_fails_loses_its_weight() -> None:
    assert fit_weight(_samples(-1.0), beta=0.3) == pytest.approx(0.0, abs=1e-3)
    assert fit_weight(_samples(0.0), beta=0.3) < 0.2  # noise: hardly trusted


def test_a_model_that_agrees_with_memory_keeps_it() -> None:
    assert fit_weight(_samples(1.0), beta=0.3) > 0.9


def test_no_evidence_keeps_the_model() -> None:
    assert fit_weight([], beta=0.3) == 1.0
    assert sample_of([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [1, 0, 0]) is None  # one seen candidate
    sample = sample_of([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [1, 0, 4])
    assert sample == Sample((0.0, 2.0), (1.0, 3.0))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-50, 50), min_size=2, max_size=6).flatmap(
            lambda z: st.tuples(
                st.just(z), st.lists(st.floats(-10, 10), min_size=len(z), max_size=len(z))
            )
        ),
        min_size=1,
        max_size=20,
    ),
    st.floats(0.05, 5.0),
)
def test_the_weight_is_always_in_the_unit_interval(rows, beta) -> None:
    samples = [Sample(tuple(z), tuple(q)) for z, q in rows]
    assert 0.0 <= fit_weight(samples, beta) <= 1.0


def test_the_fit_is_shrunk_towards_the_model_and_kept_per_task() -> None:
    calibration = PriorCalibration(PolicyConfig(calibration_prior=20.0))
    bad = _samples(-1.0, n=REFIT_EVERY * 4)
    weights = [calibration.observe("task-a", s) for s in bad]
    assert weights[0] == 1.0 and weights[-1] < 0.5  # evidence accumulates, trust drops
    assert weights[-1] > 0.0  # 40 decisions against 20 of prior trust: not yet 0
    assert calibration.weight("task-b") == 1.0  # another task keeps its own weight
    off = PriorCalibration(PolicyConfig(calibrate=False))
    assert all(off.observe("t", s) == 1.0 for s in bad)


def test_the_tempered_update_interpolates_between_model_and_memory() -> None:
    z, a = [2.0, 0.0], [0.0, 1.0]
    assert list(corrected_logits(z, a, beta=0.5, prior_weight=1.0)) == [2.0, 2.0]
    assert list(corrected_logits(z, a, beta=0.5, prior_weight=0.0)) == [0.0, 2.0]
    with pytest.raises(ValueError, match="prior_weight"):
        corrected_logits(z, a, beta=0.5, prior_weight=1.5)


def test_a_learner_stops_following_a_model_that_keeps_failing(list_store) -> None:
    jit = JitRL(list_store, None)
    cands = ["jump off the cliff", "climb down", "wait"]
    for i in range(60):  # the model always likes jumping; jumping always fails
        with jit.episode("cliff", f"e{i}") as ep:
            d = ep.decide("a cliff edge", cands, logits=[0.0, -6.0, -6.0])
            ep.reward(1.0 if d.action == "climb down" else -1.0)
    d = jit.decide("a cliff edge", cands, logits=[0.0, -6.0, -6.0], task_id="cliff")
    assert d.prior_weight < 0.5 and d.action == "climb down"


def test_a_parallel_worker_fits_the_weight_within_each_episode() -> None:
    # a worker's earlier episodes depend on scheduling; a run's decisions must not
    for shared, kept in ((True, False), (False, True)):
        jit = JitRL(None, None, shared=shared)
        for sample in _samples(-1.0, n=REFIT_EVERY * 4):
            jit.calibration.observe("task", sample)
        assert jit.calibration.weight("task") < 1.0
        jit.episode("task")
        assert (jit.calibration.weight("task") < 1.0) == kept


def test_trust_keeps_falling_after_the_window_is_full() -> None:
    # shrinking against the window alone left a floor of prior / (window + prior)
    window, prior = 50, 20.0
    calibration = PriorCalibration(PolicyConfig(calibration_prior=prior, calibration_window=window))
    weights = [calibration.observe("task", s) for s in _samples(-1.0, n=REFIT_EVERY * 50)]
    assert weights[-1] < 0.5 * prior / (window + prior)
    assert weights[-1] < weights[window + REFIT_EVERY]  # evidence beyond the window counts


def _outcomes(model_right: bool, n: int = 200, seed: int = 0) -> list[Outcome]:
    """Decisions where one source prefers the good action and the other a bad one; the action
    taken alternates between the two preferences."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        good, bad = 0, 1
        pro, con = (0.0, -2.0), (-2.0, 0.0)  # logits for the good action / for the bad one
        z, m = (pro, con) if model_right else (con, pro)
        taken = t % 2
        advantage = (1.0 if taken == good else -1.0) + 0.1 * rng.normal()
        out.append(Outcome(z, m, taken if taken == good else bad, advantage))
    return out


def test_outcomes_move_trust_to_the_source_whose_choices_did_better() -> None:
    assert fit_trust(_outcomes(model_right=True)) > 1.5  # memory tempered
    assert fit_trust(_outcomes(model_right=False)) < 0.5  # model tempered
    assert fit_trust([]) == 1.0
    alike = [Outcome((0.0, -2.0), (-2.0, 0.0), t % 2, 0.5) for t in range(20)]
    assert fit_trust(alike) == 1.0  # outcomes that do not differ say nothing
    assert mix(0.4) == (0.4, 1.0) and mix(1.5) == (1.0, 0.5) and mix(1.0) == (1.0, 1.0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.floats(-20, 20), min_size=3, max_size=3),
            st.lists(st.floats(-20, 20), min_size=3, max_size=3),
            st.integers(0, 2),
            st.floats(-5, 5),
        ),
        max_size=15,
    )
)
def test_the_trust_is_always_on_the_grid(rows) -> None:
    trust = fit_trust([Outcome(tuple(z), tuple(m), i, r) for z, m, i, r in rows])
    assert 0.0 <= trust <= 1.95 and 0.05 <= mix(trust)[1] <= 1.0


def test_the_outcome_fit_reads_episodes_only_and_is_shrunk() -> None:
    config = PolicyConfig(calibrate_from="outcomes", calibration_prior=20.0)
    calibration = PriorCalibration(config)
    for sample in _samples(-1.0, n=REFIT_EVERY * 4):
        calibration.observe("t", sample)  # memory's Q is not read in this mode
    assert calibration.trust("t") == 1.0
    calibration.observe_outcomes("t", _outcomes(model_right=True, n=40))
    fitted = fit_trust(_outcomes(model_right=True, n=40))
    assert calibration.trust("t") == pytest.approx((40 * fitted + 20.0) / 60.0)
    assert calibration.weight("t") == 1.0 and calibration.memory_weight("t") < 1.0
    assert calibration.trust("other") == 1.0
    by_memory = PriorCalibration(PolicyConfig(calibrate_from="memory"))
    assert by_memory.observe_outcomes("t", _outcomes(model_right=True)) == 1.0


def _simon(jit: JitRL, episodes: int = 80) -> list[bool]:
    """Do what the instruction says, with things never named twice: the states are neighbours
    and memory pools outcomes that depend on the instruction, while the model reads it (1 nat
    for the right action). Returns which episodes were won."""
    rng, wins = np.random.default_rng(0), []
    for i in range(episodes):
        a, b = rng.choice(200, 2, replace=False)
        cands = [f"smell the fruit{a}", f"eat the fruit{b}"][:: 1 if rng.random() < 0.5 else -1]
        target = int(rng.integers(2))
        state = f"task: do what simon says | room: a kitchen with a table | says: {cands[target]}"
        with jit.episode("simon", f"e{i}") as ep:
            d = ep.decide(state, cands, logits=[float(j == target) for j in range(2)])
            ep.reward(1.0 if d.index == target else -1.0)
        wins.append(d.index == target)
    return wins


def test_a_learner_tempers_memory_that_overrides_a_model_that_is_right() -> None:
    outcomes = JitRL(ListStore(), JitRLConfig(policy=PolicyConfig(calibrate_from="outcomes")))
    assert sum(_simon(outcomes)[-20:]) == 20
    assert outcomes.calibration.memory_weight("simon") < 0.5
    for policy in (PolicyConfig(calibrate_from="memory"), PolicyConfig(calibrate=False)):
        wins = _simon(JitRL(ListStore(), JitRLConfig(policy=policy)))
        assert sum(wins[-20:]) <= 10, policy  # the case the outcome fit is for
