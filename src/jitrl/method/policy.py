"""The closed-form KL-regularised policy update and the choice of action.

``argmax_pi E_pi[A] - beta * KL(pi || pi0)`` is solved exactly by
``pi*(a) ∝ pi0(a) exp(A(a) / beta)``; on logits, ``z'(a) = z(a) + A(a) / beta``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from jitrl.method.config import PolicyConfig

FloatArray = NDArray[np.float64]


def softmax(logits: Sequence[float] | FloatArray, temperature: float = 1.0) -> FloatArray:
    """Numerically stable ``softmax(z / T)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if z.size == 0:
        raise ValueError("softmax of an empty vector")
    z = z - z.max()
    e = np.exp(z)
    return np.asarray(e / e.sum(), dtype=np.float64)


def corrected_logits(
    base_logits: Sequence[float],
    advantages: Sequence[float],
    beta: float,
    prior_weight: float = 1.0,
) -> FloatArray:
    """``z' = lambda * z + A / beta``: the exact solution of the KL-regularised improvement
    step towards the prior ``pi0^lambda`` (``lambda = prior_weight``, 1 for the model as it is;
    :mod:`jitrl.method.calibration`)."""
    z = np.asarray(base_logits, dtype=np.float64)
    a = np.asarray(advantages, dtype=np.float64)
    if z.shape != a.shape:
        raise ValueError(f"{z.size} logits but {a.size} advantages")
    if beta <= 0.0:
        raise ValueError("beta must be positive")
    if not 0.0 <= prior_weight <= 1.0:
        raise ValueError(f"prior_weight must be in [0, 1], got {prior_weight}")
    return prior_weight * z + a / beta


def select(
    logits: Sequence[float] | FloatArray, config: PolicyConfig, rng: np.random.Generator
) -> tuple[int, FloatArray]:
    """Pick an index from corrected logits; returns it and ``softmax(z' / T)``.

    Greedy takes a maximum: the first (``tie_break="first"``) or one drawn with the caller's
    seeded generator (``"random"``); sampling draws from the tempered distribution.
    """
    probs = softmax(logits, config.temperature)
    if config.selection == "greedy":
        z = np.asarray(logits, dtype=np.float64)
        if config.tie_break == "first":
            return int(np.argmax(z)), probs
        ties = np.flatnonzero(z == z.max())
        return int(ties[0] if len(ties) == 1 else rng.choice(ties)), probs
    return int(rng.choice(len(probs), p=probs)), probs
