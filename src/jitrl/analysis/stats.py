"""Small statistics for comparing agents over seeds: t intervals, learning curves, AUC.

Every figure that summarises several seeds comes with a Student-t confidence interval on the
mean. With a single seed there is no spread to estimate, so the interval has no bounds
(``low`` and ``high`` are ``None``) rather than NaN or a fake zero-width band; reports show it
as "n/a". Nothing here returns NaN, so results can go into strict JSON as they are.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

_trapezoid: Callable[..., Any] = getattr(np, "trapezoid", None) or getattr(np, "trapz")  # noqa: B009
"""``numpy.trapezoid`` (numpy >= 2.0), or its old name ``numpy.trapz``."""


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval."""

    mean: float
    """Sample mean."""
    low: float | None
    """Lower bound; ``None`` when ``n < 2`` (no spread can be estimated from one value)."""
    high: float | None
    """Upper bound; ``None`` when ``n < 2``."""
    n: int
    """Number of values the mean is over."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"an interval needs at least one value, got n={self.n}")
        if (self.low is None) != (self.high is None):
            raise ValueError("low and high must both be set or both be None")
        if self.low is not None and self.high is not None and not self.low <= self.high:
            raise ValueError(f"low {self.low} > high {self.high}")

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (the "±" of a report), ``None`` without bounds."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2.0

    def as_dict(self) -> dict[str, Any]:
        """JSON view: ``{"mean", "low", "high", "n"}`` (bounds ``null`` when ``n < 2``)."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def _finite(values: Sequence[float], what: str) -> list[float]:
    """The values as floats; ``ValueError`` when there are none or one is NaN or infinite."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError(f"{what} needs at least one value")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"{what} got a non-finite value: {xs}")
    return xs


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of ``values`` with its Student-t confidence interval.

    ``mean ± t_{(1+confidence)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
    (``n - 1`` in the denominator). With one value the bounds are ``None``; with identical values
    the interval has zero width. Raises ``ValueError`` for no values, a non-finite value or a
    confidence outside ``(0, 1)``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    xs = _finite(values, "mean_ci")
    n = len(xs)
    mean = statistics.fmean(xs)
    if n < 2:
        return Interval(mean, None, None, n)
    sd = statistics.stdev(xs)
    if sd == 0.0:
        return Interval(mean, mean, mean, n)
    t = float(_scipy_stats.t.ppf((1.0 + confidence) / 2.0, n - 1))
    half = t * sd / math.sqrt(n)
    # Guard the ordering against rounding when the spread is tiny next to the mean.
    return Interval(mean, min(mean - half, mean), max(mean + half, mean), n)


def curve_ci(runs: Sequence[Sequence[float]], confidence: float = 0.95) -> list[Interval]:
    """Per-episode mean and interval over runs (one run = one seed's scores, in order).

    Runs may differ in length (an interrupted seed): episode ``i`` is averaged over the runs
    that reached it, and its ``n`` says how many did. The curve is as long as the longest run;
    no runs, or only empty ones, give an empty curve.
    """
    length = max((len(run) for run in runs), default=0)
    return [mean_ci([run[i] for run in runs if len(run) > i], confidence) for i in range(length)]


def auc(curve: Sequence[float]) -> float:
    """Area under a learning curve, normalised so that it is on the scale of the scores.

    The trapezoid rule over the episodes, divided by the span of the x axis (episodes - 1): a
    constant curve ``c`` gives ``c``, a straight line gives the mean of its two ends, and a
    single point gives that point. The result always lies between the curve's minimum and
    maximum. Raises ``ValueError`` for an empty curve or a non-finite value.
    """
    ys = _finite(curve, "auc")
    if len(ys) == 1:
        return ys[0]
    area = float(_trapezoid(np.asarray(ys, dtype=float), dx=1.0))
    return min(max(area / (len(ys) - 1), min(ys)), max(ys))


def final_window(scores: Sequence[float], window: int) -> float:
    """Mean of the last ``window`` scores (all of them when there are fewer).

    Raises ``ValueError`` when ``window < 1``, there are no scores or one is not finite.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    xs = _finite(scores, "final_window")
    return statistics.fmean(xs[-window:])


def window_means(runs: Sequence[Sequence[float]], window: int) -> list[float]:
    """Means over consecutive blocks of ``window`` episodes (episodes ``1..w``, ``w+1..2w``, ...;
    a last, shorter block included), pooling every run's episodes of a block.

    Raises ``ValueError`` when ``window < 1`` or a value is not finite.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    runs = [_finite(run, "window_means") for run in runs]
    longest = max((len(run) for run in runs), default=0)
    return [
        statistics.fmean(x for run in runs for x in run[start : start + window])
        for start in range(0, longest, window)
    ]
