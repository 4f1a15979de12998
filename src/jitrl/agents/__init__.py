"""Agents that play text environments: the protocol, the LLM agents, the baselines, the registry.

Every agent follows :class:`jitrl.agents.base.Agent`; :func:`make_agent` builds one by name from
an :class:`AgentContext`, and :func:`register` adds your own.
"""

from jitrl.agents.base import Agent
from jitrl.agents.llm_agent import LLMAgent
from jitrl.agents.registry import (
    AgentContext,
    AgentSpec,
    agent_model,
    agent_names,
    agent_spec,
    make_agent,
    register,
)

__all__ = [
    "Agent",
    "AgentContext",
    "AgentSpec",
    "LLMAgent",
    "agent_model",
    "agent_names",
    "agent_spec",
    "make_agent",
    "register",
]
