"""Run the service with uvicorn: what ``jitrl serve`` calls."""

from __future__ import annotations

import ipaddress
import logging

from jitrl.memory.base import StoreError
from jitrl.service.config import ServiceConfig

INSTALL_HINT = "the HTTP service needs the 'serve' extra: pip install 'jitrl[serve]'"

log = logging.getLogger(__name__)


class EpisodesNotStored(StoreError):
    """Episodes open at shutdown could not be stored (``on_expire=store``); ``jitrl serve``
    then exits with status 2."""

    def __init__(self, episode_ids: list[str]) -> None:
        shown = ", ".join(episode_ids[:10]) + (" ..." if len(episode_ids) > 10 else "")
        super().__init__(
            f"{len(episode_ids)} open episode(s) could not be stored at shutdown "
            f"(see the log): {shown}"
        )
        self.episode_ids = episode_ids


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(config: ServiceConfig) -> None:
    """Serve ``config`` until interrupted (Ctrl-C or SIGTERM), in this process.

    One uvicorn worker: the learner's memory index lives in the process, so more workers
    would each learn only from their own episodes. Open episodes are handled per
    ``on_expire`` at shutdown (each one on its own: one that fails does not stop the others),
    then the store is closed.

    Raises:
        ImportError: fastapi or uvicorn is not installed (message says how to install them).
        StoreError, ValueError, NotImplementedError: the store or model cannot be opened, or
            the API key file is unusable (raised before the socket is bound).
        EpisodesNotStored: after a shutdown in which some open episodes could not be stored
            (a :class:`StoreError`: ``jitrl serve`` exits with status 2).
    """
    try:
        import uvicorn

        from jitrl.service.app import create_app
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    app = create_app(config)
    if not app.state.engine.keyed and not is_loopback(config.host):
        log.warning(
            "listening on %s without API keys: anyone who can reach this port can read and "
            "write every episode (set api_keys_file, or keep the server on 127.0.0.1)",
            config.host,
        )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level.lower(),
        workers=1,
    )
    unsaved: list[str] = app.state.engine.unsaved
    if unsaved:
        raise EpisodesNotStored(unsaved)
