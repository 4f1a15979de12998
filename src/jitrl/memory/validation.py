"""The one set of rules every experience must pass before a store keeps it.

Stores validate a whole episode *before* opening a transaction, so an invalid record anywhere in
an episode is reported without touching the store; JSON Lines imports validate the whole file
before a store is even opened. The rules:

- texts are UTF-8 encodable ``str``; the state text, the action and the episode id must not be
  blank (empty or only whitespace, as :func:`is_blank` says);
- returns, rewards and times are finite real numbers (``bool`` is refused);
- the steps of one episode are exactly ``0, 1, ..., n - 1``, in that order;
- all records of an episode share one ``episode_id`` and one namespace
  (:func:`~jitrl.method.types.check_namespace` says which names are valid).

The HTTP service (:mod:`jitrl.service.models`) refuses blank state texts and candidates and
non-finite rewards with the same meaning of "blank"; :func:`is_blank` is the shared definition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from jitrl.method.types import Experience, State, check_namespace

#: Largest step a store accepts (SQLite ``INTEGER`` is a signed 64-bit value).
MAX_STEP = 2**63 - 1
#: How many steps an error message lists before eliding the rest.
_SHOWN_STEPS = 10


def is_blank(text: str) -> bool:
    """Whether ``text`` is empty or only whitespace (``str.strip`` removes all of it)."""
    return not text.strip()


def _check_text(name: str, value: object, *, allow_blank: bool = True) -> None:
    """Raise unless ``value`` is a UTF-8 encodable ``str`` (non-blank when required)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_blank and is_blank(value):
        raise ValueError(f"{name} must not be empty or blank, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid UTF-8 text (lone surrogate?): {exc}") from exc


def _check_float(name: str, value: object) -> None:
    """Raise unless ``value`` is a finite real number (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")


def validate_experience(experience: object) -> None:
    """Raise ``TypeError``/``ValueError`` if ``experience`` breaks a rule of one record.

    The rules across records (step numbering, one episode id) are checked by
    :func:`validate_episode`.

    Args:
        experience: the record to check; must be an :class:`~jitrl.method.types.Experience`.
    """
    if not isinstance(experience, Experience):
        raise TypeError(f"expected an Experience, got {type(experience).__name__}")
    if not isinstance(experience.state, State):
        raise TypeError(f"state must be a State, got {type(experience.state).__name__}")
    _check_text("state.text", experience.state.text, allow_blank=False)
    if experience.state.key is not None:
        _check_text("state.key", experience.state.key)
    _check_text("action", experience.action, allow_blank=False)
    _check_text("episode_id", experience.episode_id, allow_blank=False)
    _check_text("task_id", experience.task_id)
    check_namespace(experience.namespace)
    step = experience.step
    if isinstance(step, bool) or not isinstance(step, Integral):
        raise TypeError(f"step must be an int, got {type(step).__name__}")
    if not 0 <= int(step) <= MAX_STEP:
        raise ValueError(f"step must be in [0, {MAX_STEP}], got {step}")
    for name in ("ret", "reward", "created_at"):
        _check_float(name, getattr(experience, name))


def _check_steps(records: Sequence[Experience]) -> None:
    """Raise ``ValueError`` unless the records' steps are exactly ``0 .. n-1`` in order."""
    steps = [int(record.step) for record in records]
    if steps != list(range(len(steps))):
        shown = ", ".join(map(str, steps[:_SHOWN_STEPS])) + (
            ", ..." if len(steps) > _SHOWN_STEPS else ""
        )
        raise ValueError(
            f"episode {records[0].episode_id!r} has steps [{shown}]; the steps of an episode "
            f"must be 0 to {len(steps) - 1}, in order, each once"
        )


def validate_episode(experiences: Sequence[Experience]) -> tuple[Experience, ...]:
    """Check one episode and return its records as a tuple.

    Args:
        experiences: the episode's records, in step order.

    Returns:
        The records, unchanged, as a tuple.

    Raises:
        ValueError: the episode is empty, records disagree on ``episode_id``, the steps are not
            ``0 .. n-1`` in order, or a value is bad (the message names the record's position).
        TypeError: a record or a field has the wrong type.
    """
    if isinstance(experiences, (str, bytes)):
        raise TypeError("experiences must be a sequence of Experience, not a string")
    records = tuple(experiences)
    if not records:
        raise ValueError("an episode needs at least one experience")
    for position, record in enumerate(records):
        try:
            validate_experience(record)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"experience #{position} of the episode: {exc}") from exc
        if record.namespace != records[0].namespace:
            raise ValueError(
                f"experience #{position} is in namespace {record.namespace!r}, but the episode "
                f"started in {records[0].namespace!r}; an episode lives in one namespace"
            )
        if record.episode_id != records[0].episode_id:
            raise ValueError(
                f"experience #{position} has episode_id {record.episode_id!r}, but the episode "
                f"started with {records[0].episode_id!r}; one call stores one episode"
            )
    _check_steps(records)
    return records


def meta_to_json(meta: Mapping[str, Any] | None) -> str:
    """Serialise episode metadata to a JSON object text (``"{}"`` for ``None``).

    Raises:
        TypeError: ``meta`` is not a mapping.
        ValueError: ``meta`` is not JSON-serialisable (or holds non-finite floats).
    """
    if meta is None:
        return "{}"
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        return json.dumps(dict(meta), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must be JSON-serialisable: {exc}") from exc
