"""Shared fixtures: where the real games are, and a minimal in-memory store."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jitrl.memory.base import StoreStats
from jitrl.method.types import Experience

REPO = Path(__file__).resolve().parents[1]


def jericho_dir() -> Path | None:
    """Folder of Jericho game files: $JITRL_JERICHO_DIR, or ../shared/games/jericho."""
    env = os.environ.get("JITRL_JERICHO_DIR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "games" / "jericho"]:
        if cand.is_dir() and any(cand.glob("*.z*")):
            return cand
    return None


@pytest.fixture
def game_dir() -> Path:
    found = jericho_dir()
    if found is None:
        pytest.skip("no Jericho games: set JITRL_JERICHO_DIR or put ../shared/games/jericho")
    return found


class ListStore:
    """The smallest ExperienceStore: a list (for tests of code above the store)."""

    def __init__(self) -> None:
        self.items: list[Experience] = []
        self.episodes: list[str] = []

    def add_episode(self, experiences: Sequence[Experience], meta: dict | None = None) -> None:
        ids = {e.episode_id for e in experiences}
        assert len(ids) == 1 and not ids & set(self.episodes)
        self.episodes.append(ids.pop())
        self.items.extend(experiences)

    def __iter__(self) -> Iterator[Experience]:
        return iter(list(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def has_episode(self, episode_id: str) -> bool:
        return episode_id in self.episodes

    def stats(self) -> StoreStats:
        return StoreStats(len(self.items), len(self.episodes), 0, 0, 0, 0.0, 1)

    def close(self) -> None:
        pass


@pytest.fixture
def list_store() -> ListStore:
    return ListStore()


from tests.pg import pg_url, postgres_server  # noqa: E402, F401  (PostgreSQL test server)
