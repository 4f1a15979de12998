"""What every text game adapter shares: clean observation text, state texts, view keys and
the commands that never help an agent (Jericho, TextWorld, TextWorldExpress, ScienceWorld)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

EMPTY_INVENTORY = "nothing"
VIEW_KEY_PREFIX = "view:"
"""Opens every view key, so it never equals an emulator's hash."""
VIEW_KEY_CHARS = 16
"""Hex digits of the sha256 kept in a view key."""

META_VERBS = frozenset(
    {
        "about",
        "brief",
        "credits",
        "help",
        "hint",
        "hints",
        "notify",
        "pronouns",
        "quit",
        "restart",
        "restore",
        "save",
        "score",
        "script",
        "superbrief",
        "undo",
        "unscript",
        "verbose",
        "version",
    }
)
"""First words of interpreter/meta commands that never help an agent."""
MAGIC_WORDS = frozenset({"xyzzy", "plugh", "plover"})
"""Easter-egg words that Jericho reports as valid because the game answers them."""

NOISE_PATTERNS = (
    re.compile(r"\[?\(?your score (has )?(just )?(gone|went) (up|down)[^\]\n)]*[\])]?", re.I),
    re.compile(r"in that game you scored[^\n]*", re.I),
    re.compile(r"you (have )?scored \d+ out of a possible \d+[^\n]*", re.I),
    re.compile(r"would you like to restart[^\n]*", re.I),
    re.compile(r"^[^\n]*serial number[^\n]*$", re.I | re.M),
    re.compile(r"^[^\n]*copyright \(c\)[^\n]*$", re.I | re.M),
    re.compile(r"^[^\n]*is a registered trademark[^\n]*$", re.I | re.M),
)
"""Volatile text (score notices, end-of-game prompts, release banners) kept out of states."""
_WHITESPACE = re.compile(r"\s+")


def normalise_observation(text: str, max_chars: int) -> str:
    """Drop volatile noise, collapse whitespace, lowercase and truncate to ``max_chars``."""
    for pattern in NOISE_PATTERNS:
        text = pattern.sub(" ", text)
    text = _WHITESPACE.sub(" ", text).strip().lower()
    return text[:max_chars].rstrip()


def view_key(parts: Sequence[str]) -> str:
    """A state's *view* as a short key: the texts the agent reads of it (a location, what
    ``look`` prints, the inventory; never the last message), normalised and whole, hashed, so
    that two states that read alike share it."""
    view = " | ".join(normalise_observation(part, len(part)) for part in parts)
    return VIEW_KEY_PREFIX + hashlib.sha256(view.encode("utf-8")).hexdigest()[:VIEW_KEY_CHARS]


def format_state_text(location: str, inventory: list[str], observation: str) -> str:
    """The compact ``location: ... | inventory: ... | observation: ...`` string of a state."""
    items = ", ".join(item.lower() for item in inventory) or EMPTY_INVENTORY
    return f"location: {location.lower()} | inventory: {items} | observation: {observation}"


def is_meta_command(action: str, *, include_magic: bool = False) -> bool:
    """Whether ``action`` is an interpreter/meta command (or, optionally, a magic word)."""
    words = action.strip().lower().split()
    if not words:
        return True
    return words[0] in META_VERBS or (include_magic and words[0] in MAGIC_WORDS)


def dedupe_candidates(actions: list[str], max_candidates: int | None) -> list[str]:
    """Remove duplicates (first occurrence wins, order kept) and apply the optional cap."""
    unique = list(dict.fromkeys(a.strip() for a in actions if a.strip()))
    return unique if max_candidates is None else unique[:max_candidates]
