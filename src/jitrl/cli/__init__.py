"""The ``jitrl`` command line: ``run``, ``compare``, ``report``, ``explain`` and ``memory``."""

import jitrl.cli.compare
import jitrl.cli.memory
import jitrl.cli.run  # noqa: F401  (importing a command module registers its commands)
from jitrl.cli.common import app

__all__ = ["app"]
