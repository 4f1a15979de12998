"""jitrl: Just-In-Time Reinforcement Learning for LLM agents, without gradient updates."""

from jitrl.method.config import (
    JitRLConfig,
    PolicyConfig,
    RetrievalConfig,
    ReturnConfig,
    ValueConfig,
)
from jitrl.method.learner import Episode, JitRL
from jitrl.method.types import Decision, Experience, State

__version__ = "0.1.0"

__all__ = [
    "Decision",
    "Episode",
    "Experience",
    "JitRL",
    "JitRLConfig",
    "PolicyConfig",
    "RetrievalConfig",
    "ReturnConfig",
    "State",
    "ValueConfig",
    "__version__",
]
