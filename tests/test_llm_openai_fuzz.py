"""Fuzzing the response parsers: whatever a server answers, a score or a one-line LLMError.

Each example is served by the fake server (``tests/openai_fake.py``) and read by the real SDK, so
the parsers see exactly what the SDK makes of a body: JSON-like values built with
``hypothesis.strategies.recursive``, and valid responses of each mode with a few mutations
(missing keys, wrong types, None, NaN and infinite numbers, empty and huge lists). Parsing must
either give finite logits, one per candidate, or raise :class:`~jitrl.llm.base.LLMError` with a
one-line message; any other exception is a bug.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitrl.llm import Prompt
from jitrl.llm.base import LLMError
from jitrl.llm.openai import ApiClient, ExactScorer, LabelledScorer, OpenAIConfig, VerbalScorer
from jitrl.llm.openai.backend import OpenAIModel
from jitrl.llm.openai.exact import _in_prompt_order
from tests.openai_fake import FakeServer, Reply, chat_reply, echo_responder

PROMPT = Prompt(system="You play a game.", user="You see a mailbox.", answer_prefix="Command:")
CANDIDATES = ["open mailbox", "north", "xyzzy"]
HUGE = 5_000
SMALL_JSON_CHARS = 200
KEYS = [
    "choices", "index", "logprobs", "content", "top_logprobs", "token", "logprob", "bytes",
    "message", "role", "text", "tokens", "token_logprobs", "text_offset", "finish_reason",
    "usage", "prompt_tokens", "completion_tokens",
]  # fmt: skip
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["A", " B", "c.", "<|im_end|>", "", " north", "0.5", "70%"]),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=4),
    ),
    max_leaves=25,
)
ODD_VALUES = st.sampled_from(
    [None, math.nan, math.inf, -math.inf, [], {}, "", 0, -1, True, 1e308, -1e308, 2**64, "x"]
)


class Served:
    """What the fake server answers: ``body``, set by each example."""

    body: Any = None

    def respond(self, path: str, request: dict[str, Any]) -> Reply:
        return Reply(body=self.body)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Served, ApiClient, OpenAIConfig]]:
    state = Served()
    with FakeServer(state.respond) as fake:
        config = OpenAIConfig(
            model="fake", base_url=fake.url, mode="labelled", permutations=1, max_retries=0
        )
        client = ApiClient(config)
        yield state, client, config
        client.close()


# --------------------------------------------------------------------- mutations


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths (keys and indices) to every value inside ``value``."""
    if not isinstance(value, dict | list):
        return []
    children = value.items() if isinstance(value, dict) else enumerate(value)
    found = []
    for key, child in children:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` with 1 to 3 mutations at paths biased towards the top of the tree, the last of
    which may make a list huge."""
    value = copy.deepcopy(valid)
    count = draw(st.integers(1, 3))
    for step in range(count):
        paths = _paths(value)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        path = path[: draw(st.integers(1, len(path)))]
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key, target = path[-1], parent[path[-1]]
        kinds = ["delete", "odd", "json", "empty", *(["huge"] if step == count - 1 else [])]
        kind = draw(st.sampled_from(kinds))
        if kind == "delete":
            del parent[key]
        elif kind == "empty":
            parent[key] = type(target)() if isinstance(target, list | dict | str) else []
        elif kind == "huge":
            parent[key] = _huge(target)
        else:
            parent[key] = draw(ODD_VALUES if kind == "odd" else JSON)
    return value


def _huge(target: Any) -> list[Any]:
    """A list of ``HUGE`` items: the small items of ``target`` (or ``target``) repeated."""
    items = target if isinstance(target, list) and target else [target]
    small = [item for item in items if len(json.dumps(item)) <= SMALL_JSON_CHARS] or [None]
    return (small * (HUGE // len(small) + 1))[:HUGE]


def bodies(valid: Any) -> st.SearchStrategy[Any]:
    """Mutations of ``valid``, arbitrary JSON, and JSON under the keys the parsers read."""
    return st.one_of(
        mutated(valid),
        mutated(valid),
        JSON,
        st.fixed_dictionaries({"choices": JSON}),
        st.fixed_dictionaries({"choices": st.lists(JSON, min_size=1, max_size=3)}),
    )


def check(scores: Callable[[], Sequence[float]], n: int, outcomes: Counter[str]) -> None:
    """``scores()`` gives ``n`` finite logits, or raises a one-line LLMError (counted in
    ``outcomes``)."""
    try:
        logits = scores()
    except LLMError as exc:
        assert str(exc) and "\n" not in str(exc)
        outcomes["LLMError"] += 1
        return
    assert len(logits) == n and all(math.isfinite(v) for v in logits)
    outcomes["scored"] += 1


# --------------------------------------------------------------------- the parsers


def _echo_body(scorer: ExactScorer, candidates: list[str]) -> Any:
    texts = [scorer._text(PROMPT, c) for c in candidates]
    prompt = texts if len(texts) > 1 else texts[0]
    request = {"echo": True, "max_tokens": 1, "prompt": prompt}
    return echo_responder()("/v1/completions", request).body


@pytest.mark.parametrize("list_prompts", [False, True])
def test_exact_parser_scores_or_raises_llm_error(
    served: tuple[Served, ApiClient, OpenAIConfig], list_prompts: bool
) -> None:
    state, client, config = served
    scorer = ExactScorer(client, config)
    scorer.list_prompts = list_prompts
    candidates = CANDIDATES if list_prompts else CANDIDATES[1:2]
    valid = _echo_body(scorer, candidates)
    state.body = valid
    assert len(scorer.score(PROMPT, candidates).logprobs) == len(candidates)  # valid: scores

    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(bodies(valid))
    def fuzz(body: Any) -> None:
        state.body = body
        check(lambda: scorer.score(PROMPT, candidates).logprobs, len(candidates), outcomes)

    fuzz()
    assert outcomes["scored"] and outcomes["LLMError"]  # both ways out were taken


def test_labelled_parser_scores_or_raises_llm_error(
    served: tuple[Served, ApiClient, OpenAIConfig],
) -> None:
    state, client, config = served
    scorer = LabelledScorer(client, config)
    valid = chat_reply({"A": -0.4, " B": -1.2, "C.": -2.5, "The": -3.0})

    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(bodies(valid))
    def fuzz(body: Any) -> None:
        state.body = body
        check(lambda: scorer.score(PROMPT, CANDIDATES).logprobs, len(CANDIDATES), outcomes)
        check(lambda: scorer.request(PROMPT, CANDIDATES), len(CANDIDATES), outcomes)

    fuzz()
    assert outcomes["scored"] and outcomes["LLMError"]


def test_verbal_parser_scores_or_raises_llm_error(
    served: tuple[Served, ApiClient, OpenAIConfig],
) -> None:
    state, client, config = served
    scorer = VerbalScorer(client, config)
    valid = chat_reply(None, text='Sure: {"A": 0.6, "B": "30%", "C": 1e-3}')

    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(st.one_of(bodies(valid), JSON.map(lambda text: chat_reply(None, text=text))))
    def fuzz(body: Any) -> None:
        state.body = body
        check(lambda: scorer.score(PROMPT, CANDIDATES).logprobs, len(CANDIDATES), outcomes)

    fuzz()
    assert outcomes["scored"] and outcomes["LLMError"]


def test_generate_returns_text_or_raises_llm_error(
    served: tuple[Served, ApiClient, OpenAIConfig],
) -> None:
    state, _, config = served
    model = OpenAIModel(config)
    valid = chat_reply(None, text="Command: open mailbox")
    state.body = valid
    assert model.generate(PROMPT) == "open mailbox"

    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(bodies(valid))
    def fuzz(body: Any) -> None:
        state.body = body
        try:
            text = model.generate(PROMPT)
        except LLMError as exc:
            assert "\n" not in str(exc)
            outcomes["LLMError"] += 1
            return
        assert isinstance(text, str)
        outcomes["text"] += 1

    try:
        fuzz()
    finally:
        model.close()
    assert outcomes["text"] and outcomes["LLMError"]


def test_list_prompt_choices_are_put_in_prompt_order_or_refused() -> None:
    choices = [{"index": 2, "text": "c"}, {"index": 0, "text": "a"}, {"index": 1, "text": "b"}]
    assert [c["text"] for c in _in_prompt_order(choices)] == ["a", "b", "c"]
    for indices in ([0, 0, 1], [0, 1, None], [1, 2, 3], [0, True, 2], ["0", 1, 2]):
        with pytest.raises(LLMError, match="indices are not 0 to 2"):
            _in_prompt_order([{"index": i} for i in indices])
