"""Confidence intervals, learning curves and AUC (jitrl.analysis.stats)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from jitrl.analysis.stats import Interval, auc, curve_ci, final_window, mean_ci, window_means

scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(
    "values", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0], [0.5, -3.0, 7.25, 7.25, 10.0, 2.0]]
)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_mean_ci_matches_scipy(values, confidence):
    n = len(values)
    mean = statistics.fmean(values)
    low, high = sps.t.interval(confidence, n - 1, loc=mean, scale=sps.sem(values))
    iv = mean_ci(values, confidence)
    assert iv.n == n and iv.mean == pytest.approx(mean)
    assert (iv.low, iv.high) == pytest.approx((low, high))


def test_mean_ci_by_hand():
    # mean 3, s = sqrt(2.5), s / sqrt(5) = sqrt(0.5), t_{0.975, 4} = 2.776445105...
    iv = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(0.5)
    assert (iv.mean, iv.n) == (3.0, 5)
    assert (iv.low, iv.high) == pytest.approx((3.0 - half, 3.0 + half))
    assert iv.half_width == pytest.approx(half)
    assert iv.as_dict() == {"mean": 3.0, "low": iv.low, "high": iv.high, "n": 5}


def test_mean_ci_edge_cases():
    one = mean_ci([4.0])
    assert (one.mean, one.low, one.high, one.n, one.half_width) == (4.0, None, None, 1, None)
    assert one.as_dict() == {"mean": 4.0, "low": None, "high": None, "n": 1}
    same = mean_ci([2.0, 2.0, 2.0])
    assert (same.low, same.high, same.half_width) == (2.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_ci([])
    with pytest.raises(ValueError, match="non-finite"):
        mean_ci([1.0, float("nan")])
    for bad in (0.0, 1.0, 95):
        with pytest.raises(ValueError, match="confidence"):
            mean_ci([1.0, 2.0], bad)


def test_interval_rejects_inconsistent_bounds():
    with pytest.raises(ValueError):
        Interval(1.0, 0.0, None, 2)
    with pytest.raises(ValueError):
        Interval(1.0, 2.0, 0.0, 2)
    with pytest.raises(ValueError):
        Interval(1.0, None, None, 0)


@pytest.mark.parametrize(("confidence", "n"), [(0.95, 3), (0.95, 10), (0.8, 5)])
def test_coverage_of_normal_samples(confidence, n):
    rng = np.random.default_rng(12345)
    trials, mu = 3000, 3.0
    hits = 0
    for _ in range(trials):
        iv = mean_ci(rng.normal(mu, 2.0, size=n).tolist(), confidence)
        assert iv.low is not None and iv.high is not None
        hits += iv.low <= mu <= iv.high
    # Within four binomial standard errors (0.016 at 95%, 0.029 at 80%); the seed is fixed.
    se = math.sqrt(confidence * (1.0 - confidence) / trials)
    assert hits / trials == pytest.approx(confidence, abs=4 * se)


def test_curve_ci_uses_the_runs_that_reached_each_episode():
    curve = curve_ci([[1.0, 2.0, 3.0], [3.0, 4.0], [5.0]])
    assert [p.n for p in curve] == [3, 2, 1]
    assert [p.mean for p in curve] == pytest.approx([3.0, 3.0, 3.0])
    assert curve[0] == mean_ci([1.0, 3.0, 5.0])
    assert curve[2].low is None and curve[2].high is None
    assert curve_ci([]) == [] and curve_ci([[], []]) == []


def test_auc_of_constant_linear_and_single_point_curves():
    assert auc([4.0] * 7) == pytest.approx(4.0)
    assert auc([2.5]) == 2.5
    assert auc(list(range(11))) == pytest.approx(5.0)  # a line: the mean of its ends
    assert auc([0.0, 2.0, 4.0, 6.0]) == pytest.approx(9.0 / 3)
    assert auc([0.0, 10.0, 0.0]) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        auc([])


def test_window_means_pool_runs_per_block():
    assert window_means([[1, 2, 3, 4, 5], [3, 4]], 2) == [2.5, 3.5, 5.0]
    assert window_means([[1.0, 0.0, 1.0]], 5) == [pytest.approx(2 / 3)]
    assert window_means([], 3) == []
    with pytest.raises(ValueError, match="window"):
        window_means([[1.0]], 0)
    with pytest.raises(ValueError):
        window_means([[math.nan]], 1)


def test_final_window():
    assert final_window([1, 2, 3, 4, 5, 6], 2) == 5.5
    assert final_window([1, 2, 3], 5) == 2.0
    assert final_window([7.0], 1) == 7.0
    with pytest.raises(ValueError, match="window"):
        final_window([1.0], 0)
    with pytest.raises(ValueError):
        final_window([], 3)


@settings(deadline=None)  # the first scipy call can be slow
@given(st.lists(scores, min_size=1, max_size=40))
def test_interval_contains_its_mean(values):
    iv = mean_ci(values)
    assert iv.n == len(values)
    if len(values) < 2:
        assert iv.low is None and iv.high is None
    else:
        assert iv.low is not None and iv.high is not None
        assert iv.low <= iv.mean <= iv.high


@given(st.lists(scores, min_size=1, max_size=40))
def test_auc_lies_between_the_curve_extremes(curve):
    assert min(curve) <= auc(curve) <= max(curve)


@given(st.lists(scores, min_size=1, max_size=40), st.integers(min_value=1, max_value=50))
def test_final_window_lies_between_the_window_extremes(values, window):
    tail = values[-window:]
    assert min(tail) - 1e-6 <= final_window(values, window) <= max(tail) + 1e-6
