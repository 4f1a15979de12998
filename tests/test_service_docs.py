"""docs/service.md documents the options that `jitrl serve` really has, and all of them."""

from __future__ import annotations

import re
from pathlib import Path

from jitrl.service import ServiceConfig
from jitrl.settings import settings_of

DOC = Path(__file__).resolve().parents[1] / "docs" / "service.md"


def serve_flags() -> set[str]:
    flags = {s.flag for s in settings_of(ServiceConfig)}
    negated = {f"--no-{s.flag[2:]}" for s in settings_of(ServiceConfig) if s.kind is bool}
    return flags | negated | {"--config", "--help"}


def test_every_documented_option_exists() -> None:
    documented = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", DOC.read_text()))
    assert documented, "no option found in the documentation"
    assert documented - serve_flags() == set()


def test_every_service_setting_is_documented() -> None:
    text = DOC.read_text()
    own = [s for s in settings_of(ServiceConfig) if s.path[0] != "jitrl"]
    missing = [s.flag for s in own if f"`{s.flag}`" not in text and f"`{s.flag} " not in text]
    assert missing == []
    assert "JITRL_API_KEYS" in text and "exit status" in text
