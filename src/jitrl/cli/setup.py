"""``jitrl setup browser`` and ``jitrl --version``.

``jitrl setup browser`` makes a Chromium available to Playwright (see
:mod:`jitrl.setup_browser`): progress goes to standard error and the last line of standard
output is the folder to use as ``PLAYWRIGHT_BROWSERS_PATH``::

    export PLAYWRIGHT_BROWSERS_PATH="$(jitrl setup browser | tail -n 1)"

``--dry-run`` prints the steps (and the folder, last) without changing anything.
"""

from __future__ import annotations

from typing import Annotated

import typer

from jitrl import __version__
from jitrl.cli.common import app, console, err_console

setup_app = typer.Typer(
    help="Set up what some environments need (the browser of the web tasks).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(setup_app, name="setup")


def _print_version(value: bool) -> None:
    """``--version``: print ``jitrl <version>`` and stop."""
    if value:
        console.print(f"jitrl {__version__}", highlight=False)
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options of ``jitrl`` itself (the help text is the app's)."""


@setup_app.command("browser")
def setup_browser(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be done, change nothing")
    ] = False,
) -> None:
    """Make a Chromium available to Playwright for the web tasks (MiniWoB, WebArena): find or
    apt-get install Debian's chromium, then link it where Playwright looks for its own."""
    from jitrl.setup_browser import plan_browser_setup, run_browser_setup

    setup = plan_browser_setup()
    if dry_run:
        for line in setup.steps():
            console.print(line, highlight=False, soft_wrap=True)
        console.print(str(setup.root), highlight=False, soft_wrap=True)
        return
    root = run_browser_setup(
        setup, report=lambda line: err_console.print(line, highlight=False, soft_wrap=True)
    )
    console.print(str(root), highlight=False, soft_wrap=True)
