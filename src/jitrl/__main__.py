"""``python -m jitrl`` runs the CLI."""

from jitrl.cli import app

app(prog_name="jitrl")
