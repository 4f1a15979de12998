"""jitrl as an HTTP service (``jitrl serve``): FastAPI routes over one learner and its memory.

Any agent, in any language, can use the method through HTTP::

    POST   /episodes                 {"task_id": "...", "episode_id": optional} -> episode id
    POST   /episodes/{id}/decide     {"state", "key"?, "candidates", "logits" | "prompt"}
    POST   /episodes/{id}/reward     {"reward": r}
    POST   /episodes/{id}/finish     {"failed": false} -> stored atomically
    DELETE /episodes/{id}            drop without storing
    GET    /memory/stats, /health, /openapi.json, /docs

With API keys configured (``api_keys``, ``JITRL_API_KEYS`` or ``api_keys_file``) every request
needs ``Authorization: Bearer <key>``, and each key sees only its own episodes and memory.

This package imports only :class:`ServiceConfig` and :func:`serve` eagerly; the FastAPI
application (:func:`jitrl.service.app.create_app`) needs the ``serve`` extra. ``docs/service.md``
has a walk-through.
"""

from jitrl.service.config import ON_EXPIRE_CHOICES, OnExpire, ServiceConfig
from jitrl.service.server import serve

__all__ = ["ON_EXPIRE_CHOICES", "OnExpire", "ServiceConfig", "serve"]
