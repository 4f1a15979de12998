"""What an exception means to a user: one line and an exit code.

Every error a user can cause or fix (a bad setting, a missing or foreign file, a store that is
not a jitrl store, a missing extra, an unreachable server, a browser that will not start) is
exit code 2 with a message that says what to do; anything else is a failure inside jitrl (1).
"""

from __future__ import annotations

import errno

from jitrl.cli.common import FAILURE_EXIT, USAGE_EXIT
from jitrl.envs.errors import WebEnvError
from jitrl.llm.base import LLMError
from jitrl.memory.base import StoreError

_OS_HINTS = {
    errno.ENOENT: "no such file or folder (check the path)",
    errno.EISDIR: "is a folder, not a file (give a file path)",
    errno.ENOTDIR: "a part of the path is not a folder (check the path)",
    errno.EACCES: "permission denied (check the file's owner and mode)",
    errno.EROFS: "read-only file system (write somewhere else)",
    errno.ENOSPC: "no space left on the device (free some space)",
}


def _os_message(err: OSError) -> str:
    what = err.filename if err.filename is not None else ""
    hint = _OS_HINTS.get(err.errno or 0, f"{err.strerror or err} (check the path and access)")
    return f"{what}: {hint}" if what else hint


def describe(err: BaseException) -> tuple[str, int]:
    """The message and exit code that report ``err`` (no traceback)."""
    if isinstance(err, (StoreError, LLMError, WebEnvError, ValueError, ImportError, LookupError)):
        return str(err) or type(err).__name__, USAGE_EXIT
    if isinstance(err, (ConnectionError, TimeoutError)):
        return f"{err} (is the server running and reachable?)", USAGE_EXIT
    if isinstance(err, OSError):
        return _os_message(err), USAGE_EXIT
    return f"internal error: {type(err).__name__}: {err}", FAILURE_EXIT
