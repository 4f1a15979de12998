"""``jitrl serve``: the library API over HTTP for agents in any language (docs/service.md)."""

from __future__ import annotations

from jitrl.cli.common import app, fail, setup_logging
from jitrl.cli.options import with_settings
from jitrl.memory.base import StoreError
from jitrl.service import ServiceConfig, serve


@app.command("serve")
@with_settings
def serve_command(service: ServiceConfig) -> None:
    """Serve jitrl over HTTP: open episodes, ask for decisions, report rewards, finish."""
    setup_logging(service.log_level)
    try:
        serve(service)
    except (ImportError, StoreError, ValueError, NotImplementedError) as err:
        raise fail(str(err)) from err
