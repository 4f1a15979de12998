"""Agents that play text environments: the protocol, the LLM agents, the baselines, the registry.

Every agent follows :class:`jitrl.agents.base.Agent`; :func:`make_agent` builds one by name.
"""

from jitrl.agents.registry import (
    AGENTS,
    LLM_AGENTS,
    MEMORY_AGENTS,
    Agent,
    LLMAgent,
    agent_model,
    make_agent,
)

__all__ = [
    "AGENTS",
    "LLM_AGENTS",
    "MEMORY_AGENTS",
    "Agent",
    "LLMAgent",
    "agent_model",
    "make_agent",
]
