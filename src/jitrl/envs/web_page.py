"""The page as jitrl sees it: shown elements of BrowserGym's accessibility tree, its text and
its abstracted state.

Nothing here imports a browser or BrowserGym, so it is tested on hand-made trees. The tree is the
dictionary BrowserGym puts in ``obs["axtree_object"]`` (Chrome's ``Accessibility.getFullAXTree``
with a ``browsergym_id``, the *bid*, on marked nodes); the extra properties are
``obs["extra_element_properties"]`` (``bid -> {"visibility", "bbox", "clickable", ...}``).

The abstracted state leaves out bids (they change when the page changes) and volatile states
(focus): it is the goal, the title and ``role name = value [states]`` of each shown element.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SKIPPED_ROLES = frozenset({"InlineTextBox", "LineBreak", "none", "presentation"})
"""Roles never shown (their children still are)."""
TEXT_ROLES = frozenset({"StaticText", "text"})
CLICK_ROLES = frozenset(
    {
        "button",
        "link",
        "checkbox",
        "radio",
        "switch",
        "tab",
        "menuitem",
        "menuitemcheckbox",
        "menuitemradio",
        "option",
        "treeitem",
    }
)
"""Roles that are click targets whether or not the page marked them clickable."""
FILL_ROLES = frozenset({"textbox", "searchbox", "spinbutton", "combobox"})
SELECT_ROLES = frozenset({"combobox", "listbox"})
"""Roles that become ``select_option`` targets when they hold options."""
CONTAINER_ROLES = frozenset({"RootWebArea", "WebArea", "tablist", "tabpanel", "LabelText"})
"""Roles never clicked as a whole, even when the page marked them clickable."""
SHOWN_STATES = ("checked", "selected", "expanded", "pressed", "disabled", "required", "focused")
VOLATILE_STATES = frozenset({"focused"})
"""States left out of the abstracted page structure."""


@dataclass(frozen=True)
class Element:
    """One shown node of the accessibility tree.

    Attributes:
        bid: BrowserGym's element id (``None`` for text nodes without one).
        role: accessibility role (``button``, ``textbox``, ``StaticText``, ...).
        name: accessible name, stripped.
        value: current value (text fields, selects), if any.
        depth: nesting depth among shown nodes.
        states: shown states such as ``checked=true`` or ``disabled``.
        in_view: inside the viewport (BrowserGym's visibility ratio >= 0.5).
        clickable: BrowserGym saw a click handler or pointer cursor.
        label: the name, else the nearest text before the element (a field's label).
        options: names of the options of a select-like element.
        has_target_inside: a descendant is itself a click target (so this one is not).
        in_select: an option (or other node) inside a select-like element.
    """

    bid: str | None
    role: str
    name: str
    value: str | None = None
    depth: int = 0
    states: tuple[str, ...] = ()
    in_view: bool = True
    clickable: bool = False
    label: str = ""
    options: tuple[str, ...] = ()
    has_target_inside: bool = False
    in_select: bool = False

    def describe(self) -> str:
        """``role 'label'`` as shown to people and stored with the trace."""
        return f"{self.role} {self.label!r}" if self.label else self.role


Row = dict[str, Any]
_ELEMENT_INIT = ("bid", "role", "name", "value", "depth", "states", "in_view", "clickable")


def _value(entry: Any) -> Any:
    return entry.get("value") if isinstance(entry, dict) else None


def _states(node: Mapping[str, Any]) -> tuple[str, ...]:
    """Shown states in a fixed order; ``checked`` is kept when false, the others only when set."""
    found: dict[str, Any] = {}
    for prop in node.get("properties") or []:
        if prop.get("name") in SHOWN_STATES:
            found[prop["name"]] = _value(prop.get("value"))
    states = []
    for name in SHOWN_STATES:
        value = found.get(name)
        if value is True:
            states.append(name)
        elif value not in (None, False, "false", "") or (name == "checked" and value is not None):
            states.append(f"{name}={str(value).lower()}")
    return tuple(states)


def _rendered(bid: str | None, extra: Mapping[str, Mapping[str, Any]]) -> bool:
    props = extra.get(bid) if bid is not None else None
    if props is None:
        return True
    return props.get("bbox") is not None or float(props.get("visibility") or 0.0) > 0.0


def _row(node: Mapping[str, Any], role: str, depth: int, extra: Any) -> Row:
    bid = node.get("browsergym_id")
    props = extra.get(bid, {}) if bid is not None else {}
    raw_value = _value(node.get("value"))
    return {
        "bid": None if bid is None else str(bid),
        "role": role,
        "name": " ".join(str(_value(node.get("name")) or "").split()),
        "value": None if raw_value is None else str(raw_value),
        "depth": depth,
        "states": _states(node),
        "in_view": float(props.get("visibility", 1.0) or 0.0) >= 0.5,
        "clickable": bool(props.get("clickable", False)),
        "rendered": _rendered(None if bid is None else str(bid), extra),
    }


def _shown(node: Mapping[str, Any], row: Row, parent_name: str) -> bool:
    """Whether a node gets a line: not ignored, not layout-only, not a repeat of its parent."""
    role = row["role"]
    if node.get("ignored") or role in SKIPPED_ROLES:
        return False
    if role == "generic" and not (row["name"] or row["clickable"] or row["states"]):
        return False
    return not (role in TEXT_ROLES and row["name"] in parent_name)


def _walk(axtree: Mapping[str, Any], extra: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """Depth-first walk (iterative: pages can be deep) collecting the shown nodes."""
    nodes = {str(n["nodeId"]): n for n in axtree.get("nodes") or [] if "nodeId" in n}
    if not nodes:
        return []
    rows: list[Row] = []
    seen: set[str] = set()
    stack: list[tuple[str, int, bool, str]] = [(str(axtree["nodes"][0]["nodeId"]), 0, False, "")]
    while stack:
        node_id, depth, in_select, parent_name = stack.pop()
        node = nodes.get(node_id)
        if node is None or node_id in seen:
            continue
        seen.add(node_id)
        role = str(_value(node.get("role")) or "")
        if not in_select and not _rendered(node.get("browsergym_id"), extra):
            continue  # not rendered: skip the subtree (select options are never rendered)
        row = _row(node, role, depth, extra)
        shown = _shown(node, row, parent_name)
        if shown:
            rows.append(row)
        child_depth = depth + 1 if shown else depth
        child_select = in_select or (shown and role in SELECT_ROLES)
        name = row["name"] if shown else parent_name
        children = [str(c) for c in node.get("childIds") or []]
        stack.extend((c, child_depth, child_select, name) for c in reversed(children))
    return rows


def parse_page(
    axtree: Mapping[str, Any], extra: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Element]:
    """The shown nodes of ``axtree`` in document order.

    Ignored nodes, ``InlineTextBox``/``LineBreak`` and subtrees that are not rendered (no bounding
    box) are left out; the options of a ``<select>`` are kept under it although never rendered.
    """
    return _finish(_walk(axtree, extra or {}))


def _finish(rows: list[Row]) -> list[Element]:
    """Add labels, select options and the 'has a target inside' flag."""
    last_text = ""
    ancestors: list[int] = []
    for i, row in enumerate(rows):
        while ancestors and rows[ancestors[-1]]["depth"] >= row["depth"]:
            ancestors.pop()
        row["label"] = row["name"] or (last_text if row["role"] in FILL_ROLES else "")
        row["options"] = []
        row["inside"] = False
        if row["role"] in TEXT_ROLES and row["name"]:
            last_text = row["name"]
        owner = next((a for a in reversed(ancestors) if rows[a]["role"] in SELECT_ROLES), None)
        # Options of a native <select> are not rendered: they become select_option values.
        row["in_select"] = row["role"] == "option" and owner is not None and not row["rendered"]
        if row["in_select"] and owner is not None:
            rows[owner]["options"].append(row["name"])
        if is_click_target(Element(**{k: row[k] for k in (*_ELEMENT_INIT, "in_select")})):
            for a in ancestors:
                rows[a]["inside"] = True
        ancestors.append(i)
    return [
        Element(
            **{k: row[k] for k in _ELEMENT_INIT},
            label=row["label"],
            options=tuple(o for o in row["options"] if o),
            has_target_inside=row["inside"],
            in_select=row["in_select"],
        )
        for row in rows
    ]


def is_click_target(el: Element) -> bool:
    """Whether clicking ``el`` is a sensible action (before looking at its descendants)."""
    if el.bid is None or el.in_select or "disabled" in el.states:
        return False
    if el.role in CLICK_ROLES:
        return True
    excluded = CONTAINER_ROLES | FILL_ROLES | TEXT_ROLES
    return el.clickable and el.role not in excluded


def render_tree(elements: Sequence[Element], max_chars: int) -> str:
    """BrowserGym-style text of the page (``[bid] role 'name'``), cut to ``max_chars``."""
    lines = []
    for el in elements:
        if el.role == "generic" and not el.name and not el.states and not el.clickable:
            continue
        head = f"[{el.bid}] " if el.bid is not None else ""
        text = f"{head}{el.role} {el.name!r}"
        if el.value is not None:
            text += f" value={el.value!r}"
        marks = ["clickable"] if el.clickable and el.role not in CLICK_ROLES else []
        lines.append("\t" * el.depth + ", ".join([text, *el.states, *marks]))
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max(0, max_chars - 15)] + "\n[truncated]"


def page_structure(elements: Sequence[Element]) -> str:
    """The page without bids or volatile states: ``role 'name' = value [states]`` per element."""
    parts = []
    for el in elements:
        if el.role == "generic" and not el.name:
            continue
        part = f"{el.role} {el.name}".strip()
        if el.value:
            part += f" = {el.value}"
        states = [s for s in el.states if s.split("=")[0] not in VOLATILE_STATES]
        if states:
            part += f" [{', '.join(states)}]"
        parts.append(part)
    return "; ".join(parts)


def state_text(goal: str, title: str, structure: str, max_chars: int) -> str:
    """The compact, lowercased ``goal: ... | page: ... | elements: ...`` string of a state."""
    text = f"goal: {' '.join(goal.split())} | page: {title.strip()} | elements: {structure}"
    return text.lower()[:max_chars].rstrip()


def state_key(goal: str, title: str, structure: str) -> str:
    """A stable hash of the goal, the title and the page structure (no bids)."""
    text = "\n".join([goal.strip(), title.strip(), structure])
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
