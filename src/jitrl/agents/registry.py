"""The agent registry: what each agent needs and how it is built, in one place.

- ``jitrl``: the frozen LLM's distribution corrected by memory.
- ``static``: the same LLM and prompts with no memory (every advantage is 0).
- ``icl``: in-context memory: the same neighbours, written into the prompt as text (action and
  return) instead of entering the logits (the Reflexion/AWM family of methods). It gets the same
  exploration bonus and revisit penalty as ``jitrl``; only where memory enters differs.
- ``qlearn``: tabular Q-learning over the state (its key, else its text), optimistic, no LLM.
- ``random``: uniform over the candidates.

Register your own with :func:`register`, or name it as ``module:factory`` where ``factory`` is an
:class:`AgentSpec` or a callable taking an :class:`AgentContext`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from jitrl.agents.abstraction import StateAbstractor
from jitrl.agents.base import Agent
from jitrl.agents.baselines import QLearnAgent, RandomAgent
from jitrl.agents.llm_agent import LLMAgent
from jitrl.agents.prompts import PromptConfig
from jitrl.llm.base import LanguageModel
from jitrl.llm.cache import CachedModel
from jitrl.memory.base import ExperienceStore
from jitrl.method.config import Correction, JitRLConfig
from jitrl.method.learner import JitRL


@dataclass(frozen=True)
class AgentContext:
    """Everything an agent factory may use; factories take what they need."""

    model: LanguageModel | None
    """The score-cached model (``None`` for agents that need none)."""
    store: ExperienceStore | None
    """The agent's memory (``None`` for agents that keep none)."""
    config: JitRLConfig
    """The method's settings."""
    seed: int = 1
    """Seed of the agent's generator."""
    prompts: PromptConfig | None = None
    """Prompt settings for the environment."""
    abstractor: StateAbstractor | None = None
    """Rewrites observations into states with the LLM (optional)."""
    episodes: Sequence[str] | None = None
    """Memory agents of a parallel run: load only these stored episodes and let the memory
    follow a store shared with other workers (:class:`JitRL` with ``shared=True``)."""


AgentFactory = Callable[[AgentContext], Agent]


@dataclass(frozen=True)
class AgentSpec:
    """What an agent needs, and how to build it."""

    name: str
    """The name used on the command line."""
    factory: AgentFactory
    """Builds the agent from a context."""
    needs_model: bool = False
    """It scores candidates with a language model."""
    keeps_memory: bool = False
    """It learns into an experience store."""
    parallel: bool = True
    """Several workers may play its episodes at once, sharing one memory (``False`` when its
    learning depends on the order of its own updates, as tabular Q-learning's does)."""
    description: str = ""
    """One line for ``--help``."""


ICL_CORRECTION: Correction = "exploration"
"""What ``icl`` adds to the logits: the same exploration bonus and loop penalty as ``jitrl``, so
that the two differ only in where memory's returns enter (the prompt against the logits)."""


def _llm_agent(name: str, in_context: bool = False) -> AgentFactory:
    def build(ctx: AgentContext) -> Agent:
        if ctx.model is None:
            raise ValueError(f"agent {name!r} needs a language model")
        cfg = ctx.config
        if in_context and cfg.policy.correction == "advantages":  # memory goes to the prompt
            cfg = replace(cfg, policy=replace(cfg.policy, correction=ICL_CORRECTION))
        store = ctx.store if name != "static" else None
        shared = ctx.episodes is not None and store is not None
        learner = JitRL(
            store, cfg, model=ctx.model, seed=ctx.seed, episodes=ctx.episodes, shared=shared
        )
        return LLMAgent(
            name, learner, ctx.prompts, in_context=in_context, abstractor=ctx.abstractor
        )

    return build


_REGISTRY: dict[str, AgentSpec] = {}


def register(spec: AgentSpec) -> AgentSpec:
    """Add (or replace) an agent under ``spec.name``; returns it."""
    _REGISTRY[spec.name] = spec
    return spec


register(AgentSpec("jitrl", _llm_agent("jitrl"), True, True, True, "LLM corrected by memory"))
register(AgentSpec("static", _llm_agent("static"), True, False, True, "the LLM alone"))
register(AgentSpec("icl", _llm_agent("icl", True), True, True, True, "memory in the prompt"))
register(
    AgentSpec(
        "qlearn",
        lambda ctx: QLearnAgent(ctx.store, seed=ctx.seed),
        keeps_memory=True,
        parallel=False,
        description="tabular Q-learning, no LLM",
    )
)
register(AgentSpec("random", lambda ctx: RandomAgent(seed=ctx.seed), description="uniform"))


def agent_names() -> tuple[str, ...]:
    """The registered agents' names."""
    return tuple(_REGISTRY)


def agent_spec(name: str) -> AgentSpec:
    """The spec of a registered agent, or of ``module:factory`` (imported now).

    Raises:
        ValueError: an unknown name, or a ``module:factory`` that cannot be imported.
    """
    spec = _REGISTRY.get(name)
    if spec is not None:
        return spec
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"unknown agent {name!r}; choose from {', '.join(_REGISTRY)}")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load agent {name!r}: {err}") from None
    if isinstance(found, AgentSpec):
        return found
    if callable(found):
        return AgentSpec(name, found)
    raise ValueError(f"agent {name!r} is neither an AgentSpec nor a callable")


def agent_model(name: str, spec: str, threads: int | None = None) -> CachedModel | None:
    """The score-cached model that agent ``name`` needs; ``None`` for agents without one."""
    if not agent_spec(name).needs_model:
        return None
    from jitrl.llm import load_model

    return CachedModel(load_model(spec, n_threads=threads))


def make_agent(name: str, context: AgentContext) -> Agent:
    """Build a named agent (see the module docstring); the store is dropped for agents that
    keep no memory."""
    spec = agent_spec(name)
    if spec.needs_model and context.model is None:
        raise ValueError(f"agent {name!r} needs a language model")
    if not spec.keeps_memory:
        context = replace(context, store=None)
    return spec.factory(context)
