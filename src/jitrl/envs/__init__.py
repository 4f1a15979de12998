"""Text environments: the protocol, the step-limit wrapper, the adapters and their factory.

Build one from a spec string with :func:`make_env` (``"textworld"``, ``"textworld:SEED"``,
``"jericho:PATH"``, ``"miniwob:TASK"``, ...). The adapters import their game libraries only when
constructed, so ``import jitrl.envs`` works without the ``jericho``/``textworld``/``web`` extras.
"""

from __future__ import annotations

from jitrl.envs.base import (
    BaseTextEnv,
    Fold,
    StepInfo,
    StepLimit,
    StepResult,
    TextEnv,
    Wrapper,
)
from jitrl.envs.browsergym import BrowserGymConfig, BrowserGymEnv
from jitrl.envs.errors import WebEnvError
from jitrl.envs.factory import expand_suite, make_env
from jitrl.envs.jericho import JerichoConfig, JerichoEnv
from jitrl.envs.textworld import TextWorldConfig, TextWorldEnv, ensure_game

__all__ = [
    "BaseTextEnv",
    "BrowserGymConfig",
    "BrowserGymEnv",
    "Fold",
    "JerichoConfig",
    "JerichoEnv",
    "StepInfo",
    "StepLimit",
    "StepResult",
    "TextEnv",
    "TextWorldConfig",
    "TextWorldEnv",
    "WebEnvError",
    "Wrapper",
    "ensure_game",
    "expand_suite",
    "make_env",
]
