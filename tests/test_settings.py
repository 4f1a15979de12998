"""Settings defined once: names, TOML files, JITRL_* variables, flags, and their precedence."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jitrl.method.config import JitRLConfig
from jitrl.running.executors import ExecutionConfig
from jitrl.running.spec import CompareSpec, RunSpec
from jitrl.service import ServiceConfig
from jitrl.settings import SettingsError, resolve, setting_names, settings_of

COMMANDS = {
    "run": [RunSpec, ExecutionConfig],
    "compare": [CompareSpec, ExecutionConfig],
    "serve": [ServiceConfig],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_setting_has_a_unique_name_and_a_docstring(command: str) -> None:
    table = setting_names(COMMANDS[command])  # raises on a name used twice
    for name, (_, setting) in table.items():
        assert setting.help, f"{name} has no docstring"
        assert name.isidentifier() and name == name.lower()


def test_every_method_setting_is_reachable_from_every_command() -> None:
    method = {s.path[-1] for s in settings_of(JitRLConfig)}
    for command, roots in COMMANDS.items():
        leaves = {s.path for root in roots for s in settings_of(root)}
        reachable = {p[-1] for p in leaves if p[0] in ("method", "jitrl")}
        assert method <= reachable, (command, method - reachable)


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    toml = tmp_path / "jitrl.toml"
    toml.write_text('beta = 0.7\nk = 7\n[policy]\nselection = "sample"\n')
    env = {"JITRL_BETA": "0.8", "JITRL_GAMMA": "0.5"}
    built = resolve([RunSpec], flags={"beta": "0.9"}, config_file=toml, environ=env)
    spec = built[RunSpec]
    assert spec.method.policy.beta == 0.9  # flag over variable over file
    assert spec.method.returns.gamma == 0.5  # variable over default
    assert spec.method.retrieval.k == 7  # file over default
    assert spec.method.policy.selection == "sample"  # tables only group keys
    assert spec.method.values == JitRLConfig().values  # untouched: defaults
    from_env_file = resolve([RunSpec], environ={"JITRL_CONFIG": str(toml)})[RunSpec]
    assert from_env_file.method.policy.beta == 0.7


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"beta": "0"}, "beta must be positive"),
        ({"beta": "nan"}, "beta must be positive"),
        ({"beta": "inf"}, "beta must be positive"),
        ({"k": "0"}, "k must be >= 1"),
        ({"gamma": "2"}, "gamma must be in"),
        ({"alpha": "nan"}, "alpha"),
        ({"k": "many"}, "--k: expected an integer"),
        ({"threads": "none"}, None),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(flags: dict, message: str | None) -> None:
    if message is None:
        assert resolve([RunSpec], flags=flags, environ={})[RunSpec].threads is None
        return
    with pytest.raises(SettingsError, match=message):
        resolve([RunSpec], flags=flags, environ={})


def test_unknown_file_keys_and_bad_files(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("bta = 0.3\n")
    with pytest.raises(SettingsError, match="did you mean 'beta'"):
        resolve([RunSpec], config_file=toml, environ={})
    toml.write_text("beta = [1, 2]\n")
    with pytest.raises(SettingsError, match="beta: expected a number"):
        resolve([RunSpec], config_file=toml, environ={})
    toml.write_text("beta = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        resolve([RunSpec], config_file=toml, environ={})
    with pytest.raises(SettingsError, match="not found"):
        resolve([RunSpec], config_file=tmp_path / "none.toml", environ={})


def test_an_unknown_flag_name_is_one_clear_error() -> None:
    # library and benchmark callers pass flat names; a typo must not surface as a KeyError
    with pytest.raises(SettingsError, match=r"unknown setting 'bta'.*did you mean 'beta'"):
        resolve([RunSpec], flags={"bta": 0.3}, environ={})


def test_variables_that_are_not_settings_are_ignored() -> None:
    env = {"JITRL_JERICHO_DIR": "/games", "JITRL_CACHE": "/tmp/x", "JITRL_BETA": "0.4"}
    assert resolve([RunSpec], environ=env)[RunSpec].method.policy.beta == 0.4


def test_summary_holds_the_settings_as_json(tmp_path: Path) -> None:
    spec = RunSpec(method=JitRLConfig())
    data = json.loads(json.dumps(dataclasses.asdict(spec)))
    assert data["method"]["policy"]["beta"] == JitRLConfig().policy.beta
    assert not any(isinstance(v, float) and math.isnan(v) for v in data.values())


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "COLUMNS": "250", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "jitrl", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_compare_help_lists_every_method_setting(tmp_path: Path) -> None:
    shown = _cli("compare", "--help", cwd=tmp_path).stdout
    for setting in settings_of(CompareSpec):
        assert setting.flag in shown, setting.flag
    assert "[default: (0.3)]" in shown or "0.3" in shown


@pytest.mark.slow
def test_beta_from_a_config_file_reaches_every_decision(tmp_path: Path) -> None:
    (tmp_path / "jitrl.toml").write_text("[method]\nbeta = 0.77\n")
    args = ["run", "--model", "scripted", "--episodes", "2", "--max-steps", "4"]
    proc = _cli(*args, "--config", "jitrl.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "runs" / "latest" / "decisions.jsonl").read_text().splitlines()
    assert rows and all(json.loads(r)["beta"] == 0.77 for r in rows)
    summary = json.loads((tmp_path / "runs" / "latest" / "summary.json").read_text())
    assert summary["settings"]["method"]["policy"]["beta"] == 0.77
