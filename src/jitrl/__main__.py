"""``python -m jitrl`` runs the CLI."""

import sys

from jitrl.cli import main

sys.exit(main())
