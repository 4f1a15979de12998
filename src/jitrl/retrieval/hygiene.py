"""Memory hygiene: which stored records stay retrievable.

Three rules, all configured on :class:`jitrl.method.config.RetrievalConfig`:

- **near-duplicates** (``max_per_state_action``): at most ``N`` records per (state, action) stay,
  the ``N`` most recent; the state is its exact key, or its text when it has no key (the same
  notion of "the same state" as revisit detection);
- **capacity** (``capacity``): once more records are retained, whole episodes are evicted,
  oldest first (in the order their first record arrived). An episode is never split, and the
  episode of the record just added is never evicted, so a single episode longer than the
  capacity is kept whole and the limit is exceeded by less than one episode;
- **leave-one-task-out** (``exclude_own_task``): applied at query time by
  :meth:`jitrl.method.similarity.MemoryIndex.neighbours`, not here.

The rules act on what the index retrieves; the store keeps every record (an audit trail), and
an index rebuilt from the store replays the same rules in the same order, so it retains exactly
the records the incrementally updated index retained. :func:`compact` applies them to a plain
sequence (e.g. to write a compacted copy of a store).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from jitrl.method.config import RetrievalConfig
from jitrl.method.types import Experience

__all__ = ["Hygiene", "compact", "state_action"]


def state_action(exp: Experience) -> tuple[str, str]:
    """The near-duplicate class of a record: (exact key, or text when keyless; action)."""
    return exp.state.identity, exp.action


@dataclass
class _Kept:
    """Bookkeeping of one retained record."""

    episode_id: str
    slot: tuple[str, str]
    handle: Hashable


class Hygiene:
    """Applies the near-duplicate cap and the capacity limit to a stream of records.

    Records are identified by a caller-chosen increasing sequence number; ``handle`` is an
    opaque value handed back with evicted records (the index passes the record's state group).

    Args:
        max_per_state_action: records kept per (state, action), ``None`` for no cap.
        capacity: records kept in all, ``None`` for no limit.
    """

    def __init__(self, max_per_state_action: int | None, capacity: int | None) -> None:
        if max_per_state_action is not None and max_per_state_action < 1:
            raise ValueError("max_per_state_action must be None or >= 1")
        if capacity is not None and capacity < 1:
            raise ValueError("capacity must be None or >= 1")
        self.max_per_state_action = max_per_state_action
        self.capacity = capacity
        self._kept: dict[int, _Kept] = {}
        self._slots: dict[tuple[str, str], dict[int, None]] = {}
        self._episodes: dict[str, dict[int, None]] = {}

    @classmethod
    def from_config(cls, config: RetrievalConfig) -> Hygiene | None:
        """The hygiene ``config`` asks for, or ``None`` when it keeps everything."""
        if config.max_per_state_action is None and config.capacity is None:
            return None
        return cls(config.max_per_state_action, config.capacity)

    def __len__(self) -> int:
        return len(self._kept)

    def admit(self, seq: int, exp: Experience, handle: Hashable) -> list[tuple[int, Hashable]]:
        """Retain record ``seq``; return the ``(seq, handle)`` of the records it evicts."""
        kept = _Kept(exp.episode_id, state_action(exp), handle)
        self._kept[seq] = kept
        self._slots.setdefault(kept.slot, {})[seq] = None
        self._episodes.setdefault(kept.episode_id, {})[seq] = None
        evicted: list[tuple[int, Hashable]] = []
        cap = self.max_per_state_action
        slot = self._slots[kept.slot]
        while cap is not None and len(slot) > cap:
            evicted.append(self._drop(next(iter(slot))))
        while self.capacity is not None and len(self._kept) > self.capacity:
            oldest = next(iter(self._episodes))
            if oldest == kept.episode_id:
                break  # the newest episode is never evicted
            evicted.extend(self._drop(s) for s in list(self._episodes[oldest]))
        return evicted

    def _drop(self, seq: int) -> tuple[int, Hashable]:
        kept = self._kept.pop(seq)
        slot = self._slots[kept.slot]
        del slot[seq]
        if not slot:
            del self._slots[kept.slot]
        episode = self._episodes[kept.episode_id]
        del episode[seq]
        if not episode:
            del self._episodes[kept.episode_id]
        return seq, kept.handle


def compact(experiences: Iterable[Experience], config: RetrievalConfig) -> list[Experience]:
    """The records that ``config``'s hygiene retains from ``experiences``, in their order."""
    records = list(experiences)
    hygiene = Hygiene.from_config(config)
    if hygiene is None:
        return records
    alive = [True] * len(records)
    for seq, exp in enumerate(records):
        for dropped, _ in hygiene.admit(seq, exp, None):
            alive[dropped] = False
    return [exp for exp, keep in zip(records, alive, strict=True) if keep]
