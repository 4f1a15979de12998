"""Page parsing, candidate actions and goal values on hand-made accessibility trees (no browser)."""

from __future__ import annotations

import ast
import importlib.util
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitrl.envs.web_candidates import (
    bids_exist,
    describe_action,
    generate_candidates,
    global_actions,
    goal_values,
    parse_action,
    quote,
)
from jitrl.envs.web_page import (
    page_structure,
    parse_page,
    render_tree,
    state_key,
    state_text,
)

_ids = itertools.count(1000)


def node(
    role: str,
    name: str = "",
    *children: dict[str, Any],
    bid: str | None = None,
    value: str | None = None,
    props: dict[str, Any] | None = None,
    ignored: bool = False,
) -> dict[str, Any]:
    """One axtree node in Chrome's format; children are nested here and flattened by ``tree``."""
    out: dict[str, Any] = {
        "nodeId": str(next(_ids)),
        "ignored": ignored,
        "role": {"type": "role", "value": role},
        "name": {"type": "computedString", "value": name},
        "properties": [{"name": k, "value": {"value": v}} for k, v in (props or {}).items()],
        "_children": list(children),
    }
    if bid is not None:
        out["browsergym_id"] = bid
    if value is not None:
        out["value"] = {"type": "string", "value": value}
    return out


def tree(root: dict[str, Any]) -> dict[str, Any]:
    """Flatten nested nodes into ``{"nodes": [...]}`` with ``childIds`` (root first)."""
    nodes: list[dict[str, Any]] = []
    stack = [root]
    while stack:  # iterative: some trees are deeper than the recursion limit
        n = stack.pop()
        children = n.pop("_children")
        n["childIds"] = [c["nodeId"] for c in children]
        nodes.append(n)
        stack.extend(reversed(children))
    return {"nodes": nodes}


def shown(bid: str, clickable: bool = False, visible: float = 1.0) -> dict[str, Any]:
    return {"visibility": visible, "bbox": [0, 0, 10, 10], "clickable": clickable}


HIDDEN = {"visibility": 0.0, "bbox": None, "clickable": False}
GOAL = 'Enter the username "juan" and the password "Jc", select Norfolk Island and click Login.'


def login_page(offset: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """A login form with a select, a hidden section and a tab holding a link.

    ``offset`` shifts every bid, as a page re-rendered with other ids would.
    """
    b = [str(i + offset) for i in range(20)]
    root = node(
        "RootWebArea",
        "Login",
        node("generic", "", node("StaticText", "Username", node("InlineTextBox", "Username"))),
        node("textbox", "", bid=b[1]),
        node("StaticText", "Password"),
        node("textbox", "", bid=b[2], value="old"),
        node(
            "combobox",
            "",
            node(
                "MenuListPopup",
                "",
                node("option", "Cyprus", bid=b[4], props={"selected": True}),
                node("option", "Norfolk Island", bid=b[5], props={"selected": False}),
            ),
            bid=b[3],
            value="Cyprus",
        ),
        node("none", "", node("button", "Login", bid=b[6]), ignored=True),
        node("button", "Cancel", bid=b[7]),
        node("generic", "", node("button", "Secret", bid=b[9]), bid=b[8]),
        node("tab", "Help", node("link", "Help", bid=b[11]), bid=b[10]),
        node("checkbox", "Remember me", bid=b[12], props={"checked": "false"}),
        node("button", "Gone", bid=b[13], props={"disabled": True}),
        node("generic", "", bid=b[14]),
    )
    extra = {x: shown(x) for x in b}
    extra[b[8]] = HIDDEN  # the whole "Secret" section is not rendered
    extra[b[4]] = extra[b[5]] = HIDDEN  # options of a native select never are
    extra[b[14]] = shown(b[14], clickable=True)
    return tree(root), extra


def actions(goal: str = GOAL, offset: int = 0, **kw: Any) -> list[str]:
    axtree, extra = login_page(offset)
    cands = generate_candidates(
        parse_page(axtree, extra), goal, max_candidates=kw.pop("max_candidates", 30), **kw
    )
    return [c.action for c in cands]


def test_parse_page_keeps_rendered_nodes_and_collects_options_and_labels() -> None:
    axtree, extra = login_page()
    elements = parse_page(axtree, extra)
    roles = [e.role for e in elements]
    assert "InlineTextBox" not in roles and "none" not in roles  # skipped, children kept
    assert "Login" in [e.name for e in elements]  # child of an ignored node
    assert "Secret" not in [e.name for e in elements]  # inside a subtree without a bbox
    combo = next(e for e in elements if e.role == "combobox")
    assert combo.options == ("Cyprus", "Norfolk Island") and combo.value == "Cyprus"
    assert all(e.in_select for e in elements if e.role == "option")
    username, password = [e for e in elements if e.role == "textbox"]
    assert (username.label, password.label) == ("Username", "Password")  # preceding text
    tab = next(e for e in elements if e.role == "tab")
    assert tab.has_target_inside  # its link is the click target
    assert next(e for e in elements if e.role == "checkbox").states == ("checked=false",)


def test_candidates_cover_each_kind_of_element() -> None:
    got = actions()
    assert 'fill("1", "juan")' in got and 'fill("2", "Jc")' in got
    assert 'select_option("3", "Norfolk Island")' in got
    assert 'select_option("3", "Cyprus")' not in got  # already selected: a no-op
    assert 'click("6")' in got and 'click("7")' in got and 'click("12")' in got
    assert 'click("11")' in got and 'click("10")' not in got  # the link, not its tab
    assert 'click("14")' in got  # a clickable generic element
    assert 'press("2", "Enter")' in got and 'press("1", "Enter")' not in got  # only with text
    for absent in ('click("9")', 'click("13")', 'click("4")', 'click("5")'):
        assert absent not in got  # unrendered, disabled, options of a select
    assert got[-2:] == ["scroll(0, 300)", "scroll(0, -300)"] or "scroll" not in "".join(got)


def test_candidates_are_ranked_by_goal_overlap() -> None:
    got = actions(extras=global_actions(GOAL, scroll=True, back=False, chat=False))
    # The empty field with its value first, then the goal's option; values go to their fields.
    assert got[:2] == ['fill("1", "juan")', 'select_option("3", "Norfolk Island")']
    assert got.index('fill("2", "Jc")') < got.index('fill("2", "juan")')
    assert got.index('fill("1", "juan")') < got.index('fill("1", "Jc")')
    assert got.index('click("6")') < got.index('click("7")')  # "Login" is in the goal
    assert got[-2:] == ["scroll(0, 300)", "scroll(0, -300)"]


def test_candidates_are_capped_and_keep_room_for_extras() -> None:
    extras = global_actions(GOAL, scroll=True, back=True, chat=True)
    got = actions(max_candidates=8, extras=extras)
    assert len(got) == 8 and len(set(got)) == 8
    assert "scroll(0, 300)" in got and got[0] == 'fill("1", "juan")'
    assert actions(max_candidates=1) == ['fill("1", "juan")']


def test_candidates_are_wellformed_action_calls() -> None:
    axtree, extra = login_page()
    elements = parse_page(axtree, extra)
    extras = global_actions(GOAL, scroll=True, back=True, chat=True)
    for action in actions(extras=extras):
        parsed = parse_action(action)
        assert parsed is not None, action
        assert bids_exist(action, elements), action


def test_candidates_parse_with_browsergym_action_set() -> None:
    highlevel = pytest.importorskip("browsergym.core.action.highlevel")
    action_set = highlevel.HighLevelActionSet(
        subsets=["chat", "infeas", "bid", "nav"], multiaction=False, strict=True
    )
    extras = global_actions(GOAL, scroll=True, back=True, chat=True)
    for action in actions(extras=extras):
        assert "\n" + action.split("(")[0] + "(" in action_set.to_python_code(action)


def test_candidate_actions_depend_on_bids_but_states_do_not() -> None:
    pages = [login_page(offset) for offset in (0, 100)]
    elements = [parse_page(axtree, extra) for axtree, extra in pages]
    structures = [page_structure(els) for els in elements]
    assert structures[0] == structures[1] and "100" not in structures[1]
    assert state_key(GOAL, "Login", structures[0]) == state_key(GOAL, "Login", structures[1])
    assert actions(offset=0) != actions(offset=100)
    text = state_text(GOAL, "Login", structures[0], max_chars=80)
    assert len(text) <= 80 and text == text.lower() and text.startswith("goal: enter")


def test_state_changes_with_field_values_and_goal() -> None:
    axtree, extra = login_page()
    before = page_structure(parse_page(axtree, extra))
    textbox = next(n for n in axtree["nodes"] if n.get("browsergym_id") == "1")
    textbox["value"] = {"type": "string", "value": "juan"}
    after = page_structure(parse_page(axtree, extra))
    assert before != after and "textbox = juan" in after
    assert state_key("a", "t", before) != state_key("a", "t", after)
    assert state_key("a", "t", before) != state_key("b", "t", before)


def test_render_tree_shows_bids_and_is_capped() -> None:
    axtree, extra = login_page()
    elements = parse_page(axtree, extra)
    text = render_tree(elements, max_chars=10_000)
    assert "[6] button 'Login'" in text and "\t[1] textbox ''" in text
    assert "[4] option 'Cyprus', selected" in text
    assert "InlineTextBox" not in text and "Secret" not in text
    short = render_tree(elements, max_chars=60)
    assert len(short) <= 60 and short.endswith("[truncated]")


def test_parse_page_survives_odd_trees() -> None:
    assert parse_page({}) == [] and parse_page({"nodes": []}) == []
    a = node("button", "A", bid="1")
    looped = tree(node("RootWebArea", "", a))
    looped["nodes"][1]["childIds"] = [looped["nodes"][0]["nodeId"], "missing"]  # cycle + dangling
    assert [e.name for e in parse_page(looped)] == ["", "A"]
    deep = node("button", "deep", bid="d")
    for _ in range(3000):  # deeper than Python's recursion limit
        deep = node("generic", "x", deep)
    assert parse_page(tree(deep))[-1].name == "deep"


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        ('Enter "Kanesha" into the text field and press Submit.', ["Kanesha"]),
        ('Enter the username "juan" and the password "Jc" into the fields.', ["juan", "Jc"]),
        ("Type 'hello world' and Bob's name", ["hello world"]),
        ("Select 12/05/2016 as the date, then 3 items", ["12/05/2016", "3"]),
        ("Find “smart quotes” and ‘single’ ones", ["smart quotes", "single"]),
        ('Say "42" then 42 again', ["42"]),
        ("Click the button.", []),
    ],
)
def test_goal_values(goal: str, expected: list[str]) -> None:
    assert goal_values(goal) == expected


def test_goal_values_are_capped() -> None:
    goal = " ".join(f'"v{i}"' for i in range(20))
    assert goal_values(goal, max_values=3) == ["v0", "v1", "v2"]


QUOTABLE = st.text(
    alphabet=st.characters(blacklist_characters='"\n\r', blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s)


@given(before=st.text(alphabet="abc ,.", max_size=20), value=QUOTABLE)
def test_any_double_quoted_value_is_extracted(before: str, value: str) -> None:
    assert value in goal_values(f'{before} type "{value}" and submit')


@given(value=st.text(max_size=40))
def test_quote_round_trips_through_python_literals(value: str) -> None:
    assert ast.literal_eval(quote(value)) == value
    assert parse_action(f"fill({quote('7')}, {quote(value)})") == ("fill", ["7", value])


def test_parse_action_and_bids() -> None:
    axtree, extra = login_page()
    elements = parse_page(axtree, extra)
    assert parse_action('click("6")') == ("click", ["6"])
    assert parse_action("click(bid='6', button='left')") == ("click", ["6", "left"])
    for bad in ("", "click", "click(x)", 'click("6") click("7")', "os.system('x')", "1 +"):
        assert parse_action(bad) is None or not bids_exist(bad, elements), bad
    assert bids_exist('click("6")', elements) and not bids_exist('click("999")', elements)
    assert not bids_exist("click()", elements)  # the bid is missing
    assert bids_exist("scroll(0, 300)", elements) and bids_exist("go_back()", elements)
    assert bids_exist('drag_and_drop("6", "7")', elements)
    assert not bids_exist('drag_and_drop("6", "99")', elements)


def test_describe_action_names_the_element() -> None:
    axtree, extra = login_page()
    elements = parse_page(axtree, extra)
    assert describe_action('click("6")', elements) == "click button 'Login'"
    assert describe_action('fill("1", "juan")', elements) == "fill textbox 'Username' 'juan'"
    assert describe_action('click("99")', elements) == "click [99]"
    assert describe_action("not an action", elements) == "not an action"


@pytest.mark.skipif(
    importlib.util.find_spec("browsergym") is None, reason="needs browsergym (jitrl[web])"
)
@given(value=st.text(max_size=30))
def test_quoted_values_round_trip_through_browsergym_parser(value: str) -> None:
    from browsergym.core.action import parsers

    parsed = parsers.highlevel_action_parser.parse_string(
        f'fill("3", {quote(value)})', parse_all=True
    )
    assert parsed.as_list() == [["fill", ["3", value]]]
