"""Settings defined once: every flag, config-file key and ``JITRL_*`` variable is a dataclass field.

A *settings root* is a frozen dataclass whose fields are settings or nested settings dataclasses
(:class:`jitrl.method.config.JitRLConfig`, :class:`jitrl.running.spec.RunSpec`, ...). Each leaf
field is one :class:`Setting` with a flat name: the field's own name, or ``FLAG_PREFIX`` + name
when its class declares a prefix (``ReflectionConfig.weight`` is ``reflect_weight``). The same
name is the command-line flag (``--reflect-weight``), the key in a TOML file (``reflect_weight``,
at the top level or inside any table) and the environment variable (``JITRL_REFLECT_WEIGHT``).
Help texts are the fields' docstrings.

Precedence, lowest first: the dataclass defaults, the TOML file (``--config FILE`` or
``$JITRL_CONFIG``), ``JITRL_*`` variables, command-line flags. :func:`resolve` applies it and
validates the result through the dataclasses' own ``__post_init__`` checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import docstring_parser

ENV_PREFIX = "JITRL_"
"""Environment variables named ``JITRL_<NAME>`` set defaults (``JITRL_BETA=0.2``)."""
CONFIG_ENV_VAR = "JITRL_CONFIG"
"""A TOML settings file used when no ``--config`` is given."""
NONE_WORDS = frozenset({"none", "null", ""})
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A setting is unknown, malformed or invalid; the message names where it came from."""


@dataclass(frozen=True)
class Setting:
    """One leaf field of a settings root."""

    name: str
    """Flat name: flag ``--name-with-dashes``, TOML key and ``JITRL_NAME``."""
    path: tuple[str, ...]
    """Attribute path from the root (``("policy", "beta")``)."""
    kind: Any
    """The field's type with ``None`` removed (``float``, ``int``, a ``Literal``, ...)."""
    optional: bool
    """``None`` is a valid value (written ``none`` in text)."""
    default: Any
    """The value in the root's default instance."""
    help: str
    """The field's docstring."""

    @property
    def summary(self) -> str:
        """The docstring's first sentence, without reStructuredText markup (for ``--help``)."""
        text = self.help.replace("``", "").replace(":class:", "").replace(":mod:", "")
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("`", "")
        first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
        return first if len(first) < len(text) else text

    @property
    def flag(self) -> str:
        """The command-line flag (``--max-steps``)."""
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        """The environment variable (``JITRL_MAX_STEPS``)."""
        return ENV_PREFIX + self.name.upper()

    @property
    def choices(self) -> tuple[str, ...]:
        """The allowed values of a ``Literal`` setting (empty otherwise)."""
        if typing.get_origin(self.kind) is Literal:
            return tuple(str(c) for c in typing.get_args(self.kind))
        return ()

    def parse(self, text: str) -> Any:
        """The value of a text (a flag or a variable); :class:`SettingsError` if malformed."""
        raw = text.strip()
        if self.optional and raw.lower() in NONE_WORDS:
            return None
        try:
            return _convert(self.kind, raw)
        except ValueError as err:
            raise SettingsError(f"{self.name}: {err}") from None

    def check(self, value: Any) -> Any:
        """A value read from a TOML file, type-checked (ints accepted for floats)."""
        if value is None and self.optional:
            return None
        if isinstance(value, str) and not self.choices and self.kind is not str:
            return self.parse(value)
        ok = _fits(self.kind, value)
        if not ok:
            raise SettingsError(f"{self.name}: expected {_describe(self.kind)}, got {value!r}")
        if typing.get_origin(self.kind) is tuple:
            return tuple(value)
        return float(value) if self.kind is float else value


def _convert(kind: Any, raw: str) -> Any:
    if kind is bool:
        if raw.lower() in TRUE_WORDS:
            return True
        if raw.lower() in FALSE_WORDS:
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
    if typing.get_origin(kind) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if typing.get_origin(kind) is Literal:
        allowed = [str(c) for c in typing.get_args(kind)]
        if raw not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return raw
    return raw


def _fits(kind: Any, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typing.get_origin(kind) is Literal:
        return value in typing.get_args(kind)
    if typing.get_origin(kind) is tuple:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def _describe(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(str(c) for c in typing.get_args(kind))
    if typing.get_origin(kind) is tuple:
        return "a list of strings"
    return {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "a string")


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass and of the dataclasses it inherits from."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            parsed = docstring_parser.parse_from_object(klass)
            docs.update(
                {p.arg_name: " ".join((p.description or "").split()) for p in parsed.params}
            )
    return docs


@cache
def settings_of(root: type) -> tuple[Setting, ...]:
    """Every leaf setting of a settings root, depth first, in field order."""
    return tuple(_walk(root, root(), ()))


def _walk(cls: type, instance: Any, path: tuple[str, ...]) -> list[Setting]:
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    prefix = getattr(cls, "FLAG_PREFIX", "")
    out: list[Setting] = []
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("setting") is False:
            continue
        kind, optional = _split_optional(hints[f.name])
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(kind):
            out += _walk(kind, value, (*path, f.name))  # type: ignore[arg-type]
            continue
        help_text = docs.get(f.name, "")
        out.append(Setting(prefix + f.name, (*path, f.name), kind, optional, value, help_text))
    return out


def setting_names(roots: Sequence[type]) -> dict[str, tuple[type, Setting]]:
    """Flat name -> (root, setting) over several roots; names must not repeat."""
    table: dict[str, tuple[type, Setting]] = {}
    for root in roots:
        for s in settings_of(root):
            if s.name in table:
                other = table[s.name][0].__name__
                raise TypeError(f"setting {s.name!r} is defined by {other} and {root.__name__}")
            table[s.name] = (root, s)
    return table


def build(root: type, values: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> Any:
    """An instance of ``root`` with the named settings changed from their defaults (validated).

    Args:
        root: the settings root.
        values: flat name -> value (already typed).
        sources: flat name -> where the value came from, for error messages.
    """
    by_name = {s.name: s for s in settings_of(root)}
    nested: dict[tuple[str, ...], dict[str, Any]] = {}
    for name, value in values.items():
        setting = by_name[name]
        nested.setdefault(setting.path[:-1], {})[setting.path[-1]] = value
    try:
        return _assemble(root, root(), (), nested)
    except (ValueError, TypeError) as err:
        named = [n for n in values if re.search(rf"\b{re.escape(by_name[n].path[-1])}\b", str(err))]
        where = sorted({(sources or {}).get(n, n) for n in named or values})
        hint = f" (set by {', '.join(where)})" if where else ""
        raise SettingsError(f"{err}{hint}") from None


def _assemble(cls: type, instance: Any, path: tuple[str, ...], nested: dict[Any, Any]) -> Any:
    changes = dict(nested.get(path, {}))
    for f in dataclasses.fields(cls):
        child = getattr(instance, f.name)
        if dataclasses.is_dataclass(child) and any(
            p[: len(path) + 1] == (*path, f.name) for p in nested
        ):
            changes[f.name] = _assemble(type(child), child, (*path, f.name), nested)
    return dataclasses.replace(instance, **changes) if changes else instance


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings of a TOML file: leaf keys at any depth (tables only group them)."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SettingsError(f"cannot read config file {file}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{file} is not valid TOML: {err}") from None
    flat: dict[str, Any] = {}
    _flatten(data, flat)
    return flat


def _flatten(table: Mapping[str, Any], out: dict[str, Any]) -> None:
    for key, value in table.items():
        if isinstance(value, Mapping):
            _flatten(value, out)
        else:
            out[key.replace("-", "_")] = value


def resolve(
    roots: Sequence[type],
    *,
    flags: Mapping[str, Any] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[type, Any]:
    """Build every root from defaults < config file < ``JITRL_*`` variables < flags.

    Args:
        roots: the settings roots of a command.
        flags: flat name -> value given on the command line (``None`` values are ignored).
        config_file: a TOML file; ``None`` uses ``$JITRL_CONFIG`` when set.
        environ: the environment (default: ``os.environ``).

    Raises:
        SettingsError: an unknown key in the file or flag, a malformed value, or an invalid
            setting.
    """
    env = os.environ if environ is None else environ
    table = setting_names(roots)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    file = config_file if config_file is not None else env.get(CONFIG_ENV_VAR) or None
    if file is not None:
        for key, value in read_toml(file).items():
            if key not in table:
                raise SettingsError(f"{file}: unknown setting {key!r}{_did_you_mean(key, table)}")
            values[key] = table[key][1].check(value)
            sources[key] = f"{file}"
    for name, (_, setting) in table.items():
        text = env.get(setting.env_var)
        if text is not None:
            values[name] = _from_text(setting, text, setting.env_var)
            sources[name] = setting.env_var
    for name, value in (flags or {}).items():
        if value is None:
            continue
        if name not in table:
            raise SettingsError(f"unknown setting {name!r}{_did_you_mean(name, table)}")
        setting = table[name][1]
        values[name] = _from_text(setting, value, setting.flag) if isinstance(value, str) else value
        sources[name] = setting.flag
    out = {}
    for root in roots:
        mine = {n: v for n, v in values.items() if table[n][0] is root}
        out[root] = build(root, mine, sources)
    return out


def _from_text(setting: Setting, text: str, where: str) -> Any:
    try:
        value = setting.parse(text)
    except SettingsError as err:
        raise SettingsError(f"{where}: {str(err).split(': ', 1)[-1]}") from None
    if isinstance(value, float) and not math.isfinite(value):
        return value  # the dataclass decides whether inf/nan is acceptable
    return value


def _did_you_mean(key: str, table: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(table), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def as_dict(instance: Any) -> dict[str, Any]:
    """The JSON form of a settings root (``dataclasses.asdict``)."""
    return dataclasses.asdict(instance)


__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_PREFIX",
    "Setting",
    "SettingsError",
    "as_dict",
    "build",
    "read_toml",
    "resolve",
    "setting_names",
    "settings_of",
]
