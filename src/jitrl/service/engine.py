"""The service's state and operations, free of HTTP: learners, open episodes and a lock.

:class:`Engine` wraps the :class:`~jitrl.service.tenants.Learners` (one store, one optional
model, one :class:`~jitrl.method.learner.JitRL` per API key or one for everybody) and the
:class:`~jitrl.service.sessions.SessionRegistry` of open episodes. uvicorn runs request handlers
concurrently in a thread pool, while a learner (its index, generator and model) is not
thread-safe, so every operation that touches a learner or an episode runs under one re-entrant
lock. Operations fail with :class:`ServiceError`, which carries the HTTP status.

Every operation takes the request's ``owner`` (``None`` without API keys) and the client's
episode id; an episode opened by another owner is simply not found (404), since it is stored
and registered under its owner's namespace.

One episode never harms the others: a reward outside ``max_abs_reward`` is refused before it is
recorded (so returns stay finite), and an episode that cannot be stored when it expires or at
shutdown is logged and counted, and the others are still handled (:attr:`Engine.unsaved`).
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
from jitrl.method.types import Decision, Experience
from jitrl.service.config import ServiceConfig
from jitrl.service.redact import redact
from jitrl.service.sessions import Clock, RegistryFull, Session, SessionRegistry
from jitrl.service.tenants import Learner, Learners, OwnerRequired, client_id, stored_id

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
        keyed: API keys are configured: one learner and namespace per owner.

    Raises:
        StoreError, ValueError, NotImplementedError: the store cannot be opened.
        ValueError: an unknown model spec.
    """

    def __init__(
        self, config: ServiceConfig, *, clock: Clock = time.monotonic, keyed: bool = False
    ) -> None:
        self.config = config
        store = open_store(config.memory)
        model: LanguageModel | None = None
        try:
            if config.model:
                model = load_model(config.model, n_threads=config.model_threads)
            self.learners = Learners(config, store, model, keyed=keyed, clock=clock)
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
        self.unsaved: list[str] = []
        """Stored ids of the episodes open at shutdown that ``on_expire=store`` could not store."""
        self._lock = threading.RLock()
        self._closed = False

    @property
    def keyed(self) -> bool:
        """API keys are configured."""
        return self.learners.keyed

    def indexed(self, owner: str | None) -> int:
        """Experiences in ``owner``'s in-memory index."""
        with self._lock:
            return len(self._learner(owner).jit.index)

    def open(self, owner: str | None, task_id: str, episode_id: str | None) -> Session:
        """Open an episode (a fresh random id when ``episode_id`` is ``None``)."""
        with self._lock:
            self._sweep_locked()
            learner = self._learner(owner)
            eid = episode_id or uuid.uuid4().hex
            sid = stored_id(owner, eid)
            if sid in self.sessions:
                raise ServiceError(409, f"episode {eid!r} is already open")
            if self.learners.store.has_episode(sid):
                raise ServiceError(409, f"episode {eid!r} is already stored; use a new id")
            self.learners.follow(learner)
            try:
                return self.sessions.add(learner.jit.episode(task_id, sid), owner)
            except RegistryFull as exc:
                raise ServiceError(
                    429, f"too many open episodes ({exc}); finish or delete some first"
                ) from exc

    def decide(
        self,
        owner: str | None,
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
            session = self._session(owner, episode_id)
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

    def reward(self, owner: str | None, episode_id: str, reward: float) -> int:
        """Record the reward that followed the latest decision; returns the decision's step.

        A reward outside ``[-max_abs_reward, max_abs_reward]`` is refused (422) and not
        recorded: with rewards and penalties so bounded and ``gamma <= 1`` every return stays
        finite (:data:`jitrl.service.config.HARD_MAX_ABS_REWARD`), so the episode can always
        be finished.
        """
        with self._lock:
            self._sweep_locked()
            session = self._session(owner, episode_id)
            self._check_reward(reward)
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

    def finish(self, owner: str | None, episode_id: str, *, failed: bool) -> Finished:
        """Compute returns and store the episode atomically; it is then closed. If nothing was
        written (the store failed, or the episode cannot be stored) it stays open: the client
        may retry or delete it."""
        with self._lock:
            self._sweep_locked()
            session = self._session(owner, episode_id)
            sid = session.episode_id
            try:
                exps = session.episode.finish(failed=failed)
            except DuplicateEpisodeError as exc:
                self.sessions.remove(sid, "closed: an episode with this id was stored")
                raise ServiceError(409, f"episode {episode_id!r} is already stored") from exc
            except StoreError as exc:
                session.episode.finished = False
                raise ServiceError(503, f"the store failed, nothing was written: {exc}") from exc
            except ValueError as exc:
                session.episode.finished = False
                raise ServiceError(422, f"the episode cannot be stored: {exc}") from exc
            except BaseException:
                session.episode.finished = False
                raise
            self.sessions.remove(sid, "finished")
            return Finished(exps, stored=bool(exps))

    def drop(self, owner: str | None, episode_id: str) -> int:
        """Close an episode without storing it; returns how many decisions were discarded."""
        with self._lock:
            self._sweep_locked()
            session = self._session(owner, episode_id)
            session.episode.finished = True
            self.sessions.remove(session.episode_id, "deleted by the client (nothing stored)")
            return len(session.episode.decisions)

    def client_id(self, owner: str | None, stored: str) -> str:
        """The id by which ``owner`` knows a stored episode (neighbours' ``episode_id``)."""
        return client_id(owner, stored)

    def stats(self) -> StoreStats:
        """The store's statistics (the whole store, every owner's episodes)."""
        store = self.learners.store
        try:
            return store.stats()
        except StoreError as exc:
            raise ServiceError(503, f"the store cannot be read: {exc}") from exc

    def sweep(self) -> int:
        """Expire the episodes idle for longer than the TTL; returns how many expired."""
        with self._lock:
            return self._sweep_locked()

    def close(self) -> None:
        """Handle still-open episodes per ``on_expire``, then close the store and model.

        An episode that cannot be stored is logged and listed in :attr:`unsaved`; the others
        are still handled.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for session in self.sessions.pop_all():
                if not self._expire(session, "the server shut down"):
                    self.unsaved.append(session.episode_id)
            if self.unsaved:
                log.error(
                    "%d open episode(s) could not be stored at shutdown: %s",
                    len(self.unsaved),
                    ", ".join(self.unsaved),
                )
            try:
                self.learners.close()
            finally:
                if self.model is not None:
                    self.model.close()

    def _learner(self, owner: str | None) -> Learner:
        try:
            return self.learners.get(owner)
        except OwnerRequired as exc:
            raise ServiceError(401, str(exc)) from exc

    def _check_reward(self, reward: float) -> None:
        bound = self.config.max_abs_reward
        if not (math.isfinite(reward) and abs(reward) <= bound):
            raise ServiceError(
                422,
                f"reward {reward:g} is out of range: this server accepts rewards in "
                f"[-{bound:g}, {bound:g}] (max_abs_reward), so that returns stay finite",
            )

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

    def _session(self, owner: str | None, episode_id: str) -> Session:
        sid = stored_id(owner, episode_id)
        session = self.sessions.get(sid)
        if session is not None:
            return session
        reason = self.sessions.closed_reason(sid)
        detail = f": {reason}" if reason else " (unknown id)"
        raise ServiceError(404, f"episode {episode_id!r} is not open{detail}")

    def _sweep_locked(self) -> int:
        if self._closed:
            raise ServiceError(503, "the server is shutting down")
        expired = self.sessions.pop_expired()
        for session in expired:
            self._expire(session, f"idle for more than {self.config.episode_ttl_seconds:g} s")
        return len(expired)

    def _expire(self, session: Session, why: str) -> bool:
        """Store or drop an episode whose client is gone; never raises.

        Returns ``False`` only when ``on_expire=store`` could not store it (logged): whatever
        failed with this episode, the caller goes on with the others.
        """
        episode, eid = session.episode, session.episode_id
        outcome = "dropped" if episode.decisions else "dropped (no decisions to store)"
        saved = True
        if self.config.on_expire == "store" and episode.decisions:
            try:
                n = len(episode.finish(failed=False))
                outcome = f"stored ({n} decisions)"
            except Exception as exc:  # one bad episode must not stop the sweep or shutdown
                log.error(
                    "episode %s could not be stored (%s): %s: %s",
                    eid,
                    why,
                    type(exc).__name__,
                    redact(str(exc)),
                )
                outcome, saved = f"dropped (storing failed: {type(exc).__name__})", False
        episode.finished = True
        self.expired["stored" if outcome.startswith("stored") else "dropped"] += 1
        self.sessions.note_closed(eid, f"expired, {why}; {outcome}")
        log.info("episode %s expired (%s): %s", eid, why, outcome)
        return saved
