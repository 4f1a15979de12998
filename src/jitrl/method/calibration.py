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
from scipy.special import log_softmax, logsumexp, softmax

from jitrl.method.config import PolicyConfig

REFIT_EVERY = 10
"""Evidence is pooled and the weight refitted every this many decisions (a fit over a full
window costs about 10 ms)."""
MIN_SEEN = 2
"""Candidates with memory evidence a decision needs to say something about the model."""
FIT_TOLERANCE = 1e-4
"""Precision of the fitted weight."""
TRUST_GRID = np.round(np.arange(0.0, 1.951, 0.05), 2)
"""Trusts ``w`` the outcome fit tries: below 1 the model is tempered, above 1 memory is (its
weight ``mu = 2 - w`` never below 0.05, so ``beta / mu`` stays finite)."""


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


@dataclass(frozen=True)
class Outcome:
    """One decision seen once its episode ended: the model's logits, memory's term ``A / beta``
    over the same candidates, the index taken and its realised advantage ``G - V``."""

    logits: tuple[float, ...]
    memory: tuple[float, ...]
    taken: int
    advantage: float


def mix(trust: float) -> tuple[float, float]:
    """The weights ``(lambda, mu)`` of model and memory for a trust ``w`` in ``[0, 2)``: the
    model's ``lambda = min(w, 1)``, memory's ``mu = min(2 - w, 1)``."""
    return min(trust, 1.0), min(2.0 - trust, 1.0)


def fit_trust(outcomes: Sequence[Outcome]) -> float:
    """The trust ``w`` whose policy ``softmax(lambda z + mu A / beta)`` best explains which
    actions turned out well: the maximum over :data:`TRUST_GRID` of
    ``sum_t (R_t - mean R) log pi_w(a_t | s_t)``, the advantage-weighted likelihood of the
    actions taken. An action that did better than usual pulls ``w`` towards the source that
    preferred it; one that did worse, away. Where no ``w`` does better than ``w = 1``
    (no outcomes, all alike), the method as published is kept."""
    if not outcomes:
        return 1.0
    centred = np.array([o.advantage for o in outcomes])
    centred -= centred.mean()
    lam, mu = np.array([mix(w) for w in TRUST_GRID]).T
    total = np.zeros(len(TRUST_GRID))
    for o, weight in zip(outcomes, centred, strict=True):
        if weight == 0.0:
            continue
        rows = lam[:, None] * np.asarray(o.logits) + mu[:, None] * np.asarray(o.memory)
        total += weight * log_softmax(rows, axis=1)[:, o.taken]
    at_one = total[int(np.flatnonzero(TRUST_GRID == 1.0)[0])]
    best = int(np.argmax(total))
    return float(TRUST_GRID[best]) if total[best] > at_one + FIT_TOLERANCE else 1.0


class PriorCalibration:
    """The per-task trust in the model against memory, refitted as evidence comes.

    The trust ``w`` gives the model's weight ``lambda`` and memory's ``mu`` (:func:`mix`). With
    ``calibrate_from="memory"`` each decision brings a :class:`Sample` and ``w = lambda`` stays
    in ``[0, 1]``; with ``"outcomes"`` each learning episode brings its :class:`Outcome` list.
    Either fit is shrunk towards ``w = 1`` by ``calibration_prior`` pseudo-decisions.

    Args:
        config: the policy settings (``calibrate``, ``calibrate_from``, ``calibration_prior``,
            ``calibration_window``, ``beta``).
    """

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._samples: dict[str, deque[Sample]] = {}
        self._outcomes: dict[str, deque[Outcome]] = {}
        self._trust: dict[str, float] = {}
        self._seen: dict[str, int] = {}

    def trust(self, task_id: str) -> float:
        """The current trust ``w`` of ``task_id`` (1 until evidence says otherwise)."""
        return self._trust.get(task_id, 1.0) if self.config.calibrate else 1.0

    def weight(self, task_id: str) -> float:
        """The model's weight ``lambda`` for ``task_id``."""
        return mix(self.trust(task_id))[0]

    def memory_weight(self, task_id: str) -> float:
        """Memory's weight ``mu`` for ``task_id`` (below 1 only with ``outcomes``)."""
        return mix(self.trust(task_id))[1]

    def observe(self, task_id: str, sample: Sample | None) -> float:
        """Add a decision's evidence (``calibrate_from="memory"``) and refit; returns the
        task's new weight."""
        if not self.config.calibrate or self.config.calibrate_from != "memory" or sample is None:
            return self.weight(task_id)
        window = self._samples.setdefault(task_id, deque(maxlen=self.config.calibration_window))
        window.append(sample)
        self._seen[task_id] = self._seen.get(task_id, 0) + 1
        if self._seen[task_id] % REFIT_EVERY == 0:
            self._shrink(task_id, fit_weight(list(window), self.config.beta))
        return self.weight(task_id)

    def observe_outcomes(self, task_id: str, outcomes: Sequence[Outcome]) -> float:
        """Add a finished learning episode's decisions (``calibrate_from="outcomes"``) and
        refit; returns the task's new trust."""
        config = self.config
        on = config.calibrate and config.calibrate_from == "outcomes"
        if not (on and outcomes and config.correction == "advantages"):
            return self.trust(task_id)
        window = self._outcomes.setdefault(task_id, deque(maxlen=self.config.calibration_window))
        window.extend(outcomes)
        self._seen[task_id] = self._seen.get(task_id, 0) + len(outcomes)
        self._shrink(task_id, fit_trust(list(window)))
        return self.trust(task_id)

    def _shrink(self, task_id: str, fitted: float) -> None:
        """Keep ``fitted`` shrunk towards 1 by the prior against every decision seen."""
        n, prior = self._seen[task_id], self.config.calibration_prior
        self._trust[task_id] = (n * fitted + prior * 1.0) / (n + prior)

    def samples(self, task_id: str) -> int:
        """Decisions with evidence seen for ``task_id`` (in the fit's window)."""
        return len(self._samples.get(task_id, ())) + len(self._outcomes.get(task_id, ()))
