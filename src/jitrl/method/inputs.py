"""What a caller passes to :meth:`jitrl.method.learner.JitRL.decide`, checked: the candidates
and the base logits."""

from __future__ import annotations

import math
from collections.abc import Sequence


def clean_candidates(candidates: Sequence[str]) -> list[str]:
    """The candidates in order, each once; a blank candidate or none at all is an error."""
    if isinstance(candidates, str):
        raise TypeError("candidates must be a sequence of strings, not one string")
    out: list[str] = []
    for c in candidates:
        if not isinstance(c, str) or not c.strip():
            raise ValueError(f"every candidate must be a non-empty string, got {c!r}")
        if c not in out:
            out.append(c)
    if not out:
        raise ValueError("decide() needs at least one candidate action")
    return out


def checked_logits(
    logits: Sequence[float] | None, cands: list[str], floor: float | None, extra: int
) -> list[float] | None:
    """The caller's logits, checked, with a floor logit for each memory-proposed action."""
    if logits is None:
        return None
    base = [float(x) for x in logits]
    if len(base) != len(cands):
        raise ValueError(f"{len(cands)} candidates but {len(base)} logits")
    if not all(math.isfinite(x) for x in base):
        raise ValueError("base logits must be finite")
    return base + [min(base) if floor is None else floor] * extra


__all__ = ["checked_logits", "clean_candidates"]
