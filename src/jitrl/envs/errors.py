"""Errors of the web environments (kept apart so that importing them needs no browser stack).

A runner can catch :class:`WebEnvError` around ``reset``/``step`` and record the episode as
failed: the environment has already stopped its browsers, and the next ``reset()`` starts anew.
"""

from __future__ import annotations


class WebEnvError(RuntimeError):
    """A web environment failed: its browser, its page or its sites, not the agent's action."""


class BrowserLaunchError(WebEnvError):
    """The browser could not be started (missing or broken binary, launch timeout)."""


class WebTimeoutError(WebEnvError):
    """A page operation, or a whole reset or step, ran past its time limit."""


class WebConfigError(WebEnvError):
    """The benchmark is not set up: a site variable is missing or a site is unreachable."""
