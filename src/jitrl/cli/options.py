"""Command-line options generated from the settings dataclasses (:mod:`jitrl.settings`).

A command declares parameters typed with settings roots (``spec: RunSpec``); :func:`with_settings`
replaces each by one option per leaf setting (help from the field's docstring, default shown,
grouped by section) plus ``--config FILE``, and hands the command the built, validated instances.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import typer

from jitrl.cli.common import fail
from jitrl.settings import CONFIG_ENV_VAR, ENV_PREFIX, Setting, SettingsError, resolve, settings_of

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_HELP = (
    f"TOML file of settings (any flag's name as key; default ${CONFIG_ENV_VAR}). Precedence: "
    f"defaults < this file < {ENV_PREFIX}* variables < flags."
)
_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT"}


def _panel(root: type, setting: Setting) -> str:
    sections = [p for p in setting.path[:-1] if p != "method"]
    if setting.path[0] == "method":
        return "Method" + (f": {sections[0]}" if sections else "")
    return root.__name__.removesuffix("Spec").removesuffix("Config") or root.__name__


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(value) or "(empty)"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _option(root: type, setting: Setting) -> inspect.Parameter:
    help_text = setting.summary or setting.name
    panel = _panel(root, setting)
    default = _shown(setting.default)
    if setting.kind is bool and not setting.optional:
        flag = f"{setting.flag}/--no-{setting.flag[2:]}"
        info = typer.Option(None, flag, help=help_text, show_default=default, rich_help_panel=panel)
        return inspect.Parameter(
            setting.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=bool | None
        )
    choices = setting.choices
    if choices and not setting.optional:
        annotation: Any = Literal[choices] | None
        metavar = None
    else:
        annotation = str | None
        metavar = _METAVARS.get(setting.kind, "TEXT") + ("|none" if setting.optional else "")
    info = typer.Option(
        None,
        setting.flag,
        help=help_text,
        show_default=default,
        metavar=metavar,
        rich_help_panel=panel,
    )
    return inspect.Parameter(
        setting.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation
    )


def with_settings(fn: F) -> F:
    """Generate the options of every parameter of ``fn`` typed with a settings root.

    The decorated command gets ``--config FILE`` and one option per setting; it is called with
    the other parameters as given and each settings parameter built by :func:`resolve`. A bad
    setting ends the command with ``error: ...`` and exit code 2.
    """
    hints = typing.get_type_hints(fn, include_extras=True)
    signature = inspect.signature(fn)
    roots = {
        name: hints[name]
        for name in signature.parameters
        if isinstance(hints.get(name), type) and hasattr(hints[name], "__dataclass_fields__")
    }
    kept = [p for name, p in signature.parameters.items() if name not in roots]
    generated = [_option(root, s) for root in roots.values() for s in settings_of(root)]
    config = inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(None, "--config", help=CONFIG_HELP, rich_help_panel="Settings"),
        annotation=Path | None,
    )
    names = [p.name for p in kept] + [p.name for p in generated]
    clash = {n for n in names if names.count(n) > 1} | ({"config"} & set(names))
    if clash:
        raise TypeError(f"{fn.__name__}: parameter names used twice: {sorted(clash)}")
    setting_params = {p.name for p in generated}

    @functools.wraps(fn)
    def command(**kwargs: Any) -> Any:
        flags = {k: kwargs.pop(k) for k in list(kwargs) if k in setting_params}
        config_file = kwargs.pop("config", None)
        try:
            built = resolve(list(roots.values()), flags=flags, config_file=config_file)
        except SettingsError as err:
            raise fail(str(err)) from None
        kwargs.update({name: built[root] for name, root in roots.items()})
        return fn(**kwargs)

    params = [*kept, *generated, config]
    params.sort(key=lambda p: p.kind)  # positional parameters first
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return typing.cast(F, command)
