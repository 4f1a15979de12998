"""What every command shares: the typer apps, the consoles, errors, logging and progress bars.

Errors have one shape everywhere: ``error: <what> (<how to fix>)`` on standard error, exit code 2
for anything the user can fix (a bad flag, a missing file, a foreign store, an unreachable
server), 1 for a failure inside jitrl, 130 for Ctrl-C. ``--debug`` adds the traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

app = typer.Typer(
    help="Just-In-Time RL: LLM agents that learn from experience at test time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
memory_app = typer.Typer(
    help="Inspect, export, import, copy and back up experience stores.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(memory_app, name="memory")
console = Console()
err_console = Console(stderr=True)

USAGE_EXIT = 2
"""Exit code of every error the user can fix."""
FAILURE_EXIT = 1
"""Exit code of a failure inside jitrl (or of a run some of whose jobs failed)."""
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "openai", "py4j")
"""Libraries that log every request (or, py4j, a harmless traceback on every TextWorldExpress
shutdown); kept at WARNING whatever the level asked for."""


LogLevel = Annotated[str, typer.Option(help=f"logging level: {', '.join(LOG_LEVELS)}")]
"""The ``--log-level`` option every long command has."""
OutFolder = Annotated[Path, typer.Option(help="output folder (rerun into it to resume)")]
"""The ``--out`` option of commands that write a folder."""


class CliError(Exception):
    """An error to report as ``error: <message>`` with an exit code (no traceback)."""

    def __init__(self, message: str, code: int = USAGE_EXIT) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = USAGE_EXIT) -> CliError:
    """The error to raise for ``message`` (``raise fail("...")``)."""
    return CliError(message, code)


def print_error(message: str) -> None:
    """``error: message`` on standard error, on one line, brackets and all (no rich markup)."""
    err_console.print(f"[red]error:[/red] {escape(' '.join(message.split()))}", soft_wrap=True)


def setup_logging(level: str) -> None:
    """Log through rich to standard error at ``level`` (one of :data:`LOG_LEVELS`)."""
    name = level.upper()
    if name not in LOG_LEVELS:
        raise fail(f"--log-level {level!r} is not a level (use one of {', '.join(LOG_LEVELS)})")
    logging.basicConfig(
        level=name,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err_console, show_path=False, markup=False)],
        force=True,
    )
    for chatty in QUIET_LOGGERS:  # a line per HTTP request, URLs and all: not at INFO
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(name)))


def interactive() -> bool:
    """Whether standard output is a terminal (progress bars) or not (one line per episode)."""
    return console.is_terminal and sys.stdout.isatty()


def progress_bar() -> Progress:
    """The progress bar of long commands: done/total, elapsed and remaining time, the last
    episode's score (``fields['last']``); removed when done."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=True,
        disable=not interactive(),
    )
