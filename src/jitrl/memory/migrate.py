"""Copy every episode from one experience store to another (e.g. SQLite ↔ PostgreSQL)."""

from __future__ import annotations

import logging

from jitrl.memory.base import ExperienceStore
from jitrl.memory.jsonl import ImportResult, add_episodes, group_episodes

logger = logging.getLogger(__name__)


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
    result = add_episodes(dst, group_episodes(src), meta_of=src.episode_meta)
    logger.info("migrated %r to %r: %s", src, dst, result)
    return result
