"""The ``jitrl`` command line: run, compare, report, explain, serve, memory and setup.

:func:`main` is the entry point: it runs the command and turns every error into one line,
``error: <what> (<how to fix>)``, with exit code 2 for what the user can fix and 1 for a failure
inside jitrl; ``--debug`` (anywhere on the line) adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError

import jitrl.cli.compare
import jitrl.cli.continual
import jitrl.cli.memory
import jitrl.cli.run
import jitrl.cli.serve
import jitrl.cli.setup  # noqa: F401  (importing a command module registers its commands)
from jitrl.cli.common import FAILURE_EXIT, USAGE_EXIT, CliError, app, console, print_error
from jitrl.cli.errors import describe

DEBUG_FLAG = "--debug"
INTERRUPTED_EXIT = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (errors are printed, never raised)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [a for a in args if a != DEBUG_FLAG]
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="jitrl", standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print_error("interrupted")
        return INTERRUPTED_EXIT
    except NoArgsIsHelpError as shown:  # a command group without a command: its help
        console.print(shown.ctx.get_help() if shown.ctx is not None else shown.format_message())
        return 0
    except UsageError as err:
        command_path = err.ctx.command_path if err.ctx is not None else "jitrl"
        print_error(f"{err.format_message()} (see '{command_path} --help')")
        return USAGE_EXIT
    except CliError as err:
        if debug and err.__cause__ is not None:
            traceback.print_exception(err.__cause__)
        print_error(err.message)
        return err.code
    except Exception as err:
        if debug:
            traceback.print_exception(err)
        message, code = describe(err)
        print_error(message if debug else f"{message}{_debug_hint(code)}")
        return code
    return int(result) if isinstance(result, int) else 0


def _debug_hint(code: int) -> str:
    return " [rerun with --debug for the traceback]" if code == FAILURE_EXIT else ""


__all__ = ["app", "main"]
