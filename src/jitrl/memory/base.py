"""The experience-store protocol.

A store holds :class:`jitrl.types.Experience` records, one per decision of every finished
episode. Episodes are written whole or not at all (:meth:`ExperienceStore.add_episode` is one
transaction), so a crash never leaves half an episode behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from jitrl.types import Experience

_logger = logging.getLogger("jitrl.memory")
ConnT = TypeVar("ConnT")
"""A store's connection type (for :func:`apply_migrations`)."""


class StoreError(RuntimeError):
    """The store cannot be opened or read (not a jitrl store, wrong schema version, corrupt)."""


class DuplicateEpisodeError(StoreError):
    """An episode with this id is already stored; nothing of the new episode was written."""


@dataclass(frozen=True)
class StoreStats:
    """Summary of a store's content.

    Attributes:
        experiences: number of stored decisions.
        episodes: number of stored episodes.
        tasks: number of distinct task ids.
        states: number of distinct abstracted state texts.
        actions: number of distinct actions.
        mean_return: mean of the stored returns (0.0 if empty).
        schema_version: the store's schema version.
    """

    experiences: int
    episodes: int
    tasks: int
    states: int
    actions: int
    mean_return: float
    schema_version: int


@runtime_checkable
class ExperienceStore(Protocol):
    """Persistent memory of experiences."""

    def add_episode(self, experiences: Sequence[Experience]) -> None:
        """Store one finished episode atomically (all records or none).

        Raises:
            ValueError: the episode is empty, its records do not share one episode id, or a
                field has an invalid value (``TypeError`` for a wrongly typed field).
            DuplicateEpisodeError: an episode with this id is already stored.
            StoreError: the store could not write the episode (nothing was written).
        """
        ...

    def __iter__(self) -> Iterator[Experience]:
        """Iterate over all stored experiences, in insertion order."""
        ...

    def __len__(self) -> int:
        """Number of stored experiences."""
        ...

    def has_episode(self, episode_id: str) -> bool:
        """Whether an episode with this id is stored."""
        ...

    def stats(self) -> StoreStats:
        """Counts and means over the store."""
        ...

    def close(self) -> None:
        """Flush and close."""
        ...


def apply_migrations(
    conn: ConnT,
    from_version: int,
    to_version: int,
    steps: Mapping[int, Callable[[ConnT], None]],
) -> None:
    """Run ``steps[v](conn)`` for every ``v`` from ``from_version`` up to ``to_version - 1``.

    Shared by the stores' schema modules; each then records ``to_version`` its own way.

    Raises:
        StoreError: ``from_version`` is newer than ``to_version`` or has no upgrade path.
    """
    if from_version > to_version:
        raise StoreError(f"cannot migrate down from schema version {from_version}")
    for version in range(from_version, to_version):
        step = steps.get(version)
        if step is None:
            raise StoreError(f"no migration from schema version {version} to {version + 1}")
        _logger.info("migrating jitrl store from schema version %d to %d", version, version + 1)
        step(conn)
