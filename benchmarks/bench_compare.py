"""Comparisons for benchmarks, built from settings by their flat names (as flags and TOML keys).

Every benchmark that compares agents goes through ``jitrl compare``'s own machinery: the same
settings (:mod:`jitrl.settings`), jobs, run folders, resume and report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jitrl.running.compare import (
    Job,
    check_compare,
    compare_settings,
    make_jobs,
    run_jobs,
    write_settings,
)
from jitrl.running.executors import ExecutionConfig
from jitrl.running.spec import CompareSpec
from jitrl.settings import resolve

log = logging.getLogger("bench")


def prepare(
    settings: Mapping[str, Any], out: Path, workers: int, backend: str = "process"
) -> tuple[CompareSpec, ExecutionConfig, list[Job]]:
    """The comparison that ``settings`` name (flat names, typed or text values), written to
    ``out/compare.json`` (refused if ``out`` holds another), and its jobs."""
    flags = {**settings, "workers": workers, "backend": backend}
    built = resolve([CompareSpec, ExecutionConfig], flags=flags, environ={})
    spec, execution = built[CompareSpec], built[ExecutionConfig]
    envs = check_compare(spec, execution)
    write_settings(compare_settings(spec, envs, execution), out)
    return spec, execution, make_jobs(spec, envs, out, threads=spec.threads or 1)


def run(
    settings: Mapping[str, Any],
    out: Path,
    workers: int,
    order: Callable[[list[Job]], list[Job]] | None = None,
    backend: str = "process",
) -> list[str]:
    """Prepare and play a comparison (resuming what ``out`` holds); returns failed jobs."""
    _, execution, jobs = prepare(settings, out, workers, backend)
    errors = run_jobs(order(jobs) if order else jobs, execution)
    for err in errors:
        log.error("failed: %s", err)
    return errors
