"""A prior that knows when it is wrong: how much to trust the model, learnt from memory.

The closed-form update takes the model's distribution ``pi0`` as the reference of the KL term.
When memory shows that the model prefers actions that do badly, that reference holds the agent
back: a weak model caps it below a random valid action. We therefore regularise towards a
*tempered* prior, a mix of the model and of the uniform distribution:

    max_pi  E_pi[A] - beta * (lambda * KL(pi || pi0) + (1 - lambda) * KL(pi || U))

Its exact solution is ``pi*(a) ∝ pi0(a)^lambda * exp(A(a) / beta)``, i.e. the logits become
``z'(a) = lambda * z(a) + A(a) / beta``: ``lambda = 1`` is the method as published, ``lambda = 0``
ignores the model and lets memory and exploration decide.

``lambda`` is fitted per task by maximum likelihood. Every decision whose neighbours took two or
more of the candidates gives memory's preference among them, ``q(a) ∝ exp(Q(a) / beta)`` over
those candidates; ``lambda`` minimises the cross-entropy ``-sum_a q(a) log softmax(lambda z)(a)``
summed over the task's recent decisions, a convex problem in one variable, solved on ``[0, 1]``.
The fit is shrunk towards 1 by ``calibration_prior`` pseudo-decisions against every decision
with evidence the task has seen (the fit itself uses the last ``calibration_window``), so a
model keeps its weight until memory has evidence against it, and loses it entirely as evidence
keeps coming. Shrinking against the window alone left a floor of ``prior / (window + prior)``
(0.04 with the defaults): with a model whose log-probabilities differ by 5-8 nats, enough to
outweigh memory's small advantages, always in the direction of the model's bias.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax

from jitrl.method.config import PolicyConfig

REFIT_EVERY = 10
"""Evidence is pooled and the weight refitted every this many decisions (a fit over a full
window costs about 10 ms)."""
MIN_SEEN = 2
"""Candidates with memory evidence a decision needs to say something about the model."""
FIT_TOLERANCE = 1e-4
"""Precision of the fitted weight."""


@dataclass(frozen=True)
class Sample:
    """One decision's evidence: the model's logits and memory's Q over the candidates memory
    has seen there."""

    logits: tuple[float, ...]
    q: tuple[float, ...]


def sample_of(logits: Sequence[float], q: Sequence[float], counts: Sequence[int]) -> Sample | None:
    """The evidence of one decision, or ``None`` when memory saw fewer than two candidates."""
    seen = [i for i, n in enumerate(counts) if n > 0]
    if len(seen) < MIN_SEEN:
        return None
    return Sample(tuple(float(logits[i]) for i in seen), tuple(float(q[i]) for i in seen))


def fit_weight(samples: Sequence[Sample], beta: float) -> float:
    """The weight ``lambda`` in ``[0, 1]`` whose tempered model best predicts memory's choices.

    Minimises ``sum_d -sum_a q_d(a) log softmax(lambda z_d)(a)`` with ``q_d = softmax(Q_d /
    beta)`` (vectorised over decisions padded to one width). With no samples the model keeps
    its full weight (1).
    """
    if not samples:
        return 1.0
    width = max(len(s.logits) for s in samples)
    z = np.full((len(samples), width), -np.inf)
    q = np.zeros((len(samples), width))
    for row, s in enumerate(samples):
        logits = np.asarray(s.logits)
        z[row, : len(logits)] = logits - logits.max()
        q[row, : len(logits)] = softmax(np.asarray(s.q) / beta)
    expected = float(np.sum(np.where(q > 0, q * np.nan_to_num(z, neginf=0.0), 0.0)))

    def loss(weight: float) -> float:
        scaled = np.where(np.isfinite(z), weight * z, -np.inf)
        return float(np.sum(logsumexp(scaled, axis=1))) - weight * expected

    options = {"xatol": FIT_TOLERANCE}
    result = minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded", options=options)
    return float(min(1.0, max(0.0, result.x)))


class PriorCalibration:
    """The per-task weight of the model's logits, refitted as decisions bring evidence.

    Args:
        config: the policy settings (``calibrate``, ``calibration_prior``,
            ``calibration_window``, ``beta``).
    """

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._samples: dict[str, deque[Sample]] = {}
        self._weights: dict[str, float] = {}
        self._seen: dict[str, int] = {}

    def weight(self, task_id: str) -> float:
        """The current weight of the model for ``task_id`` (1 until evidence says otherwise)."""
        if not self.config.calibrate:
            return 1.0
        return self._weights.get(task_id, 1.0)

    def observe(self, task_id: str, sample: Sample | None) -> float:
        """Add a decision's evidence and refit; returns the task's new weight."""
        if not self.config.calibrate or sample is None:
            return self.weight(task_id)
        window = self._samples.setdefault(task_id, deque(maxlen=self.config.calibration_window))
        window.append(sample)
        self._seen[task_id] = self._seen.get(task_id, 0) + 1
        if self._seen[task_id] % REFIT_EVERY == 0:
            fitted = fit_weight(list(window), self.config.beta)
            n, prior = self._seen[task_id], self.config.calibration_prior
            self._weights[task_id] = (n * fitted + prior * 1.0) / (n + prior)
        return self.weight(task_id)

    def samples(self, task_id: str) -> int:
        """Decisions with evidence seen for ``task_id``."""
        return len(self._samples.get(task_id, ()))
