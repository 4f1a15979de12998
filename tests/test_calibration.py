"""The calibrated prior: how much the model is trusted, fitted from memory's evidence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.calibration import (
    REFIT_EVERY,
    PriorCalibration,
    Sample,
    evidence_values,
    fit_weight,
    sample_of,
)
from jitrl.method.config import JitRLConfig, PolicyConfig, ValueConfig
from jitrl.method.learner import JitRL
from jitrl.method.policy import corrected_logits
from jitrl.method.types import Experience, Neighbour, State
from jitrl.method.values import estimate


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


def test_evidence_values_are_the_returns_without_optimism_or_loops() -> None:
    neighbours = [Neighbour(Experience(State("s"), a, g, "e", 0), 1.0) for a, g in
                  [("wait", 0.5), ("wait", 0.5), ("go", 0.0)]]  # fmt: skip
    cands, looped = ["wait", "go", "jump"], {"wait": 2.0}
    values = ValueConfig(kind_prior=0.0)
    used = estimate(neighbours, cands, values, looped)
    judged = estimate(neighbours, cands, evidence_values(values), looped)
    assert used.q[0] == pytest.approx(0.5 - 2.0) and judged.q[0] == pytest.approx(0.5)
    assert used.q[2] > 1.0  # untried: the optimism of the correction
    assert judged.q[2] == pytest.approx(judged.v)  # untried: no better than the state
    assert judged.counts == used.counts


def _weight_after_loops(store: object, target: str) -> float:
    """The model prefers ``wait``, which paid 0.5 against ``go``'s 0 in this episode, but
    ``wait`` has looped three times here: judged with the loop penalty the model looks wrong."""
    policy = PolicyConfig(calibration_prior=0.0, calibration_target=target)  # type: ignore[arg-type]
    config = replace(JitRLConfig(), policy=policy, values=ValueConfig(kind_prior=0.0))
    jit = JitRL(store, config)  # type: ignore[arg-type]
    working = [Experience(State("s"), a, g, "e", t, "t") for t, (a, g) in
               enumerate([("wait", 0.5), ("go", 0.0)] * 3)]  # fmt: skip
    for _ in range(2 * REFIT_EVERY):
        jit.decide("s", ["wait", "go"], [0.0, -6.0], working=working, task_id="t",
                   looped={"wait": 3})  # fmt: skip
    return jit.calibration.weight("t")


def test_judged_on_evidence_a_model_is_not_blamed_for_its_loops(list_store) -> None:
    assert _weight_after_loops(list_store, "estimates") == pytest.approx(0.0, abs=1e-3)
    assert _weight_after_loops(list_store, "evidence") > 0.2
