"""Run the service with uvicorn: what ``jitrl serve`` calls."""

from __future__ import annotations

from jitrl.service.config import ServiceConfig

INSTALL_HINT = "the HTTP service needs the 'serve' extra: pip install 'jitrl[serve]'"


def serve(config: ServiceConfig) -> None:
    """Serve ``config`` until interrupted (Ctrl-C or SIGTERM), in this process.

    One uvicorn worker: the learner's memory index lives in the process, so more workers
    would each learn only from their own episodes. Open episodes are handled per
    ``on_expire`` at shutdown, then the store is closed.

    Raises:
        ImportError: fastapi or uvicorn is not installed (message says how to install them).
        StoreError, ValueError, NotImplementedError: the store or model cannot be opened
            (raised before the socket is bound).
    """
    try:
        import uvicorn

        from jitrl.service.app import create_app
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    app = create_app(config)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level.lower(),
        workers=1,
    )
