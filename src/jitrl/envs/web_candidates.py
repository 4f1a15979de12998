"""Candidate actions for a web page, the values an agent may type, and checks of proposed actions.

Candidates are BrowserGym action strings (``click("13")``, ``fill("14", "Kanesha")``,
``select_option("13", "Norfolk Island")``, ``press("14", "Enter")``, ``scroll(0, 300)``,
``go_back()``, ``send_msg_to_user("...")``) built from the elements of
:func:`jitrl.envs.web_page.parse_page` and ranked so that elements whose text overlaps the goal
come first. Pure functions: no browser needed.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jitrl.envs.web_page import FILL_ROLES, SELECT_ROLES, Element, is_click_target

BID_ARGUMENTS: Mapping[str, tuple[int, ...]] = {
    "click": (0,),
    "dblclick": (0,),
    "hover": (0,),
    "fill": (0,),
    "clear": (0,),
    "focus": (0,),
    "press": (0,),
    "select_option": (0,),
    "check": (0,),
    "uncheck": (0,),
    "upload_file": (0,),
    "drag_and_drop": (0, 1),
}
"""Positions of the element ids (bids) in BrowserGym's bid-based actions."""
SCROLL_STEP = 300
STOPWORDS = frozenset(
    {"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "is", "it", "of", "on"}
    | {"or", "the", "then", "this", "to", "with"}
)
_TOKEN = re.compile(r"[a-z0-9]+")
_QUOTED = (
    re.compile(r'"([^"\n]+)"'),
    re.compile(r"(?<![\w'])'([^'\n]+)'(?![\w'])"),
    re.compile(r"“([^”\n]+)”"),
    re.compile(r"‘([^’\n]+)’"),
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[./:-]\d+)*(?![\w])")
IN_VIEW_BONUS = 0.1
"""Score added to elements inside the viewport."""
EXACT_TEXT_BONUS = 2.0
"""Score added when an element's whole text appears in the goal."""
EMPTY_FIELD_BONUS = 3.5
"""Score added to filling an empty field, so that forms are filled before they are submitted."""
CONTEXT_WORDS = 1
"""Goal words before a value (values themselves skipped) compared with a field's label, to pair
values and fields: ``username`` in ``the username "juan" and the password "Jc"``."""


@dataclass(frozen=True)
class Candidate:
    """A candidate action, its readable meaning and its ranking score."""

    action: str
    label: str
    score: float = 0.0
    kind: int = 0
    order: int = 0


def tokens(text: str) -> set[str]:
    """Lowercase alphanumeric words of ``text`` without stop words."""
    return {t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS}


def goal_values(goal: str, max_values: int = 8) -> list[str]:
    """Values an agent may type, taken from the goal: quoted strings first, then numbers/dates.

    ``Enter "Kanesha" into the text field`` gives ``["Kanesha"]``; ``Select 12/05/2016`` gives
    ``["12/05/2016"]``. Duplicates are dropped, order of appearance kept, at most ``max_values``.
    """
    found: list[tuple[int, str]] = []
    spans: list[tuple[int, int]] = []
    for pattern in _QUOTED:
        for match in pattern.finditer(goal):
            if any(s <= match.start() < e for s, e in spans):
                continue
            spans.append(match.span())
            found.append((match.start(), match.group(1).strip()))
    numbers = [
        (m.start(), m.group(0))
        for m in _NUMBER.finditer(goal)
        if not any(s <= m.start() < e for s, e in spans)
    ]
    ordered = [v for _, v in sorted(found)] + [v for _, v in numbers]
    return list(dict.fromkeys(v for v in ordered if v))[:max_values]


def _context(goal: str, value: str, values: Sequence[str]) -> set[str]:
    """Words just before ``value`` in the goal, other values left out."""
    at = goal.find(value)
    if at < 0:
        return set()
    skip = set().union(*(tokens(v) for v in values)) if values else set()
    words = [t for t in _TOKEN.findall(goal[:at].lower()) if t not in STOPWORDS | skip]
    return set(words[-CONTEXT_WORDS:])


def quote(text: str) -> str:
    """A double-quoted Python string literal that BrowserGym's action parser reads back."""
    return json.dumps(text, ensure_ascii=False)


def _overlap(text: str, goal_tokens: set[str]) -> float:
    words = tokens(text)
    return float(len(words & goal_tokens)) if words else 0.0


def _element_actions(el: Element, goal: str, values: Sequence[str], order: int) -> list[Candidate]:
    """The actions on one element with their scores (higher is better); no-ops are left out."""
    if el.bid is None or "disabled" in el.states:
        return []
    goal_tokens = tokens(goal)
    base = _overlap(el.label, goal_tokens) + IN_VIEW_BONUS * el.in_view
    bid = quote(el.bid)
    out: list[Candidate] = []
    if el.role in SELECT_ROLES and el.options:
        for option in el.options:
            if option == el.value:
                continue  # already selected
            score = base + _overlap(option, goal_tokens)
            score += EXACT_TEXT_BONUS * (option.lower() in goal.lower())
            label = f"select {option!r} in {el.describe()}"
            out.append(Candidate(f"select_option({bid}, {quote(option)})", label, score, 0, order))
    elif el.role in FILL_ROLES:
        for value in values:
            if value == el.value:
                continue  # already typed
            score = base + len(tokens(el.label) & _context(goal, value, values))
            score += EMPTY_FIELD_BONUS * (not el.value)
            label = f"fill {el.describe()} with {value!r}"
            out.append(Candidate(f"fill({bid}, {quote(value)})", label, score, 0, order))
        if el.value:
            out.append(Candidate(f'press({bid}, "Enter")', f"press Enter in {el.describe()}", 0, 1))
    elif is_click_target(el) and not el.has_target_inside:
        label = el.label or el.name
        score = base + EXACT_TEXT_BONUS * bool(label and label.lower() in goal.lower())
        out.append(Candidate(f"click({bid})", f"click {el.describe()}", score, 0, order))
    return out


def global_actions(
    goal: str, *, scroll: bool, back: bool, chat: bool, max_values: int = 8
) -> list[Candidate]:
    """Actions that need no element: scrolling, going back, answering in the chat."""
    out: list[Candidate] = []
    if scroll:
        out.append(Candidate(f"scroll(0, {SCROLL_STEP})", "scroll down", -1.0, 2))
        out.append(Candidate(f"scroll(0, -{SCROLL_STEP})", "scroll up", -1.0, 2))
    if back:
        out.append(Candidate("go_back()", "go back to the previous page", -1.0, 2))
    if chat:
        for value in goal_values(goal, max_values):
            label = f"answer {value!r}"
            out.append(Candidate(f"send_msg_to_user({quote(value)})", label, -1.5, 3))
    return out


def generate_candidates(
    elements: Sequence[Element],
    goal: str,
    *,
    max_candidates: int,
    extras: Sequence[Candidate] = (),
    max_values: int = 8,
) -> list[Candidate]:
    """Actions on the page's elements, best first, then ``extras``; at most ``max_candidates``.

    Element actions are sorted by score (goal overlap), then kind (click/fill/select before press),
    then document order. Up to a quarter of the slots are kept for ``extras`` (scroll, back, chat).
    """
    values = goal_values(goal, max_values)
    actions = [c for i, el in enumerate(elements) for c in _element_actions(el, goal, values, i)]
    actions = _dedupe(sorted(actions, key=lambda c: (-c.score, c.kind, c.order)))
    extra = [c for c in _dedupe(extras) if c.action not in {a.action for a in actions}]
    reserved = min(len(extra), max_candidates // 4)
    return (actions[: max_candidates - reserved] + extra)[:max_candidates]


def _dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in candidates:
        if c.action not in seen:
            seen.add(c.action)
            out.append(c)
    return out


def parse_action(action: str) -> tuple[str, list[Any]] | None:
    """``("click", ["13"])`` for ``click("13")``; ``None`` unless one call with literal args."""
    try:
        tree = ast.parse(action.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        return None
    try:
        args = [ast.literal_eval(a) for a in call.args]
        args += [ast.literal_eval(k.value) for k in call.keywords]
    except (ValueError, TypeError, SyntaxError):
        return None
    return call.func.id, args


def action_bids(name: str, args: Sequence[Any]) -> list[str] | None:
    """The element ids an action refers to (``[]`` for none); ``None`` if they are malformed."""
    positions = BID_ARGUMENTS.get(name, ())
    if any(p >= len(args) for p in positions):
        return None
    bids = [args[p] for p in positions]
    return [str(b) for b in bids] if all(isinstance(b, str | int) for b in bids) else None


def bids_exist(action: str, elements: Sequence[Element]) -> bool:
    """Whether ``action`` is one call whose element ids are all on the page now."""
    parsed = parse_action(action)
    if parsed is None:
        return False
    bids = action_bids(*parsed)
    present = {el.bid for el in elements if el.bid is not None}
    return bids is not None and all(b in present for b in bids)


def describe_action(action: str, elements: Sequence[Element]) -> str:
    """A readable form of ``action`` with bids replaced by their elements (for traces)."""
    parsed = parse_action(action)
    if parsed is None:
        return action
    name, args = parsed
    by_bid = {el.bid: el for el in elements if el.bid is not None}
    bids = action_bids(name, args) or []
    targets = [by_bid[b].describe() if b in by_bid else f"[{b}]" for b in bids]
    rest = [repr(a) for i, a in enumerate(args) if i not in BID_ARGUMENTS.get(name, ())]
    return " ".join([name, *targets, *rest])
