"""The calibrated prior: how much the model is trusted, fitted from memory's evidence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.method.calibration import REFIT_EVERY, PriorCalibration, Sample, fit_weight, sample_of
from jitrl.method.config import PolicyConfig
from jitrl.method.learner import JitRL
from jitrl.method.policy import corrected_logits


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
