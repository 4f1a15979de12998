"""Helpers of ``logit_modes.py``: agreement between two distributions.

:func:`fidelity` compares a mode's base distribution with the reference's: top-1 agreement,
KL(ref || mode), Spearman rank correlation (pure functions, tested in
``tests/test_bench_logit_modes.py``). The server comes from :mod:`jitrl.llm.local_server`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax
from scipy.stats import entropy, spearmanr

from jitrl.llm import ScoreResult
from jitrl.method.config import PolicyConfig

LENGTH_NORMALISE = PolicyConfig().length_normalise
"""The agent's base logits are per-token means (``ScoreResult.logits``) unless configured off."""


def distribution(logits: Sequence[float]) -> np.ndarray:
    """``softmax(logits)`` as float64."""
    return np.asarray(softmax(np.asarray(logits, dtype=np.float64)))


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """``KL(p || q)`` in nats (``scipy.stats.entropy``; rounding below 0 clipped)."""
    return max(0.0, float(entropy(p, q)))


def top1_agreement(p: np.ndarray, q: np.ndarray) -> float:
    """Chance that greedy choice on ``q`` picks ``p``'s best option (ties in ``q`` split
    evenly; ``p``'s ties: any of its best counts)."""
    q_best = np.flatnonzero(np.isclose(q, q.max(), rtol=0, atol=1e-12))
    p_best = set(np.flatnonzero(np.isclose(p, p.max(), rtol=0, atol=1e-12)).tolist())
    return sum(int(i) in p_best for i in q_best) / len(q_best)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (``scipy.stats.spearmanr``); 0.0 when either side is constant
    (no order to agree on)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def fidelity(reference: ScoreResult, result: ScoreResult) -> dict[str, float]:
    """Agreement of ``result``'s base distribution with the reference's."""
    p = distribution(reference.logits(LENGTH_NORMALISE))
    q, q_raw = distribution(result.logits(LENGTH_NORMALISE)), result.logprobs
    return {
        "top1": top1_agreement(p, q),
        "kl": kl(p, q),
        "kl_summed_ref": kl(distribution(reference.logprobs), q),
        "spearman": spearman(p.tolist(), q.tolist()),
        "top_prob": float(q.max()),
        "uniform": float(np.ptp(q) < 1e-9),
        "max_abs_logprob_diff": float(np.abs(np.subtract(reference.logprobs, q_raw)).max()),
    }
