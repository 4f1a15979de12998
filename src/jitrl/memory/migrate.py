"""Copy every episode from one experience store to another (e.g. SQLite ↔ PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from jitrl.memory.base import DuplicateEpisodeError, ExperienceStore
from jitrl.memory.jsonl import ImportResult, group_episodes
from jitrl.method.types import Experience

logger = logging.getLogger(__name__)


def _add_with_meta(
    dst: ExperienceStore, src: ExperienceStore, episodes: Mapping[str, Sequence[Experience]]
) -> ImportResult:
    """:func:`~jitrl.memory.jsonl.add_episodes`, passing each episode's metadata along."""
    added = added_records = skipped = 0
    for episode_id, records in episodes.items():
        if dst.has_episode(episode_id):
            skipped += 1
            continue
        try:
            dst.add_episode(records, meta=src.episode_meta(episode_id) or None)
        except DuplicateEpisodeError:  # stored by a concurrent writer meanwhile
            skipped += 1
            continue
        added += 1
        added_records += len(records)
    return ImportResult(episodes=added, experiences=added_records, skipped_episodes=skipped)


def migrate(src: ExperienceStore, dst: ExperienceStore) -> ImportResult:
    """Copy every episode of ``src`` into ``dst``; episodes ``dst`` already holds are skipped.

    Idempotent: running it again (or after an interrupted run) adds only what is missing. Each
    episode is one atomic :meth:`~jitrl.memory.base.ExperienceStore.add_episode`, so ``dst``
    never holds part of an episode. Records keep every field (``created_at`` included) and
    ``src``'s order; episode metadata is copied when both stores keep it (SQLite, PostgreSQL).
    ``src`` is read whole into memory first (its records grouped by episode id).

    Args:
        src: the store to copy from (only read).
        dst: the store to copy into.

    Returns:
        Counts of added episodes and experiences, and of episodes ``dst`` already held.

    Raises:
        StoreError: reading ``src`` or writing ``dst`` failed; episodes added before stay.
    """
    result = _add_with_meta(dst, src, group_episodes(src))
    logger.info("migrated %r to %r: %s", src, dst, result)
    return result
