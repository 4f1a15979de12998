"""The registry of open episodes, with idle expiry.

An HTTP client opens an episode, sends decisions and rewards, and finishes it; a client that
crashes or loses its connection never finishes. The registry remembers when each episode was
last used so that the service can expire episodes idle for longer than the TTL, and it keeps a
bounded record of recently closed ids so that a late request gets a precise "not open" message
instead of a bare "unknown".
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from jitrl.method.learner import Episode

Clock = Callable[[], float]
"""A monotonic clock in seconds (``time.monotonic`` unless a test injects another)."""

REMEMBER_CLOSED = 4096
"""How many recently closed episode ids the registry remembers for error messages."""


class RegistryFull(RuntimeError):
    """The registry already holds its maximum number of open episodes."""


@dataclass
class Session:
    """One open episode and when it was last used.

    Attributes:
        episode: the learner's episode (decisions and rewards so far).
        opened_at: UNIX time at which it was opened.
        last_seen: clock time of the latest request that used it.
        owner: the API key's owner that opened it (``None`` without keys).
    """

    episode: Episode
    opened_at: float
    last_seen: float
    owner: str | None = None

    @property
    def episode_id(self) -> str:
        """The episode's id as stored (namespaced by its owner, see
        :mod:`jitrl.service.tenants`); the registry's key."""
        return self.episode.episode_id


class SessionRegistry:
    """Open episodes by id. Every method is thread-safe.

    Args:
        ttl_seconds: an episode unused for longer than this is returned by :meth:`pop_expired`.
        max_open: most episodes open at once (:meth:`add` raises :class:`RegistryFull` above).
        clock: monotonic clock, injectable for tests.
        remember: how many closed ids to remember for :meth:`closed_reason`.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_open: int,
        clock: Clock = time.monotonic,
        remember: int = REMEMBER_CLOSED,
    ) -> None:
        if ttl_seconds <= 0 or max_open < 1 or remember < 0:
            raise ValueError("ttl_seconds must be > 0, max_open >= 1 and remember >= 0")
        self.ttl_seconds = ttl_seconds
        self.max_open = max_open
        self._clock = clock
        self._remember = remember
        self._open: dict[str, Session] = {}
        self._closed: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, episode_id: object) -> bool:
        return episode_id in self._open

    def add(self, episode: Episode, owner: str | None = None) -> Session:
        """Register a newly opened episode (``owner``: who opened it).

        Raises:
            KeyError: an episode with this id is already open.
            RegistryFull: ``max_open`` episodes are open.
        """
        with self._lock:
            if episode.episode_id in self._open:
                raise KeyError(episode.episode_id)
            if len(self._open) >= self.max_open:
                raise RegistryFull(f"{self.max_open} episodes are open")
            session = Session(episode, time.time(), self._clock(), owner)
            self._open[episode.episode_id] = session
            self._closed.pop(episode.episode_id, None)
            return session

    def get(self, episode_id: str) -> Session | None:
        """The open session with this id (its idle timer restarts), or ``None``."""
        with self._lock:
            session = self._open.get(episode_id)
            if session is not None:
                session.last_seen = self._clock()
            return session

    def remove(self, episode_id: str, reason: str) -> Session | None:
        """Close a session (``reason`` is remembered for :meth:`closed_reason`)."""
        with self._lock:
            session = self._open.pop(episode_id, None)
            if session is not None:
                self._note_closed(episode_id, reason)
            return session

    def pop_expired(self) -> list[Session]:
        """Remove and return the sessions idle for longer than the TTL, oldest first."""
        with self._lock:
            now = self._clock()
            idle = [s for s in self._open.values() if now - s.last_seen > self.ttl_seconds]
            idle.sort(key=lambda s: s.last_seen)
            for session in idle:
                del self._open[session.episode_id]
            return idle

    def pop_all(self) -> list[Session]:
        """Remove and return every open session (at shutdown)."""
        with self._lock:
            sessions = list(self._open.values())
            self._open.clear()
            return sessions

    def note_closed(self, episode_id: str, reason: str) -> None:
        """Record why an episode that is no longer open was closed."""
        with self._lock:
            self._note_closed(episode_id, reason)

    def closed_reason(self, episode_id: str) -> str | None:
        """Why a recently closed episode is no longer open, or ``None`` if it is not known."""
        with self._lock:
            return self._closed.get(episode_id)

    def expires_in(self, session: Session) -> float:
        """Seconds left before ``session`` expires if it stays idle."""
        return max(0.0, self.ttl_seconds - (self._clock() - session.last_seen))

    def _note_closed(self, episode_id: str, reason: str) -> None:
        self._closed[episode_id] = reason
        self._closed.move_to_end(episode_id)
        while len(self._closed) > self._remember:
            self._closed.popitem(last=False)
