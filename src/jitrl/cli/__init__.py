"""The ``jitrl`` command line: run, compare, report, explain, serve and memory."""

import jitrl.cli.compare
import jitrl.cli.memory
import jitrl.cli.run
import jitrl.cli.serve  # noqa: F401  (importing a command module registers its commands)
from jitrl.cli.common import app

__all__ = ["app"]
