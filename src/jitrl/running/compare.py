"""Comparisons: several agents × environments × seeds, in parallel, resumable.

Every (environment, agent, seed) job plays into its own run folder
``OUT/runs/<env>/<agent>/seed<S>/`` with its own fresh store (``memory.sqlite``, or a schema of
its own in the PostgreSQL database ``memory`` names; optionally started from a copy of
``warm_from``). A job first plays its learning episodes, then, with ``test_episodes``, episodes
on unseen test instances with its memory frozen. Jobs run in worker processes or as Ray tasks
(:mod:`jitrl.running.executors`); the backend changes where they run, not what they play. A job
that was interrupted resumes where it stopped: finished episodes are kept and not replayed.
``OUT/compare.json`` records the settings; the report (:mod:`jitrl.analysis.report`) is rendered
from the run folders alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jitrl.agents import agent_spec
from jitrl.envs.suites import expand_envs
from jitrl.fileio import atomic_write_text, count_lines
from jitrl.memory import PostgresConfig, open_store
from jitrl.memory.base import ExperienceStore
from jitrl.memory.jsonl import add_episodes, group_episodes
from jitrl.memory.postgres_schema import redact_url
from jitrl.running.build import open_player
from jitrl.running.executors import ExecutionConfig, open_executor
from jitrl.running.rounds import CLUSTER_MEMORY_HINT
from jitrl.running.run_folder import RunWriter, catch_up, run_episodes
from jitrl.running.spec import CompareSpec, RunSpec

log = logging.getLogger(__name__)

SCHEMA_PREFIX = "jitrl_"
"""Prefix of the per-job schemas in a PostgreSQL ``memory``."""
SETTINGS_FILE = "compare.json"
SEED_STRIDE = 100_003
"""Seed ``k`` of a comparison starts its episode seeds at ``1 + (k - 1) * SEED_STRIDE``, so the
instance streams of different seeds do not overlap (episode ``i`` uses ``start + i``)."""
FIXED_SETTINGS = (
    "envs",
    "max_steps",
    "model",
    "warm_from",
    "memory",
    "method",
    "privileged_key",
    "view_key",
)
"""Settings a rerun into the same folder must keep (agents, seeds and episodes may grow)."""


@dataclass(frozen=True)
class Price:
    """API prices in US dollars per million tokens."""

    input: float
    """Price of a million input (prompt and scored-candidate) tokens."""
    output: float
    """Price of a million generated tokens."""

    def __post_init__(self) -> None:
        if not (0 <= self.input < float("inf") and 0 <= self.output < float("inf")):
            raise ValueError("prices must be finite and >= 0")

    @classmethod
    def parse(cls, text: str) -> Price:
        """``"IN"`` (both) or ``"IN,OUT"``, dollars per million tokens."""
        parts = text.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError as err:
            raise ValueError(f"bad price {text!r}: expected IN or IN,OUT in $/1M tokens") from err
        if len(values) not in (1, 2):
            raise ValueError(f"bad price {text!r}: expected IN or IN,OUT in $/1M tokens")
        return cls(values[0], values[-1])


def check_compare(spec: CompareSpec, execution: ExecutionConfig) -> dict[str, str]:
    """Validate a comparison before anything runs; returns its environments (slug -> spec).

    Raises:
        ValueError: an unknown agent or suite, a bad price, a non-PostgreSQL ``memory``, or a
            cluster without one.
        FileNotFoundError: a ``warm_from`` store that does not exist.
    """
    for name in spec.agent_names:
        agent_spec(name)
    if spec.price is not None:
        Price.parse(spec.price)
    if spec.warm_from is not None and not Path(spec.warm_from).is_file():
        raise FileNotFoundError(f"--warm-from store not found: {spec.warm_from}")
    if spec.memory is not None and not spec.memory.lower().startswith("postgres"):
        raise ValueError(
            "--memory takes a postgresql:// URL (without it every job has its own "
            "memory.sqlite in its run folder)"
        )
    if execution.ray_address is not None and spec.memory is None:
        raise ValueError(CLUSTER_MEMORY_HINT)
    return expand_envs(spec.env, spec.game_seed)


@dataclass(frozen=True)
class Job:
    """One (environment, agent, seed) run of a comparison."""

    slug: str
    """The environment's name in the comparison."""
    run: RunSpec
    """What the job plays (``run.memory`` is unused: see :meth:`open_store`)."""
    folder: str
    """The job's run folder."""
    threads: int
    """Model threads of the worker that plays it."""
    test_episodes: int = 0
    """Episodes on unseen test instances after learning, memory frozen."""
    warm_from: str | None = None
    """Store the job's memory starts from."""
    server: str | None = None
    """PostgreSQL URL holding the job's schema; ``None``: ``memory.sqlite`` in the folder."""
    comparison: str = ""
    """Id of the comparison (``compare.json``); names the job's PostgreSQL schema."""

    @property
    def label(self) -> int:
        """The seed's number in the comparison (1..K)."""
        return 1 + (self.run.seed - 1) // SEED_STRIDE

    @property
    def episodes(self) -> int:
        """All episodes of the job: learning, then test."""
        return self.run.episodes + self.test_episodes

    def settings(self) -> dict[str, Any]:
        """What the run folder's ``summary.json`` records (no password)."""
        out = asdict(self.run)
        out.pop("memory")
        out.update(slug=self.slug, test_episodes=self.test_episodes, warm_from=self.warm_from)
        out["server"] = redact_url(self.server) if self.server else None
        return out

    def open_store(self) -> ExperienceStore:
        """The job's own store: ``memory.sqlite`` in its folder, or its schema in ``server``.

        The schema's name comes from the comparison's id, kept in ``compare.json`` (two
        comparisons never share a store; a moved output folder keeps its stores; a deleted one
        starts new ones), or from the run folder's path when there is no id.
        """
        if self.server is None:
            return open_store(Path(self.folder) / "memory.sqlite")
        where = self.comparison or str(Path(self.folder).resolve())
        digest = hashlib.sha256(where.encode()).hexdigest()[:12]
        name = f"{self.run.agent}_s{self.label}_{self.slug}".lower()
        schema = f"{SCHEMA_PREFIX}{digest}_{re.sub(r'[^a-z0-9_]+', '_', name)}"[:63]
        return open_store(self.server, PostgresConfig(schema=schema))

    def done(self) -> int:
        """Episodes already finished in the run folder."""
        return count_lines(Path(self.folder) / "episodes.jsonl")


def make_jobs(spec: CompareSpec, envs: dict[str, str], out: Path, threads: int) -> list[Job]:
    """All jobs, seeds in the outer loop so every agent makes progress early."""
    out = out.resolve()  # workers may run elsewhere (another working directory, a cluster)
    saved = out / SETTINGS_FILE
    settings = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
    comparison = str(settings.get("id", ""))
    fields = {f: getattr(spec, f) for f in ("model", "episodes", "max_steps", "threads")}
    return [
        Job(
            slug=slug,
            run=RunSpec(
                **fields,
                privileged_key=spec.privileged_key,
                view_key=spec.view_key,
                method=spec.method,
                env=env,
                agent=agent,
                seed=1 + (seed - 1) * SEED_STRIDE,
            ),
            folder=str(out / "runs" / slug / agent / f"seed{seed}"),
            threads=threads,
            test_episodes=spec.test_episodes,
            warm_from=spec.warm_from if agent_spec(agent).keeps_memory else None,
            server=spec.memory,
            comparison=comparison,
        )
        for seed in range(1, spec.seeds + 1)
        for slug, env in envs.items()
        for agent in spec.agent_names
    ]


def _warm_store(store: ExperienceStore, warm_from: str) -> None:
    """Fill a fresh store with a copy of ``warm_from``'s episodes (once: before any episode)."""
    src = open_store(warm_from, create=False, read_only=True)
    try:
        result = add_episodes(store, group_episodes(src))
        log.info("warm start from %s: %s", warm_from, result)
    finally:
        src.close()


def _job_store(job: Job, writer: RunWriter) -> ExperienceStore:
    """The job's store, warm-started once; refuses a store that already holds another run."""
    store = job.open_store()
    try:
        if writer.next_index == 0 and len(store) == 0 and job.warm_from:
            _warm_store(store, job.warm_from)
        elif writer.next_index == 0 and len(store) > 0 and not job.warm_from:
            raise RuntimeError(
                f"{job.folder} has no episode but its store already holds {len(store)} records "
                "(the memory of another run): use a new --out folder or another database"
            )
    except BaseException:
        store.close()
        raise
    return store


def run_job(job: Job) -> dict[str, Any]:
    """Play the job's missing episodes (runs in a worker). Returns its final scores."""
    with RunWriter(Path(job.folder), job.settings()) as writer:
        if writer.next_index < job.episodes:
            _play_missing(job, writer)
    return {
        "slug": job.slug,
        "agent": job.run.agent,
        "seed": job.label,
        "scores": [r.score for r in writer.results],
    }


def _play_missing(job: Job, writer: RunWriter) -> None:
    """Play what the folder lacks: the rest of the learning episodes, then the test ones."""
    store = _job_store(job, writer) if agent_spec(job.run.agent).keeps_memory else None
    if store is not None:
        writer.reconcile(store)
    with open_player(job.run, threads=job.threads, store=store, out=writer.out) as player:
        catch_up(player.agent, writer)
        learn = job.run.episodes - writer.next_index
        if learn > 0:
            run_episodes(player.env, player.agent, writer, episodes=learn, seed=job.run.seed)
        test = job.episodes - writer.next_index
        if test > 0:
            run_episodes(
                player.env, player.agent, writer, episodes=test, seed=job.run.seed, phase="test"
            )


def run_jobs(
    jobs: Iterable[Job],
    execution: ExecutionConfig,
    on_progress: Callable[[int], None] | None = None,
    on_job: Callable[[dict[str, Any]], None] | None = None,
) -> list[str]:
    """Run jobs in parallel as ``execution`` says; returns the errors of jobs that failed (the
    others go on).

    ``on_progress`` gets the total of finished episodes every few seconds; ``on_job`` each
    finished job's result.
    """
    pending = [j for j in jobs if j.done() < j.episodes]
    errors: list[str] = []
    with closing(open_executor(execution)) as pool:
        handles = {pool.submit(run_job, j): j for j in pending}
        for handle, result in pool.as_completed(list(handles)):
            if handle is not None:
                job = handles[handle]
                if isinstance(result, BaseException):  # a broken job must not stop the others
                    name = f"{job.slug}/{job.run.agent}/seed{job.label}"
                    msg = f"{name}: {type(result).__name__}: {result}"
                    log.error("job failed: %s", msg)
                    errors.append(msg)
                elif on_job is not None:
                    on_job(result)
            if on_progress is not None:
                on_progress(sum(j.done() for j in pending))
    return errors


def compare_settings(
    spec: CompareSpec, envs: dict[str, str], execution: ExecutionConfig
) -> dict[str, Any]:
    """The JSON form written to ``compare.json`` (no password)."""
    price = Price.parse(spec.price) if spec.price else None
    out = asdict(spec)
    out.update(
        envs=envs,
        agents=list(spec.agent_names),
        seeds=list(range(1, spec.seeds + 1)),
        memory=redact_url(spec.memory) if spec.memory else None,
        price=asdict(price) if price else None,
        execution=asdict(execution),
        id=uuid.uuid4().hex[:12],  # a new comparison's id (write_settings keeps an old one)
    )
    return out


def write_settings(settings: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write ``compare.json``; a rerun into the same folder must run the same experiment.

    Returns the settings written (agents and seeds are the union with an earlier run's).
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / SETTINGS_FILE
    settings = json.loads(json.dumps(settings))  # as it reads back (tuples become lists)
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in FIXED_SETTINGS if old.get(k) != settings.get(k)]
        if changed:
            raise ValueError(
                f"{out} holds a different comparison ({', '.join(changed)} differ); "
                "use another --out folder"
            )
        settings["agents"] = list(dict.fromkeys([*old["agents"], *settings["agents"]]))
        settings["seeds"] = sorted(set(old["seeds"]) | set(settings["seeds"]))
        settings["id"] = old.get("id") or settings["id"]
    atomic_write_text(path, json.dumps(settings, indent=2))
    return settings


__all__ = [
    "Job",
    "Price",
    "check_compare",
    "compare_settings",
    "make_jobs",
    "run_job",
    "run_jobs",
    "write_settings",
]
