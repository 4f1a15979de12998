"""What every command shares: the typer apps, the console, logging and progress bars."""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(
    help="Just-In-Time RL: LLM agents that learn from experience at test time.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
memory_app = typer.Typer(help="Inspect, export and import experience stores.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
console = Console()


def setup_logging(level: str) -> None:
    """Log through rich to the console at ``level``."""
    logging.basicConfig(
        level=level.upper(),
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )


def progress_bar() -> Progress:
    """The progress bar of long commands (removed when done)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error and return the exit to raise."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)
