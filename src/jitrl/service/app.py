"""The FastAPI application: routes over an :class:`~jitrl.service.engine.Engine`.

Build it with :func:`create_app` and serve it with any ASGI server (``jitrl serve`` uses
uvicorn with one worker: the learner's memory lives in the process). The OpenAPI schema is at
``/openapi.json`` and interactive documentation at ``/docs``.

With API keys configured (:mod:`jitrl.service.auth`) every request needs one, and the routes
act for its owner only. Handlers are plain functions, so the server runs them in its thread
pool; the engine's lock serialises what touches the learners. A background task started by the
lifespan expires idle episodes every ``sweep_interval_seconds`` (every request also sweeps), and
shutdown handles the episodes still open per ``on_expire`` before closing the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, status
from starlette.concurrency import run_in_threadpool

from jitrl import __version__
from jitrl.memory.postgres_schema import redact_url
from jitrl.method.types import Decision
from jitrl.running.records import decision_record
from jitrl.service.auth import OWNER_SCOPE_KEY, ApiKeyAuth, KeyRing, load_api_keys
from jitrl.service.config import MAX_ID_CHARS, ServiceConfig
from jitrl.service.engine import Engine, ServiceError
from jitrl.service.middleware import BodySizeLimit, CatchUnexpected, install_error_handlers
from jitrl.service.models import (
    DecideRequest,
    DecisionOut,
    DropResponse,
    ErrorResponse,
    FinishRequest,
    FinishResponse,
    HealthResponse,
    OpenRequest,
    OpenResponse,
    RewardRequest,
    RewardResponse,
    StatsResponse,
    limit_error,
)
from jitrl.service.openapi import install_openapi
from jitrl.service.redact import install_log_redaction, redact, register_url_password
from jitrl.service.sessions import Clock

log = logging.getLogger(__name__)

_DESCRIPTION = """Just-In-Time RL over HTTP: open an episode, ask for decisions (candidates with
base logits, or a prompt for the server's model), report rewards, and finish the episode to
store it in memory. Later decisions, in any episode, are corrected by what memory holds."""


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_EPISODE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: _error("the episode is not open (unknown, finished, deleted or expired)"),
    413: _error("request body too large"),
    422: _error("invalid request"),
}
_EpisodeId = Annotated[str, Path(max_length=MAX_ID_CHARS, description="the episode's id")]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _owner(request: Request) -> str | None:
    owner: str | None = request.scope.get(OWNER_SCOPE_KEY)
    return owner


_Engine = Annotated[Engine, Depends(_engine)]
_Owner = Annotated[str | None, Depends(_owner)]

episodes = APIRouter(prefix="/episodes", tags=["episodes"], responses=_EPISODE_ERRORS)
info = APIRouter(tags=["service"])


@episodes.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="open_episode",
    responses={409: _error("the id is open or stored already"), 429: _error("too many open")},
)
def open_episode(engine: _Engine, owner: _Owner, body: OpenRequest | None = None) -> OpenResponse:
    """Open an episode; its id is what the other episode routes take."""
    req = body or OpenRequest()
    session = engine.open(owner, req.task_id, req.episode_id)
    return OpenResponse(
        episode_id=engine.client_id(owner, session.episode_id),
        task_id=req.task_id,
        expires_in_seconds=engine.sessions.expires_in(session),
        lead=session.episode.lead,
    )


@episodes.post(
    "/{episode_id}/decide",
    operation_id="decide",
    responses={
        409: _error("a prompt was sent but the server has no model"),
        502: _error("the language model failed"),
        503: _error("the language model is unavailable; retry"),
    },
)
def decide(
    episode_id: _EpisodeId, body: DecideRequest, engine: _Engine, owner: _Owner
) -> DecisionOut:
    """Correct the candidates' base distribution with memory and choose an action."""
    cfg = engine.config
    problem = limit_error(body, cfg.max_candidates, cfg.max_text_chars)
    if problem is not None:
        raise ServiceError(422, problem)
    step, decision = engine.decide(
        owner,
        episode_id,
        body.state,
        body.candidates,
        body.logits,
        key=body.key,
        prompt=body.prompt.to_prompt() if body.prompt is not None else None,
        propose=body.propose,
    )
    return decision_out(episode_id, step, decision, lambda stored: engine.client_id(owner, stored))


def decision_out(
    episode_id: str, step: int, decision: Decision, client_id: Callable[[str], str] = str
) -> DecisionOut:
    """The response view of a decision (:func:`jitrl.running.records.decision_record`, less run
    fields); ``client_id`` maps a neighbour's stored episode id to the id its owner knows."""
    record = decision_record(0, step, decision, 0.0)
    for run_only in ("episode", "reward"):
        record.pop(run_only)
    for nb in record["neighbours"]:
        nb["episode_id"] = client_id(nb["episode_id"])
    return DecisionOut.model_validate({**record, "episode_id": episode_id})


@episodes.post(
    "/{episode_id}/reward",
    operation_id="reward",
    responses={409: _error("no decision awaits a reward")},
)
def reward(
    episode_id: _EpisodeId, body: RewardRequest, engine: _Engine, owner: _Owner
) -> RewardResponse:
    """Record the reward that followed the latest decision (at most one per decision); a
    reward larger in magnitude than the server's ``max_abs_reward`` is refused (422)."""
    step = engine.reward(owner, episode_id, body.reward)
    return RewardResponse(episode_id=episode_id, step=step, reward=body.reward)


@episodes.post(
    "/{episode_id}/finish",
    operation_id="finish",
    responses={409: _error("already stored"), 503: _error("the store failed; retry")},
)
def finish(
    episode_id: _EpisodeId, engine: _Engine, owner: _Owner, body: FinishRequest | None = None
) -> FinishResponse:
    """Compute the returns and store the episode atomically (all its decisions or none)."""
    req = body or FinishRequest()
    done = engine.finish(owner, episode_id, failed=req.failed)
    exps = done.experiences
    return FinishResponse(
        episode_id=episode_id,
        stored=len(exps) if done.stored else 0,
        returns=[e.ret for e in exps],
        total_reward=sum(e.reward for e in exps),
    )


@episodes.delete("/{episode_id}", operation_id="drop_episode")
def drop(episode_id: _EpisodeId, engine: _Engine, owner: _Owner) -> DropResponse:
    """Close the episode without storing anything."""
    return DropResponse(episode_id=episode_id, discarded=engine.drop(owner, episode_id))


@info.get("/memory/stats", operation_id="memory_stats", responses={503: _error("the store failed")})
def memory_stats(engine: _Engine, owner: _Owner) -> StatsResponse:
    """What the whole store holds (every key's episodes), the caller's index, and the
    service's open and expired episodes."""
    engine.sweep()
    st = engine.stats()
    return StatsResponse(
        experiences=st.experiences,
        episodes=st.episodes,
        tasks=st.tasks,
        states=st.states,
        actions=st.actions,
        mean_return=st.mean_return,
        schema_version=st.schema_version,
        indexed=engine.indexed(owner),
        open_episodes=len(engine.sessions),
        expired_stored=engine.expired["stored"],
        expired_dropped=engine.expired["dropped"],
    )


@info.get("/health", operation_id="health")
def health(engine: _Engine) -> HealthResponse:
    """Liveness (never waits for the learner) and the main settings (credentials masked)."""
    cfg = engine.config
    return HealthResponse(
        status="ok",
        version=__version__,
        model=engine.model.name if engine.model is not None else None,
        memory=redact(redact_url(cfg.memory)),
        open_episodes=len(engine.sessions),
        episode_ttl_seconds=cfg.episode_ttl_seconds,
        on_expire=cfg.on_expire,
        api_keys=engine.keyed,
        max_abs_reward=cfg.max_abs_reward,
    )


async def _sweep_forever(engine: Engine) -> None:
    """Expire idle episodes every ``sweep_interval_seconds`` until cancelled."""
    while True:
        await asyncio.sleep(engine.config.sweep_interval_seconds)
        try:
            await run_in_threadpool(engine.sweep)
        except ServiceError:
            return  # shutting down
        except Exception:
            log.exception("expiring idle episodes failed")


def _lifespan(engine: Engine) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever(engine))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await run_in_threadpool(engine.close)

    return lifespan


def create_app(config: ServiceConfig, *, clock: Clock = time.monotonic) -> FastAPI:
    """The service for ``config``: opens the store and loads the model now.

    The store and model are closed when the application's lifespan ends (server shutdown);
    call ``app.state.engine.close()`` yourself if the app is never served.

    Args:
        config: the service settings.
        clock: monotonic clock for idle expiry (tests inject a fake one).

    Raises:
        StoreError, ValueError, NotImplementedError: the store cannot be opened.
        ValueError: an unknown model spec, or an unreadable or malformed API key file.
    """
    register_url_password(config.memory)
    install_log_redaction()
    keys = load_api_keys(config)
    engine = Engine(config, clock=clock, keyed=bool(keys))
    app = FastAPI(
        title="jitrl",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=_lifespan(engine),
    )
    app.state.engine = engine
    app.add_middleware(CatchUnexpected)  # the innermost of these layers
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    if keys:  # added last: the outermost layer, before the body is even read
        app.add_middleware(ApiKeyAuth, keys=KeyRing(keys))
    install_error_handlers(app)
    app.include_router(episodes)
    app.include_router(info)
    install_openapi(app, api_keys=bool(keys))
    log.info("API keys: %s", f"{len(keys)} configured" if keys else "none (no authentication)")
    return app
