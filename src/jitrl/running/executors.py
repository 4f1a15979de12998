"""Where parallel work runs: worker processes on this machine, or tasks on a Ray cluster.

Both backends run picklable functions on picklable arguments with at most ``workers`` of them at
a time, and hand back each result or the exception it raised::

    with closing(open_executor(ExecutionConfig(backend="ray", workers=2))) as ex:
        handles = [ex.submit(play, job) for job in jobs]
        for handle in ex.as_completed(handles):
            ...

``jitrl compare`` runs one job per (environment, agent, seed) this way and ``jitrl run
--workers N`` plays its episodes in rounds of N. Ray (``pip install 'jitrl[ray]'``) starts a
local instance with ``workers`` CPUs unless :attr:`ExecutionConfig.ray_address` names a cluster;
on a cluster, the run folder must be on a file system every node sees, and the memory a
PostgreSQL store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

Backend = Literal["process", "ray"]
BACKENDS: tuple[Backend, ...] = ("process", "ray")
RAY_HINT = "the ray backend needs Ray: pip install 'jitrl[ray]'"


@dataclass(frozen=True)
class ExecutionConfig:
    """How parallel work is run."""

    backend: Backend = "process"
    """``process``: a pool of worker processes here; ``ray``: Ray tasks."""
    workers: int = 1
    """Tasks running at the same time (local Ray gets this many CPUs)."""
    ray_address: str | None = None
    """Ray cluster to join (``ray://host:10001`` or ``auto``); ``None``: start a local Ray."""
    poll_seconds: float = 2.0
    """How often waiting wakes up to report progress."""
    object_store_mb: int = 256
    """Shared-memory object store of a local Ray (results are small; Ray's default is 30 % of
    RAM)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose from {', '.join(BACKENDS)}")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.poll_seconds <= 0:
            raise ValueError("poll_seconds must be > 0")
        if self.object_store_mb < 80:
            raise ValueError("object_store_mb must be >= 80 (Ray's minimum)")
        if self.ray_address is not None and self.backend != "ray":
            raise ValueError("a cluster address needs the ray backend")


class Executor(Protocol):
    """Runs functions in parallel; ``submit`` returns a handle, results come back in any order."""

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> object:
        """Start ``fn(arg)``; returns its handle."""
        ...

    def as_completed(self, handles: Sequence[object]) -> Iterator[tuple[object, Any]]:
        """Yield ``(handle, result)`` as tasks end; ``result`` is the exception of a failed one.
        Yields ``(None, None)`` every ``poll_seconds`` while nothing ends (for progress)."""
        ...

    def close(self) -> None:
        """Stop the workers (use the executor in ``contextlib.closing``)."""
        ...


def _init_worker(level: int) -> None:
    logging.basicConfig(level=level, format="%(processName)s %(message)s")


class ProcessExecutor:
    """A pool of ``workers`` processes on this machine."""

    def __init__(self, config: ExecutionConfig) -> None:
        self.config = config
        level = logging.getLogger().getEffectiveLevel()
        self._pool = ProcessPoolExecutor(
            config.workers, initializer=_init_worker, initargs=(level,)
        )

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> object:
        return self._pool.submit(fn, arg)

    def as_completed(self, handles: Sequence[object]) -> Iterator[tuple[object, Any]]:
        pending: set[Future[Any]] = {h for h in handles if isinstance(h, Future)}
        while pending:
            done, pending = wait(pending, self.config.poll_seconds, FIRST_COMPLETED)
            if not done:
                yield None, None
            for fut in done:
                err = fut.exception()
                yield fut, err if err is not None else fut.result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(RAY_HINT) from err
    return ray


def _ray_call(fn: Callable[[Any], Any], arg: Any, level: int) -> Any:
    """Body of every Ray task: the driver's log level, then ``fn(arg)``."""
    logging.basicConfig(level=level, format="ray %(process)d %(message)s")
    logging.getLogger().setLevel(level)
    return fn(arg)


FORWARDED_ENV_PREFIXES = ("JITRL_", "OPENAI_")
"""Environment variables a cluster's workers get from this process (caches, API keys)."""


def _init_args(config: ExecutionConfig) -> dict[str, Any]:
    """``ray.init`` arguments: a new local Ray of ``workers`` CPUs, or the cluster named."""
    if config.ray_address is None:  # "local": never attach to a cluster RAY_ADDRESS names
        return {
            "address": "local",
            "num_cpus": config.workers,
            "object_store_memory": config.object_store_mb * 2**20,
            "include_dashboard": False,
            "configure_logging": False,
        }
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    return {
        "address": config.ray_address,
        "runtime_env": {"env_vars": env},
        "configure_logging": False,
    }


class RayExecutor:
    """Ray tasks (one CPU each), at most ``workers`` in flight; a local Ray is started and
    stopped here, a cluster given by ``ray_address`` is joined and left."""

    def __init__(self, config: ExecutionConfig) -> None:
        ray = _ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls from here
        self.config = config
        self._ray = ray
        self._owned = not ray.is_initialized()
        if self._owned:
            try:
                ray.init(**_init_args(config))
            except (ValueError, ConnectionError, RuntimeError) as err:
                where = config.ray_address or "a local Ray"
                raise RuntimeError(f"cannot start or join {where}: {err}") from err
        self._task = ray.remote(num_cpus=1, max_retries=0)(_ray_call)
        self._level = logging.getLogger().getEffectiveLevel()
        self._queue: list[tuple[object, Callable[[Any], Any], Any]] = []
        self._running: dict[Any, object] = {}

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> object:
        handle = object()
        self._queue.append((handle, fn, arg))
        return handle

    def _start(self) -> None:
        while self._queue and len(self._running) < self.config.workers:
            handle, fn, arg = self._queue.pop(0)
            self._running[self._task.remote(fn, arg, self._level)] = handle

    def as_completed(self, handles: Sequence[object]) -> Iterator[tuple[object, Any]]:
        wanted = set(map(id, handles))
        left = len(wanted)
        while left:
            self._start()
            refs = list(self._running)
            done, _ = self._ray.wait(refs, num_returns=1, timeout=self.config.poll_seconds)
            if not done:
                yield None, None
            for ref in done:
                handle = self._running.pop(ref)
                try:
                    result: Any = self._ray.get(ref)
                except Exception as err:  # the task's own error, re-raised by Ray
                    result = getattr(err, "cause", None) or err
                if id(handle) in wanted:
                    left -= 1
                yield handle, result

    def close(self) -> None:
        self._queue.clear()
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._owned:
            self._ray.shutdown()


def open_executor(config: ExecutionConfig) -> ProcessExecutor | RayExecutor:
    """The executor ``config.backend`` names (Ray is imported only here)."""
    if config.backend == "ray":
        return RayExecutor(config)
    return ProcessExecutor(config)
