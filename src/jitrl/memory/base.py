"""The experience-store protocol.

A store holds :class:`jitrl.method.types.Experience` records, one per decision of every finished
episode. Episodes are written whole or not at all (:meth:`ExperienceStore.add_episode` is one
transaction), so a crash never leaves half an episode behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from jitrl.method.types import Experience

_logger = logging.getLogger("jitrl.memory")
DEFAULT_MEMORY = "jitrl-memory.sqlite"
"""The store used when none is named (a SQLite file in the current directory)."""
ConnT = TypeVar("ConnT")
"""A store's connection type (for :func:`apply_migrations`)."""


class Closable(Protocol):
    """A database connection, as far as :func:`closed_on_failure` is concerned."""

    def close(self) -> None:
        """Close the connection."""
        ...


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
        namespaces: number of distinct namespaces.
    """

    experiences: int
    episodes: int
    tasks: int
    states: int
    actions: int
    mean_return: float
    schema_version: int
    namespaces: int = 1


class ExperienceStore:
    """Persistent memory of experiences: subclass it and implement the five abstract methods
    (``add_episode``, ``__iter__``, ``__len__``, ``stats``, ``close``); the others have
    defaults built on them that a store may replace with faster ones."""

    def add_episode(
        self, experiences: Sequence[Experience], *, meta: Mapping[str, Any] | None = None
    ) -> None:
        """Store one finished episode atomically (all records or none).

        Args:
            experiences: the episode's records; all share one ``episode_id``.
            meta: JSON-serialisable metadata kept with the episode (stores may ignore it).

        Raises:
            ValueError: the episode is empty, its records do not share one episode id, or a
                field has an invalid value (``TypeError`` for a wrongly typed field).
            DuplicateEpisodeError: an episode with this id is already stored.
            StoreError: the store could not write the episode (nothing was written).
        """
        raise NotImplementedError

    def __iter__(self) -> Iterator[Experience]:
        """Iterate over all stored experiences, in insertion order."""
        raise NotImplementedError

    def __len__(self) -> int:
        """Number of stored experiences."""
        raise NotImplementedError

    def stats(self) -> StoreStats:
        """Counts and means over the store."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and close (idempotent)."""
        raise NotImplementedError

    def has_episode(self, episode_id: str) -> bool:
        """Whether an episode with this id is stored."""
        return episode_id in self.episode_ids()

    def episode_ids(self, namespaces: Collection[str] | None = None) -> list[str]:
        """Ids of the stored episodes, in storage order (of these namespaces only, if given)."""
        return list(dict.fromkeys(record.episode_id for record in self.in_namespaces(namespaces)))

    def in_namespaces(self, namespaces: Collection[str] | None) -> Iterator[Experience]:
        """The stored experiences of these namespaces (all of them for ``None``), in storage
        order."""
        if namespaces is None:
            return iter(self)
        wanted = frozenset(namespaces)
        return (record for record in self if record.namespace in wanted)

    def experiences_of(self, episode_ids: Sequence[str]) -> list[Experience]:
        """The records of these episodes in the order of ``episode_ids`` (unknown ids skipped),
        each episode's records in step order (see :func:`order_by_episode`)."""
        return order_by_episode(self, episode_ids)

    def episode_meta(self, episode_id: str) -> dict[str, Any] | None:
        """The metadata stored with an episode (``{}`` if none kept), ``None`` if not stored."""
        return {} if self.has_episode(episode_id) else None

    def delete_episode(self, episode_id: str) -> bool:
        """Remove a stored episode (all its records); ``False`` if it was not stored.

        Only used to reconcile a run folder with its store after a crash (an episode stored
        but never written to the folder is removed, then played again).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot delete episodes")

    @property
    def location(self) -> str | None:
        """Where the store lives, stable across processes (its file, or its server URL with
        schema), used to keep its candidate index beside it; ``None``: nowhere durable."""
        return None

    def __enter__(self) -> ExperienceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def order_by_episode(records: Iterable[Experience], episode_ids: Sequence[str]) -> list[Experience]:
    """``records`` grouped episode by episode in the order of ``episode_ids`` (others dropped),
    each episode's records in step order."""
    groups: dict[str, list[Experience]] = {e: [] for e in episode_ids}
    for record in records:
        group = groups.get(record.episode_id)
        if group is not None:
            group.append(record)
    return [r for group in groups.values() for r in sorted(group, key=lambda r: r.step)]


@contextmanager
def closed_on_failure(
    conn: Closable,
    errors: type[BaseException] | tuple[type[BaseException], ...],
    what: str,
    hint: Callable[[BaseException], str] | None = None,
) -> Iterator[None]:
    """Close ``conn`` when the block fails; a driver error (``errors``) becomes
    ``StoreError("<what>: <error> (<hint(error)>)")``, anything else propagates as it is. Used
    while a fresh connection is checked and configured, before a store owns it."""
    try:
        yield
    except errors as exc:
        conn.close()
        advice = hint(exc) if hint is not None else ""
        raise StoreError(f"{what}: {exc}" + (f" ({advice})" if advice else "")) from exc
    except BaseException:
        conn.close()
        raise


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
