"""One builder: the environment, model, store and agent of a run, from its specification.

``jitrl run`` (one process or many workers) and every job of ``jitrl compare`` build what they
play here, so an agent is always assembled the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from jitrl.agents import Agent, AgentContext, agent_model, agent_spec, make_agent
from jitrl.agents.abstraction import StateAbstractor
from jitrl.agents.prompts import prompt_config_for
from jitrl.envs import make_env
from jitrl.envs.base import TextEnv
from jitrl.llm.cache import CachedModel
from jitrl.memory import open_store
from jitrl.memory.base import ExperienceStore
from jitrl.running.spec import PlaySpec, RunSpec

ABSTRACTION_CACHE = "abstract-states.jsonl"
"""File in the run folder that caches LLM-written states (``abstract_states``)."""


@dataclass
class Player:
    """A built run: close it (or use it as a context manager) to release everything."""

    env: TextEnv
    agent: Agent
    model: CachedModel | None
    store: ExperienceStore | None
    _stack: ExitStack = field(repr=False, default_factory=ExitStack)

    def close(self) -> None:
        """Release the agent (and its store), the environment and the model."""
        self._stack.close()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _memory(
    spec: RunSpec,
    keeps_memory: bool,
    store: ExperienceStore | None,
    stack: ExitStack,
    reconcile: Callable[[ExperienceStore], object] | None,
) -> ExperienceStore | None:
    """The agent's store: the one given, else ``spec.memory`` opened (reconciled with the run
    folder first); ``None`` for an agent that keeps no memory."""
    if not keeps_memory:
        return None
    if store is None:
        store = open_store(spec.memory)
        stack.callback(store.close)
    if reconcile is not None:
        reconcile(store)
    return store


def environment_of(spec: PlaySpec, env: str, seed: int) -> TextEnv:
    """The environment ``env`` with ``spec``'s step limit and state keys."""
    return make_env(
        env,
        max_steps=spec.max_steps,
        seed=seed,
        privileged_key=spec.privileged_key,
        view_key=spec.view_key,
    )


def open_player(
    spec: RunSpec,
    *,
    threads: int,
    store: ExperienceStore | None = None,
    episodes: list[str] | None = None,
    out: Path | None = None,
    reconcile: Callable[[ExperienceStore], object] | None = None,
) -> Player:
    """Build the environment, model, store and agent that ``spec`` names.

    Args:
        spec: the run.
        threads: model threads (see :func:`jitrl.running.spec.model_threads`).
        store: an open store to use (it is closed with the player); ``None`` opens
            ``spec.memory`` for agents that keep memory.
        episodes: a parallel run's worker: load only these stored episodes.
        out: the run folder (for the cache of LLM-written states).
        reconcile: called with the store before the agent loads its memory (a run folder
            removes the episodes it never recorded: ``RunWriter.reconcile``).

    Raises:
        ValueError: an unknown agent or environment, or an invalid setting.
        ImportError: an extra the environment or model needs is missing.
        jitrl.memory.StoreError: the store cannot be opened.
    """
    described = agent_spec(spec.agent)
    stack = ExitStack()
    if store is not None:  # given to us: closed with the player, or on failure
        stack.callback(store.close)
    try:
        # the environment and the model first: a bad spec fails before a store is created
        env = environment_of(spec, spec.env, spec.seed)
        stack.callback(env.close)
        model = agent_model(spec.agent, spec.model, threads)
        if model is not None:
            stack.callback(model.close)
        store = _memory(spec, described.keeps_memory, store, stack, reconcile)
        abstractor = None
        if spec.abstract_states and model is not None:
            cache = out / ABSTRACTION_CACHE if out is not None else None
            abstractor = StateAbstractor(model, cache_path=cache)
        context = AgentContext(
            model=model,
            store=store,
            config=spec.method,
            seed=spec.seed,
            prompts=prompt_config_for(spec.env),
            abstractor=abstractor,
            episodes=episodes,
        )
        agent = make_agent(spec.agent, context)
        stack.callback(agent.close)
    except BaseException:
        stack.close()
        raise
    return Player(env, agent, model, store, stack)
