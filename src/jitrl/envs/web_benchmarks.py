"""The benchmarks behind :class:`jitrl.envs.browsergym.BrowserGymEnv` and how each is set up.

MiniWoB++ ships its pages inside the ``miniwob`` package (:func:`miniwob_url`,
:func:`miniwob_tasks`).
WebArena, WebArena-Lite and WorkArena run on websites the user hosts. BrowserGym reads their
addresses from environment variables:

- WebArena and WebArena-Lite: ``WA_SHOPPING``, ``WA_SHOPPING_ADMIN``, ``WA_REDDIT``,
  ``WA_GITLAB``, ``WA_WIKIPEDIA``, ``WA_MAP``, ``WA_HOMEPAGE`` (optionally ``WA_FULL_RESET``);
  their evaluators also need NLTK's ``punkt_tab`` data, which BrowserGym tries to download on
  import;
- WorkArena: ``SNOW_INSTANCE_URL``, ``SNOW_INSTANCE_UNAME``, ``SNOW_INSTANCE_PWD`` (or
  ``SNOW_INSTANCE_POOL``, a file of instances).

:func:`check_webarena` and :func:`check_workarena` fail with a :class:`WebConfigError` that names
the missing variable or the unreachable site, before any browser starts. The task configs ship
inside the ``libwebarena`` and ``browsergym-webarenalite`` packages; :func:`load_webarena_configs`
reads and validates them without importing BrowserGym's modules (whose import downloads data).
"""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from jitrl.envs.errors import WebConfigError

WEB_INSTALL_HINT = "pip install 'jitrl[web]' and run: jitrl setup browser"
MINIWOB_URL_VAR = "MINIWOB_URL"
WEBARENA_INSTALL_HINT = "pip install browsergym-webarena browsergym-webarenalite"
WEBARENA_SITE_VARS = {
    "shopping": "WA_SHOPPING",
    "shopping_admin": "WA_SHOPPING_ADMIN",
    "reddit": "WA_REDDIT",
    "gitlab": "WA_GITLAB",
    "wikipedia": "WA_WIKIPEDIA",
    "map": "WA_MAP",
    "homepage": "WA_HOMEPAGE",
}
"""Site name -> the environment variable BrowserGym reads its URL from."""
WORKARENA_VARS = ("SNOW_INSTANCE_URL", "SNOW_INSTANCE_UNAME", "SNOW_INSTANCE_PWD")
WORKARENA_POOL_VAR = "SNOW_INSTANCE_POOL"
PLACEHOLDERS = {
    "__SHOPPING_ADMIN__": "shopping_admin",
    "__SHOPPING__": "shopping",
    "__REDDIT__": "reddit",
    "__GITLAB__": "gitlab",
    "__WIKIPEDIA__": "wikipedia",
    "__MAP__": "map",
}
"""Placeholders in the raw task configs and the sites they stand for."""
REQUIRED_KEYS = ("task_id", "intent", "start_url", "sites", "eval")
DEFAULT_REACH_TIMEOUT_S = 10.0
Benchmark = Literal["webarena", "webarena-lite"]
_CONFIG_FILES: dict[str, tuple[str, str, str]] = {
    "webarena": ("webarena", "test.raw.json", "task_id"),
    "webarena-lite": ("browsergym.webarenalite", "test_webarena_lite.raw.json", "old_task_id"),
}
"""Benchmark -> (package holding the configs, file, key BrowserGym registers the task by)."""


def webarena_urls(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Site name -> URL from the ``WA_*`` variables; raises naming every missing one."""
    env = os.environ if environ is None else environ
    missing = [var for var in WEBARENA_SITE_VARS.values() if not env.get(var, "").strip()]
    if missing:
        raise WebConfigError(
            f"WebArena needs the URLs of the sites you host; missing: {', '.join(missing)} "
            f"(all of {', '.join(WEBARENA_SITE_VARS.values())} must be set)"
        )
    return {site: env[var].strip().rstrip("/") for site, var in WEBARENA_SITE_VARS.items()}


def check_reachable(urls: Mapping[str, str], timeout_s: float = DEFAULT_REACH_TIMEOUT_S) -> None:
    """Raise :class:`WebConfigError` naming the first site that gives no HTTP answer in time.

    Any HTTP status counts as reachable (a login page may answer 401 or 403).
    """
    for site, url in urls.items():
        try:
            with urllib.request.urlopen(url, timeout=timeout_s):
                pass
        except urllib.error.HTTPError:
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            var = WEBARENA_SITE_VARS.get(site, site)
            reason = getattr(exc, "reason", exc)
            raise WebConfigError(f"site {site!r} ({var}={url}) is unreachable: {reason}") from exc


def check_nltk_punkt() -> None:
    """WebArena's evaluators (and BrowserGym's import) need NLTK's ``punkt_tab`` data."""
    try:
        import nltk
    except ImportError as exc:
        raise ImportError(f"WebArena needs its packages: {WEBARENA_INSTALL_HINT}") from exc
    try:
        nltk.data.find("tokenizers/punkt_tab")
    except LookupError as exc:
        raise WebConfigError(
            "WebArena's evaluators need NLTK's punkt_tab data and BrowserGym would download it "
            "on import: run `python -m nltk.downloader punkt_tab` where there is internet, or "
            "set NLTK_DATA to a folder that holds tokenizers/punkt_tab"
        ) from exc


def check_webarena(
    *, reachable: bool = True, timeout_s: float = DEFAULT_REACH_TIMEOUT_S
) -> dict[str, str]:
    """Check variables, NLTK data and (optionally) reachability; return the site URLs."""
    urls = webarena_urls()
    check_nltk_punkt()
    if reachable:
        check_reachable(urls, timeout_s)
    return urls


def check_workarena(
    *, reachable: bool = True, timeout_s: float = DEFAULT_REACH_TIMEOUT_S
) -> str | None:
    """Check WorkArena's instance variables; return the instance URL (``None`` with a pool)."""
    pool = os.environ.get(WORKARENA_POOL_VAR, "").strip()
    if pool:
        if not Path(pool).expanduser().is_file():
            raise WebConfigError(f"{WORKARENA_POOL_VAR}={pool} is not a file")
        return None
    missing = [var for var in WORKARENA_VARS if not os.environ.get(var, "").strip()]
    if missing:
        raise WebConfigError(
            f"WorkArena needs a ServiceNow instance; missing: {', '.join(missing)} "
            f"(or set {WORKARENA_POOL_VAR} to an instance-pool file)"
        )
    url = os.environ["SNOW_INSTANCE_URL"].strip()
    if reachable:
        check_reachable({"servicenow": url}, timeout_s)
    return url


def _config_text(benchmark: Benchmark) -> tuple[str, str]:
    """The raw config JSON of ``benchmark`` and the key its tasks are registered by."""
    if benchmark not in _CONFIG_FILES:
        raise ValueError(f"benchmark must be one of {sorted(_CONFIG_FILES)}, got {benchmark!r}")
    package, name, id_key = _CONFIG_FILES[benchmark]
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{benchmark} configs need {package!r}: {WEBARENA_INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / name
        if path.is_file():
            return path.read_text(encoding="utf-8"), id_key
    raise ImportError(f"{name} is missing from the {package!r} package")


def validate_webarena_config(config: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless ``config`` has the fields BrowserGym's WebArena task reads."""
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise ValueError(f"task config {config.get('task_id')!r} lacks {', '.join(missing)}")
    unknown = set(config["sites"]) - set(WEBARENA_SITE_VARS)
    if not config["sites"] or unknown:
        raise ValueError(f"task config {config['task_id']}: bad sites {config['sites']!r}")
    if not config["eval"].get("eval_types"):
        raise ValueError(f"task config {config['task_id']}: no eval_types")
    if not str(config["intent"]).strip():
        raise ValueError(f"task config {config['task_id']}: empty intent")


def load_webarena_configs(
    benchmark: Benchmark = "webarena", urls: Mapping[str, str] | None = None
) -> dict[int, dict[str, Any]]:
    """Task configs by the id BrowserGym registers (``webarena.<id>``, ``webarenalite.<id>``).

    With ``urls`` (site -> URL, e.g. from :func:`webarena_urls`) the ``__SITE__`` placeholders
    are replaced as BrowserGym does; without, they stay. Every config is validated.
    """
    text, id_key = _config_text(benchmark)
    for placeholder, site in PLACEHOLDERS.items():
        if urls is not None:
            text = text.replace(placeholder, urls[site])
    configs: dict[int, dict[str, Any]] = {}
    for config in json.loads(text):
        validate_webarena_config(config)
        configs[int(config[id_key])] = config
    return configs


def webarena_task_ids(benchmark: Benchmark = "webarena") -> list[int]:
    """The task ids of ``benchmark``, sorted."""
    return sorted(load_webarena_configs(benchmark))


def miniwob_url() -> str:
    """``$MINIWOB_URL``, else the ``file://`` URL of the HTML inside the ``miniwob`` package."""
    if os.environ.get(MINIWOB_URL_VAR):
        return os.environ[MINIWOB_URL_VAR]
    spec = importlib.util.find_spec("miniwob")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"MiniWoB++ tasks need the miniwob package: {WEB_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "html" / "miniwob"
    if not folder.is_dir():
        raise ImportError(f"the miniwob package has no html/miniwob folder at {folder}")
    return folder.as_uri() + "/"


def miniwob_tasks() -> list[str]:
    """Names of all MiniWoB++ tasks BrowserGym registers (``click-test``, ...), sorted."""
    try:
        import browsergym.miniwob
    except ImportError as exc:
        raise ImportError(f"MiniWoB++ tasks need browsergym-miniwob: {WEB_INSTALL_HINT}") from exc

    return sorted(str(task.subdomain) for task in browsergym.miniwob.ALL_MINIWOB_TASKS)


def task_kwargs(task: str) -> dict[str, Any]:
    """Register the task's benchmark with gymnasium; check its sites; return task arguments.

    Raises:
        ImportError: the benchmark's BrowserGym package is missing.
        WebConfigError: WebArena/WorkArena variables missing or sites unreachable.
    """
    try:
        if task.startswith("miniwob."):
            import browsergym.miniwob

            return {"base_url": miniwob_url()}
        if task.startswith(("webarena.", "webarenalite.")):
            check_webarena()
            import browsergym.webarena

            if task.startswith("webarenalite."):
                import browsergym.webarenalite
        elif task.startswith("workarena."):
            check_workarena()
            import browsergym.workarena  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{task} needs its BrowserGym package: {WEB_INSTALL_HINT}") from exc
    return {}
