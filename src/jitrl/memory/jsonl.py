"""Move experiences between stores as JSON Lines: one JSON object per experience.

Each line holds every field of an :class:`~jitrl.method.types.Experience`, the state as an object::

    {"episode_id": "e1", "step": 0, "task_id": "zork1", "state": {"text": "...", "key": null},
     "action": "open mailbox", "reward": 0.0, "ret": 4.5, "created_at": 1718000000.0,
     "namespace": "default"}

Floats are written with Python's shortest round-trip representation, so an export followed by an
import reproduces every record exactly. Exports are written to a temporary file in the target's
folder and renamed over the target, so a reader never sees half a file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from jitrl.fileio import atomic_write
from jitrl.memory.base import DuplicateEpisodeError, ExperienceStore
from jitrl.memory.validation import validate_episode, validate_experience
from jitrl.method.types import DEFAULT_NAMESPACE, Experience, State

logger = logging.getLogger(__name__)

_REQUIRED_KEYS = frozenset({"episode_id", "step", "state", "action", "ret"})
_OPTIONAL_KEYS = frozenset({"task_id", "reward", "created_at", "namespace"})
_STATE_KEYS = frozenset({"text", "key"})


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_jsonl` did.

    Attributes:
        episodes: episodes added to the store.
        experiences: experiences added to the store.
        skipped_episodes: episodes of the file that the store already held (left untouched).
    """

    episodes: int
    experiences: int
    skipped_episodes: int


def experience_to_json(experience: Experience) -> dict[str, Any]:
    """The JSON object of one experience (all fields; the state as ``{"text", "key"}``)."""
    return {
        "episode_id": experience.episode_id,
        "step": experience.step,
        "task_id": experience.task_id,
        "state": {"text": experience.state.text, "key": experience.state.key},
        "action": experience.action,
        "reward": experience.reward,
        "ret": experience.ret,
        "created_at": experience.created_at,
        "namespace": experience.namespace,
    }


def experience_from_json(obj: object) -> Experience:
    """Parse and validate one JSON object written by :func:`experience_to_json`.

    ``task_id``, ``reward``, ``created_at`` and ``namespace`` may be omitted (dataclass
    defaults: a file written before namespaces existed lands in ``default``); unknown
    keys are refused so that typos do not pass silently.

    Raises:
        ValueError / TypeError: the object is malformed or a value cannot be stored.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    missing = sorted(_REQUIRED_KEYS - obj.keys())
    unknown = sorted(obj.keys() - _REQUIRED_KEYS - _OPTIONAL_KEYS)
    if missing or unknown:
        raise ValueError(f"missing keys {missing}, unknown keys {unknown}")
    state = obj["state"]
    if not isinstance(state, dict) or "text" not in state or state.keys() - _STATE_KEYS:
        raise ValueError(f'state must be an object {{"text": ..., "key": ...}}, got {state!r}')
    raw = Experience(
        state=State(text=state["text"], key=state.get("key")),
        action=obj["action"],
        ret=obj["ret"],
        episode_id=obj["episode_id"],
        step=obj["step"],
        task_id=obj.get("task_id", ""),
        reward=obj.get("reward", 0.0),
        created_at=obj.get("created_at", 0.0),
        namespace=obj.get("namespace", DEFAULT_NAMESPACE),
    )
    validate_experience(raw)
    return Experience(
        state=raw.state,
        action=raw.action,
        ret=float(raw.ret),
        episode_id=raw.episode_id,
        step=raw.step,
        task_id=raw.task_id,
        reward=float(raw.reward),
        created_at=float(raw.created_at),
        namespace=raw.namespace,
    )


def export_jsonl(store: Iterable[Experience], path: str | os.PathLike[str]) -> int:
    """Write every experience of ``store`` (in its iteration order) to ``path``, atomically.

    The lines go to a temporary file next to ``path``, which is flushed, synced and renamed over
    ``path`` only when complete; on any error ``path`` is left as it was. A replaced file keeps
    its permissions; a new one gets ``0o644``.

    Args:
        store: the store (any iterable of experiences).
        path: the JSON Lines file to write.

    Returns:
        The number of experiences written.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist (it is not created).
        OSError: the file cannot be written.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", os.fspath(target.parent))
    count = 0

    def write(handle: IO[str]) -> None:
        nonlocal count
        for experience in store:
            obj = experience_to_json(experience)
            handle.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
            count += 1

    atomic_write(target, write)
    logger.info("exported %d experiences to %s", count, target)
    return count


def _reject_constant(name: str) -> None:
    """``json.loads`` hook: refuse ``NaN`` / ``Infinity`` (a store keeps finite floats only)."""
    raise ValueError(f"non-finite number {name} is not allowed")


def read_episodes(path: str | os.PathLike[str]) -> dict[str, list[Experience]]:
    """Parse and validate a whole JSON Lines file into episodes, keyed by id in order of first
    appearance.

    Blank lines are skipped; the records of an episode keep their order in the file even when
    episodes are interleaved. Every episode is then checked with the stores' own rules
    (:func:`~jitrl.memory.validation.validate_episode`: steps ``0 .. n-1`` in order, no blank
    texts, finite numbers), so a file that passes here imports without a validation error.

    Raises:
        ValueError: a line is not valid UTF-8 / JSON or not a valid experience (the message
            names the file and the 1-based line number), or an episode breaks a rule (the
            message names the file and the episode).
        OSError: the file cannot be read.
    """
    episodes: dict[str, list[Experience]] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                record = experience_from_json(json.loads(line, parse_constant=_reject_constant))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{os.fspath(path)}, line {number}: {exc}") from exc
            episodes.setdefault(record.episode_id, []).append(record)
    for records in episodes.values():
        try:
            validate_episode(records)
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)}: {exc}") from exc
    return episodes


def import_jsonl(store: ExperienceStore, path: str | os.PathLike[str]) -> ImportResult:
    """Add the episodes of a JSON Lines file to ``store``; episodes it already holds are skipped.

    The whole file is parsed and validated first (:func:`read_episodes`), so a malformed line
    or an invalid episode imports nothing at all. To avoid even creating a new store for a bad
    file, call :func:`read_episodes` before opening the store and then :func:`add_episodes`
    (what ``jitrl memory import`` does). Each episode is then stored with one
    :meth:`~ExperienceStore.add_episode` call (atomic), so importing the same file twice adds
    nothing the second time.

    Args:
        store: the destination store.
        path: a file written by :func:`export_jsonl` (or by hand, in the same format).

    Returns:
        Counts of added episodes and experiences, and of skipped episodes.

    Raises:
        ValueError: a malformed line (naming its number) or an invalid episode (naming it);
            nothing was imported.
    """
    result = add_episodes(store, read_episodes(path))
    logger.info("imported %s from %s", result, os.fspath(path))
    return result


def group_episodes(records: Iterable[Experience]) -> dict[str, list[Experience]]:
    """Records grouped by episode id, in order of first appearance."""
    episodes: dict[str, list[Experience]] = {}
    for record in records:
        episodes.setdefault(record.episode_id, []).append(record)
    return episodes


def add_episodes(
    store: ExperienceStore,
    episodes: Mapping[str, Sequence[Experience]],
    meta_of: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> ImportResult:
    """Store each episode atomically; episodes the store already holds are skipped.

    ``meta_of(episode_id)`` gives the metadata to keep with an episode (``None``: none).
    """
    added = added_records = skipped = 0
    for episode_id, records in episodes.items():
        if store.has_episode(episode_id):
            skipped += 1
            continue
        meta = meta_of(episode_id) if meta_of is not None else None
        try:
            store.add_episode(records, meta=meta or None)
        except DuplicateEpisodeError:  # stored by a concurrent writer meanwhile
            skipped += 1
            continue
        added += 1
        added_records += len(records)
    return ImportResult(episodes=added, experiences=added_records, skipped_episodes=skipped)
