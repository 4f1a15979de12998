"""``jitrl serve``: the library API over HTTP for agents in any language (docs/service.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from jitrl.cli.common import DEFAULT_MEMORY, app, fail, setup_logging
from jitrl.cli.run import _method_config
from jitrl.memory.base import StoreError
from jitrl.service import ON_EXPIRE_CHOICES, ServiceConfig, serve


@app.command("serve")
def serve_command(
    memory: Annotated[str, typer.Option(help="experience store (SQLite file or URL)")] = (
        DEFAULT_MEMORY
    ),
    model: Annotated[
        str | None, typer.Option(help="model that scores prompts; none: clients send logits")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="model threads")] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 8000,
    episode_ttl: Annotated[
        float, typer.Option(help="seconds before an idle open episode expires")
    ] = 900.0,
    on_expire: Annotated[
        str, typer.Option(help=f"what an expired episode becomes: {'|'.join(ON_EXPIRE_CHOICES)}")
    ] = "store",
    max_body_bytes: Annotated[int, typer.Option(min=1, help="largest request body")] = 1_000_000,
    max_candidates: Annotated[int, typer.Option(min=1, help="most candidates per decision")] = 256,
    max_open_episodes: Annotated[int, typer.Option(min=1, help="most open episodes")] = 1000,
    follow_store: Annotated[
        bool, typer.Option(help="index episodes other processes store in the same memory")
    ] = True,
    seed: Annotated[int, typer.Option(min=0, help="seed of sampled choices")] = 0,
    beta: Annotated[float | None, typer.Option(help="KL strength beta")] = None,
    k: Annotated[int | None, typer.Option(help="neighbours per state")] = None,
    gamma: Annotated[float | None, typer.Option(help="discount factor")] = None,
    alpha: Annotated[float | None, typer.Option(help="optimism for untried actions")] = None,
    selection: Annotated[str | None, typer.Option(help="greedy | sample")] = None,
    log_level: Annotated[str, typer.Option(help="logging level")] = "INFO",
) -> None:
    """Serve jitrl over HTTP: open episodes, ask for decisions, report rewards, finish."""
    setup_logging(log_level)
    try:
        config = ServiceConfig(
            memory=memory,
            model=model,
            model_threads=threads,
            host=host,
            port=port,
            episode_ttl_seconds=episode_ttl,
            on_expire=on_expire,  # type: ignore[arg-type]  # validated by ServiceConfig
            max_body_bytes=max_body_bytes,
            max_candidates=max_candidates,
            max_open_episodes=max_open_episodes,
            follow_store=follow_store,
            seed=seed,
            log_level=log_level,
            jitrl=_method_config(beta, k, gamma, alpha, selection),
        )
        serve(config)
    except (ImportError, StoreError, ValueError, NotImplementedError) as err:
        raise fail(str(err)) from err
