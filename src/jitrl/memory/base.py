"""The experience-store protocol.

A store holds :class:`jitrl.method.types.Experience` records, one per decision of every finished
episode. Episodes are written whole or not at all (:meth:`ExperienceStore.add_episode` is one
transaction), so a crash never leaves half an episode behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from jitrl.method.types import Experience

_logger = logging.getLogger("jitrl.memory")
DEFAULT_MEMORY = "jitrl-memory.sqlite"
"""The store used when none is named (a SQLite file in the current directory)."""
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


def order_by_episode(records: Iterable[Experience], episode_ids: Sequence[str]) -> list[Experience]:
    """``records`` grouped episode by episode in the order of ``episode_ids`` (others dropped),
    each episode's records in step order."""
    groups: dict[str, list[Experience]] = {e: [] for e in episode_ids}
    for record in records:
        group = groups.get(record.episode_id)
        if group is not None:
            group.append(record)
    return [r for group in groups.values() for r in sorted(group, key=lambda r: r.step)]


def stored_episode_ids(store: ExperienceStore) -> list[str]:
    """Ids of the store's episodes in storage order (stores without ``episode_ids`` are read
    whole)."""
    listing = getattr(store, "episode_ids", None)
    if callable(listing):
        return list(listing())
    return list(dict.fromkeys(record.episode_id for record in store))


def episode_records(store: ExperienceStore, episode_ids: Sequence[str]) -> list[Experience]:
    """The records of these stored episodes, in the order of ``episode_ids`` (see
    :func:`order_by_episode`); one query on stores with ``experiences_of``, a scan otherwise."""
    reader = getattr(store, "experiences_of", None)
    if callable(reader):
        return list(reader(episode_ids))
    return order_by_episode(store, episode_ids)


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
