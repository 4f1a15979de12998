"""Comparisons: several agents × environments × seeds, in parallel, resumable.

Every (environment, agent, seed) job plays into its own run folder
``OUT/runs/<env>/<agent>/seed<S>/`` with its own fresh store (``memory.sqlite``, or a schema of
its own in the PostgreSQL database ``memory`` names; optionally started from a copy of
``warm_from``). Jobs run in worker processes or as Ray tasks (:mod:`jitrl.running.executors`); the
backend changes where they run, not what they play. A job that was interrupted resumes where
it stopped: finished episodes are kept and not replayed. ``OUT/compare.json`` records the
settings; the report (:mod:`jitrl.analysis.report`) is rendered from the run folders alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from jitrl.agents import AGENTS, MEMORY_AGENTS, agent_model, make_agent
from jitrl.agents.prompts import prompt_config_for
from jitrl.envs import expand_suite, make_env
from jitrl.memory import PostgresConfig, open_store
from jitrl.memory.base import ExperienceStore
from jitrl.memory.jsonl import add_episodes, group_episodes
from jitrl.memory.postgres_schema import redact_url
from jitrl.method.config import JitRLConfig, Selection
from jitrl.running.executors import Backend, ExecutionConfig, open_executor
from jitrl.running.run_folder import RunWriter, run_episodes

log = logging.getLogger(__name__)

JERICHO_SUFFIXES = (".z3", ".z4", ".z5", ".z8")
"""Game files that ``jericho:DIR`` picks up in a folder."""
SELECTIONS: tuple[Selection, ...] = ("greedy", "sample")
CLUSTER_MEMORY_HINT = (
    "a Ray cluster needs --memory postgresql://... (workers on other machines cannot share "
    "SQLite files safely)"
)
SCHEMA_PREFIX = "jitrl_"
"""Prefix of the per-job schemas in a PostgreSQL ``memory``."""
SETTINGS_FILE = "compare.json"
TEXTWORLD_SUITES = {"textworld": "tw", "textworld-simple": "tws"}
"""TextWorld suite kinds and the slug prefix of their games."""
WEB_SUITES = ("miniwob", "webarena", "webarena-lite", "workarena", "browsergym")
"""Web task kinds: ``miniwob:TASK``, ``miniwob:all`` and the hosted benchmarks' task ids."""


@dataclass(frozen=True)
class Price:
    """API prices in US dollars per million tokens."""

    input: float
    """Price of a million input (prompt and scored-candidate) tokens."""
    output: float
    """Price of a million generated tokens."""

    def __post_init__(self) -> None:
        if self.input < 0 or self.output < 0:
            raise ValueError("prices must be >= 0")

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


@dataclass(frozen=True)
class CompareConfig:
    """What a comparison runs."""

    envs: dict[str, str]
    """Environment slug -> spec for :func:`jitrl.envs.make_env` (see :func:`expand_envs`)."""
    agents: tuple[str, ...] = AGENTS
    """Agents to compare, each with its own fresh store."""
    seeds: tuple[int, ...] = (1, 2, 3)
    """Seeds; each (env, agent) runs once per seed (episode i of seed s uses seed s + i)."""
    episodes: int = 20
    """Episodes per job."""
    max_steps: int = 40
    """Steps per episode."""
    window: int = 5
    """Final-window size of the report."""
    model: str = "llamacpp"
    """Language model spec for the LLM agents."""
    workers: int = 1
    """Jobs running at the same time."""
    backend: Backend = "process"
    """Where jobs run: ``process`` (worker processes here) or ``ray`` (Ray tasks)."""
    ray_address: str | None = None
    """Ray cluster to join; ``None``: a local Ray (``backend="ray"`` only)."""
    memory: str | None = None
    """PostgreSQL URL that holds every job's store, one schema per job so that jobs stay
    independent (needed on a Ray cluster); ``None``: ``memory.sqlite`` in each run folder."""
    threads: int | None = None
    """llama.cpp threads per worker; default: cores divided among the workers."""
    warm_from: str | None = None
    """Store whose episodes every memory agent starts from (transfer); ``None``: cold start."""
    price: Price | None = None
    """API prices for the cost columns of the report."""
    selection: Selection = "greedy"
    """How the LLM agents choose: ``greedy`` (deterministic games replay the same episodes on
    every seed) or ``sample`` (from the corrected distribution, seeded per job)."""

    def __post_init__(self) -> None:
        if not self.envs:
            raise ValueError("no environments to compare")
        unknown = [a for a in self.agents if a not in AGENTS]
        if unknown or not self.agents:
            raise ValueError(f"unknown agents {unknown}; choose from {', '.join(AGENTS)}")
        if not self.seeds or min(self.seeds) < 0:
            raise ValueError("seeds must be a non-empty list of ints >= 0")
        for name in ("episodes", "max_steps", "window", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be >= 1")
        if self.warm_from is not None and not Path(self.warm_from).is_file():
            raise FileNotFoundError(f"--warm-from store not found: {self.warm_from}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}")
        if self.memory is not None and not self.memory.lower().startswith(("postgres",)):
            raise ValueError(
                "--memory takes a postgresql:// URL (without it every job has its own "
                "memory.sqlite in its run folder)"
            )
        ExecutionConfig(self.backend, self.workers, self.ray_address)  # validates them
        if self.ray_address is not None and self.memory is None:
            raise ValueError(CLUSTER_MEMORY_HINT)

    @property
    def execution(self) -> ExecutionConfig:
        """Where the jobs run."""
        return ExecutionConfig(self.backend, self.workers, self.ray_address)

    @property
    def worker_threads(self) -> int:
        """Model threads for each worker."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def settings(self) -> dict[str, Any]:
        """The JSON form written to ``compare.json``."""
        out = asdict(self)
        out["agents"], out["seeds"] = list(self.agents), list(self.seeds)
        out["memory"] = redact_url(self.memory) if self.memory else None
        out["id"] = uuid.uuid4().hex[:12]  # a new comparison's id (write_settings keeps an old one)
        return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "env"


def expand_envs(spec: str, game_seed: int = 1) -> dict[str, str]:
    """Turn a comma-separated list of suite specs into environment slug -> single-game spec.

    - ``jericho:DIR``: every game file in the folder (``.z3/.z4/.z5/.z8``);
    - ``jericho:PATH`` or ``jericho:NAME``: one game;
    - ``textworld:K``: K generated games with generation seeds ``game_seed .. game_seed+K-1``;
    - ``textworld``: one generated game from ``game_seed``;
    - ``textworld-simple:K``: K ``tw-simple`` games (one house, K goals), seeds as above;
    - ``miniwob:TASK`` or ``miniwob:all``; ``webarena:ID``, ``workarena:NAME`` (hosted sites).
    """
    envs: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        kind, sep, target = part.partition(":")
        if kind == "jericho" and target and Path(target).expanduser().is_dir():
            folder = Path(target).expanduser()
            games = sorted(p for p in folder.iterdir() if p.suffix in JERICHO_SUFFIXES)
            if not games:
                kinds = ", ".join(JERICHO_SUFFIXES)
                raise ValueError(f"no Jericho game files ({kinds}) in {folder}")
            envs.update({g.stem: f"jericho:{g}" for g in games})
        elif kind == "jericho" and target:
            envs[_slug(Path(target).stem)] = part
        elif kind in WEB_SUITES and target:
            envs.update({s.partition(":")[2]: s for s in expand_suite(part)})
        elif kind in TEXTWORLD_SUITES:
            count = 1 if not sep else _positive_int(target, part)
            prefix = TEXTWORLD_SUITES[kind]
            seeds = range(game_seed, game_seed + count)
            envs.update({f"{prefix}{s}": f"{kind}:{s}" for s in seeds})
        else:
            raise ValueError(
                f"unknown suite {part!r}: use jericho:DIR, jericho:PATH, textworld:K, "
                "textworld-simple:K, miniwob:TASK, miniwob:all"
            )
    return envs


def _positive_int(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"bad suite {spec!r}: K must be an int >= 1")
    return int(text)


@dataclass(frozen=True)
class Job:
    """One (environment, agent, seed) learning run."""

    slug: str
    spec: str
    agent: str
    seed: int
    folder: str
    episodes: int
    max_steps: int
    model: str
    threads: int
    warm_from: str | None = None
    memory: str | None = None
    selection: Selection = "greedy"
    comparison: str = ""
    """Id of the comparison (``compare.json``); names the job's PostgreSQL schema."""
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """What the run folder's ``summary.json`` records (no password)."""
        out = {k: v for k, v in asdict(self).items() if k != "folder"}
        out["memory"] = redact_url(self.memory) if self.memory else None
        return out

    def open_store(self) -> ExperienceStore:
        """The job's own store: ``memory.sqlite`` in its folder, or its schema in ``memory``.

        The schema's name comes from the comparison's id, kept in ``compare.json`` (two
        comparisons never share a store; a moved output folder keeps its stores; a deleted one
        starts new ones), or from the run folder's path when there is no id.
        """
        if self.memory is None:
            return open_store(Path(self.folder) / "memory.sqlite")
        where = self.comparison or str(Path(self.folder).resolve())
        digest = hashlib.sha256(where.encode()).hexdigest()[:12]
        name = re.sub(r"[^a-z0-9_]+", "_", f"{self.agent}_s{self.seed}_{self.slug}".lower())
        schema = f"{SCHEMA_PREFIX}{digest}_{name}"[:63]
        return open_store(self.memory, PostgresConfig(schema=schema))

    def done(self) -> int:
        """Episodes already finished in the run folder."""
        path = Path(self.folder) / "episodes.jsonl"
        if not path.exists():
            return 0
        with path.open(encoding="utf-8") as fh:
            return sum(1 for line in fh if line.strip())


def make_jobs(config: CompareConfig, out: Path) -> list[Job]:
    """All jobs, seeds in the outer loop so every agent makes progress early."""
    out = out.resolve()  # workers may run elsewhere (another working directory, a cluster)
    saved = out / SETTINGS_FILE
    settings = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
    comparison = str(settings.get("id", ""))
    return [
        Job(
            slug=slug,
            spec=spec,
            agent=agent,
            seed=seed,
            folder=str(out / "runs" / slug / agent / f"seed{seed}"),
            episodes=config.episodes,
            max_steps=config.max_steps,
            model=config.model,
            threads=config.worker_threads,
            warm_from=config.warm_from if agent in MEMORY_AGENTS else None,
            memory=config.memory,
            selection=config.selection,
            comparison=comparison,
        )
        for seed in config.seeds
        for slug, spec in config.envs.items()
        for agent in config.agents
    ]


def _warm_store(store: ExperienceStore, warm_from: str) -> None:
    """Fill a fresh store with a copy of ``warm_from``'s episodes (once: before any episode)."""
    src = open_store(warm_from, create=False)
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
    writer = RunWriter(Path(job.folder), job.settings())
    todo = job.episodes - writer.next_index
    if todo > 0:
        with ExitStack() as stack:  # whatever was opened is closed, also when a later part fails
            store = _job_store(job, writer) if job.agent in MEMORY_AGENTS else None
            if store is not None:
                stack.callback(store.close)
            env = make_env(job.spec, max_steps=job.max_steps, seed=job.seed)
            stack.callback(env.close)
            model = agent_model(job.agent, job.model, job.threads)
            if model is not None:
                stack.callback(model.close)
            cfg = JitRLConfig()
            cfg = replace(cfg, policy=replace(cfg.policy, selection=job.selection))
            prompts = prompt_config_for(job.spec)
            agent = make_agent(job.agent, model, store, cfg, seed=job.seed, prompts=prompts)
            stack.callback(agent.close)
            run_episodes(env, agent, writer, episodes=todo, seed=job.seed)
    return {
        "slug": job.slug,
        "agent": job.agent,
        "seed": job.seed,
        "scores": [r.score for r in writer.results],
    }


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
                    name = f"{job.slug}/{job.agent}/seed{job.seed}"
                    msg = f"{name}: {type(result).__name__}: {result}"
                    log.error("job failed: %s", msg)
                    errors.append(msg)
                elif on_job is not None:
                    on_job(result)
            if on_progress is not None:
                on_progress(sum(j.done() for j in pending))
    return errors


def write_settings(config: CompareConfig, out: Path) -> None:
    """Write ``compare.json``; a rerun into the same folder must use the same experiment."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SETTINGS_FILE
    settings = config.settings()
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        fixed: dict[str, Any] = {"envs": None, "max_steps": None, "model": None, "warm_from": None}
        fixed |= {"memory": None, "selection": "greedy"}  # (default when an old file lacks it)
        changed = [k for k, dflt in fixed.items() if old.get(k, dflt) != settings.get(k)]
        if changed:
            raise ValueError(
                f"{out} holds a different comparison ({', '.join(changed)} differ); "
                "use another --out folder"
            )
        # agents, seeds and episodes may grow: keep the union
        settings["agents"] = list(dict.fromkeys([*old["agents"], *settings["agents"]]))
        settings["seeds"] = sorted(set(old["seeds"]) | set(settings["seeds"]))
        settings["id"] = old.get("id") or settings["id"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    tmp.replace(path)
