"""The service's state and operations, free of HTTP: a learner, its open episodes and a lock.

:class:`Engine` wraps one :class:`~jitrl.method.learner.JitRL` (one store, one optional model) and
the :class:`~jitrl.service.sessions.SessionRegistry` of open episodes. uvicorn runs request
handlers concurrently in a thread pool, while the learner (its index, generator and model) is
not thread-safe, so every operation that touches the learner or an episode runs under one
re-entrant lock. Operations fail with :class:`ServiceError`, which carries the HTTP status.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from jitrl.llm import LanguageModel, Prompt, load_model
from jitrl.memory import open_store
from jitrl.memory.base import DuplicateEpisodeError, StoreError, StoreStats
from jitrl.method.learner import JitRL
from jitrl.method.types import Decision, Experience
from jitrl.service.config import ServiceConfig
from jitrl.service.sessions import Clock, RegistryFull, Session, SessionRegistry

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Finished:
    """What finishing an episode stored.

    Attributes:
        experiences: the stored experiences (empty for an episode without decisions).
        stored: whether they went to the store (``False`` only without a store).
    """

    experiences: list[Experience]
    stored: bool


def _accept_any(_action: str) -> bool:
    return True


class Engine:
    """One learner serving many episodes.

    Args:
        config: the service settings (store, model, TTL, limits).
        clock: monotonic clock for idle expiry (injectable for tests).

    Raises:
        StoreError, ValueError, NotImplementedError: the store cannot be opened.
        ValueError: an unknown model spec.
    """

    def __init__(self, config: ServiceConfig, *, clock: Clock = time.monotonic) -> None:
        self.config = config
        store = open_store(config.memory)
        model: LanguageModel | None = None
        try:
            if config.model:
                model = load_model(config.model, n_threads=config.model_threads)
            self.jit = JitRL(store, config.jitrl, model=model, seed=config.seed)
        except BaseException:
            if model is not None:
                model.close()
            store.close()
            raise
        self.model = model
        self.sessions = SessionRegistry(
            config.episode_ttl_seconds, config.max_open_episodes, clock=clock
        )
        self.expired = {"stored": 0, "dropped": 0}
        self._lock = threading.RLock()
        self._closed = False
        self._clock = clock
        self._synced = -math.inf  # when the store was last looked at (follow_store)

    @property
    def indexed(self) -> int:
        """Experiences in the learner's in-memory index."""
        return len(self.jit.index)

    def open(self, task_id: str, episode_id: str | None) -> Session:
        """Open an episode (a fresh random id when ``episode_id`` is ``None``)."""
        with self._lock:
            self._sweep_locked()
            eid = episode_id or uuid.uuid4().hex
            if eid in self.sessions:
                raise ServiceError(409, f"episode {eid!r} is already open")
            if self.jit.store is not None and self.jit.store.has_episode(eid):
                raise ServiceError(409, f"episode {eid!r} is already stored; use a new id")
            self._follow_store()
            try:
                return self.sessions.add(self.jit.episode(task_id, eid))
            except RegistryFull as exc:
                raise ServiceError(
                    429, f"too many open episodes ({exc}); finish or delete some first"
                ) from exc

    def decide(
        self,
        episode_id: str,
        state: str,
        candidates: Sequence[str],
        logits: Sequence[float] | None,
        *,
        key: str | None = None,
        prompt: Prompt | None = None,
        propose: bool = False,
    ) -> tuple[int, Decision]:
        """Correct the base distribution with memory and choose; the episode records it.

        Returns the decision's step (its index in the episode) and the decision.
        """
        with self._lock:
            self._sweep_locked()
            session = self._session(episode_id)
            self._check_scorable(logits, prompt)
            episode = session.episode
            n_rewards = len(episode.rewards)
            try:
                valid = _accept_any if propose else None
                decision = episode.decide(
                    state, candidates, logits, key=key, prompt=prompt, valid=valid
                )
            except (ValueError, TypeError) as exc:
                del episode.rewards[n_rewards:]  # undo the implicit 0 reward of the last step
                raise ServiceError(422, str(exc)) from exc
            except BaseException:
                del episode.rewards[n_rewards:]
                raise
            return len(episode.decisions) - 1, decision

    def reward(self, episode_id: str, reward: float) -> int:
        """Record the reward that followed the latest decision; returns the decision's step."""
        with self._lock:
            self._sweep_locked()
            session = self._session(episode_id)
            episode = session.episode
            if len(episode.rewards) >= len(episode.decisions):
                raise ServiceError(
                    409,
                    f"a reward must follow a decide: episode {episode_id!r} has "
                    f"{len(episode.decisions)} decision(s), all of them rewarded already",
                )
            try:
                episode.reward(reward)
            except ValueError as exc:
                raise ServiceError(422, str(exc)) from exc
            return len(episode.rewards) - 1

    def finish(self, episode_id: str, *, failed: bool) -> Finished:
        """Compute returns and store the episode atomically; it is then closed."""
        with self._lock:
            self._sweep_locked()
            session = self._session(episode_id)
            try:
                exps = session.episode.finish(failed=failed)
            except DuplicateEpisodeError as exc:
                self.sessions.remove(episode_id, "closed: an episode with this id was stored")
                raise ServiceError(409, f"episode {episode_id!r} is already stored") from exc
            except StoreError as exc:
                session.episode.finished = False  # nothing was written: the client may retry
                raise ServiceError(503, f"the store failed, nothing was written: {exc}") from exc
            self.sessions.remove(episode_id, "finished")
            return Finished(exps, stored=self.jit.store is not None and bool(exps))

    def drop(self, episode_id: str) -> int:
        """Close an episode without storing it; returns how many decisions were discarded."""
        with self._lock:
            self._sweep_locked()
            session = self._session(episode_id)
            session.episode.finished = True
            self.sessions.remove(episode_id, "deleted by the client (nothing stored)")
            return len(session.episode.decisions)

    def stats(self) -> StoreStats:
        """The store's statistics."""
        store = self.jit.store
        if store is None:
            return StoreStats(0, 0, 0, 0, 0, 0.0, 0)
        try:
            return store.stats()
        except StoreError as exc:
            raise ServiceError(503, f"the store cannot be read: {exc}") from exc

    def sweep(self) -> int:
        """Expire the episodes idle for longer than the TTL; returns how many expired."""
        with self._lock:
            return self._sweep_locked()

    def close(self) -> None:
        """Handle still-open episodes per ``on_expire``, then close the store and model."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for session in self.sessions.pop_all():
                self._expire(session, "the server shut down")
            try:
                self.jit.close()
            finally:
                if self.model is not None:
                    self.model.close()

    def _follow_store(self) -> None:
        """Index what other processes stored, at most once per ``follow_store_seconds``."""
        now = self._clock()
        if not self.config.follow_store or now - self._synced < self.config.follow_store_seconds:
            return
        self._synced = now
        added = self.jit.sync()
        if added:
            log.info("memory: %d records stored by other processes indexed", added)

    def _check_scorable(self, logits: Sequence[float] | None, prompt: Prompt | None) -> None:
        if logits is not None:
            return
        if prompt is None:
            raise ServiceError(422, "send base logits, or a prompt for the server's model")
        if self.model is None:
            raise ServiceError(
                409,
                "this server has no language model to score a prompt (start it with a model, "
                "e.g. `jitrl serve --model llamacpp`); send base logits instead",
            )

    def _session(self, episode_id: str) -> Session:
        session = self.sessions.get(episode_id)
        if session is not None:
            return session
        reason = self.sessions.closed_reason(episode_id)
        detail = f": {reason}" if reason else " (unknown id)"
        raise ServiceError(404, f"episode {episode_id!r} is not open{detail}")

    def _sweep_locked(self) -> int:
        if self._closed:
            raise ServiceError(503, "the server is shutting down")
        expired = self.sessions.pop_expired()
        for session in expired:
            self._expire(session, f"idle for more than {self.config.episode_ttl_seconds:g} s")
        return len(expired)

    def _expire(self, session: Session, why: str) -> None:
        """Store or drop an episode whose client is gone (never raises)."""
        episode, eid = session.episode, session.episode_id
        outcome = "dropped" if episode.decisions else "dropped (no decisions to store)"
        if self.config.on_expire == "store" and episode.decisions:
            try:
                n = len(episode.finish(failed=False))
                outcome = f"stored ({n} decisions)"
            except StoreError as exc:
                log.error("expired episode %s could not be stored: %s", eid, exc)
                outcome = f"dropped (storing failed: {exc})"
        episode.finished = True
        self.expired["stored" if outcome.startswith("stored") else "dropped"] += 1
        self.sessions.note_closed(eid, f"expired, {why}; {outcome}")
        log.info("episode %s expired (%s): %s", eid, why, outcome)
