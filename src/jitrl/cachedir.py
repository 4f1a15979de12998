"""Where jitrl keeps what it can rebuild: generated games, candidate indexes of server stores."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV_VAR = "JITRL_CACHE"
"""Environment variable naming the root of jitrl's caches."""
DEFAULT_CACHE_ROOT = Path("~/.cache/jitrl")
"""The root when ``$JITRL_CACHE`` is not set."""


def cache_root() -> Path:
    """``$JITRL_CACHE`` if set, else ``~/.cache/jitrl``."""
    root = os.environ.get(CACHE_ENV_VAR)
    return (Path(root) if root else DEFAULT_CACHE_ROOT).expanduser()
