"""Shared fixtures: where the real games are, and a minimal in-memory store."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jitrl.agents import Agent, AgentContext, agent_spec, make_agent
from jitrl.memory import open_store
from jitrl.memory.base import ExperienceStore, StoreStats
from jitrl.method.config import JitRLConfig
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


class ListStore(ExperienceStore):
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


def build_agent(
    name: str,
    model: Any = None,
    memory: Any = None,
    config: JitRLConfig | None = None,
    *,
    seed: int = 1,
    **context: Any,
) -> Agent:
    """An agent from the registry; ``memory`` may be a path (opened here) or a store."""
    store = open_store(memory) if isinstance(memory, (str, Path)) else memory
    if store is not None and not agent_spec(name).keeps_memory:
        store.close()
        store = None
    ctx = AgentContext(model=model, store=store, config=config or JitRLConfig(), seed=seed)
    return make_agent(name, replace(ctx, **context))


from tests.pg import pg_url, postgres_server  # noqa: E402, F401  (PostgreSQL test server)
