"""Whose memory a request uses: one learner per API key over one shared store and model.

Without API keys the service has one learner over its namespace of the store (``--namespace``,
``default`` unless set), as ``jitrl run`` has. With keys, each owner (:func:`jitrl.service.auth.
owner_of`, a fingerprint of the key) gets its own :class:`~jitrl.method.learner.JitRL` whose
*namespace* is the owner: every episode it stores carries that namespace and retrieval sees
that namespace only, plus the namespaces the server opts every key into (``--read-namespaces``,
e.g. a team's ``shared`` memory written by ``jitrl run --namespace shared``). Episode ids are
unique in a store, so an owner's episode is stored as ``<owner>/<client's id>`` (a client's id
cannot contain ``/``): two keys may use the same id without meeting, and ownership survives
restarts and holds across servers sharing one store.

The learners share the store, the model and the settings; only the in-memory index, the
calibration and the generator are per owner.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from jitrl.llm import LanguageModel
from jitrl.memory.base import ExperienceStore
from jitrl.method.learner import JitRL
from jitrl.service.config import ServiceConfig
from jitrl.service.sessions import Clock

log = logging.getLogger(__name__)

NAMESPACE_SEPARATOR = "/"
"""Between the owner and the client's episode id in a stored id (never in a client's id)."""


def stored_id(owner: str | None, episode_id: str) -> str:
    """The id under which ``owner``'s episode ``episode_id`` is stored."""
    return episode_id if owner is None else f"{owner}{NAMESPACE_SEPARATOR}{episode_id}"


def client_id(owner: str | None, stored: str) -> str:
    """The id that ``owner`` knows a stored episode by (the inverse of :func:`stored_id`)."""
    if owner is None:
        return stored
    return stored.removeprefix(f"{owner}{NAMESPACE_SEPARATOR}")


class OwnerRequired(LookupError):
    """A request without an owner reached a service that has API keys."""


@dataclass
class Learner:
    """One owner's learner.

    Attributes:
        owner: the owner (``None``: the single learner of a service without keys).
        jit: the learner; its index holds the owner's episodes only.
        synced: clock time of the latest look at the store (``follow_store``).
    """

    owner: str | None
    jit: JitRL
    synced: float


class Learners:
    """The learners of a service, built on first use, over one store and one model.

    Args:
        config: the service settings.
        store: the open store (closed by :meth:`close`).
        model: the language model, shared by every learner (not closed here).
        keyed: API keys are configured: one learner per owner; otherwise one for everybody.
        clock: monotonic clock.
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: ExperienceStore,
        model: LanguageModel | None,
        *,
        keyed: bool,
        clock: Clock,
    ) -> None:
        self.config = config
        self.store = store
        self.model = model
        self.keyed = keyed
        self._clock = clock
        self._by_owner: dict[str | None, Learner] = {}
        if not keyed:
            jit = JitRL(store, config.jitrl, model=model, seed=config.seed)
            self._by_owner[None] = Learner(None, jit, -math.inf)

    def get(self, owner: str | None) -> Learner:
        """``owner``'s learner, built from the owner's stored episodes the first time.

        Raises:
            OwnerRequired: ``owner`` is ``None`` but the service has keys.
        """
        learner = self._by_owner.get(owner)
        if learner is not None:
            return learner
        if owner is None:  # without keys the shared learner exists: keys are configured
            raise OwnerRequired("this server needs an API key")
        jitrl = self.config.jitrl
        scope = replace(jitrl.scope, namespace=owner)
        jit = JitRL(
            self.store, replace(jitrl, scope=scope), model=self.model, seed=self.config.seed
        )
        learner = Learner(owner, jit, self._clock())
        self._by_owner[owner] = learner
        log.info("memory of %s: %d records indexed", owner, len(jit.index))
        return learner

    def follow(self, learner: Learner) -> None:
        """Index what other processes stored for the learner's owner, at most once per
        ``follow_store_seconds``."""
        now = self._clock()
        cfg = self.config
        if not cfg.follow_store or now - learner.synced < cfg.follow_store_seconds:
            return
        learner.synced = now
        added = learner.jit.sync()
        if added:
            log.info("memory: %d records stored by other processes indexed", added)

    def close(self) -> None:
        """Close the store; without keys the shared learner first saves its candidate index
        beside the store (per-owner indexes are rebuilt from the store at the next start)."""
        shared = self._by_owner.get(None)
        if shared is not None:
            shared.jit.close()
        else:
            self.store.close()
