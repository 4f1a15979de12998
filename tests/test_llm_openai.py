"""The OpenAI-compatible backend against a fake local server: retries, faults, modes, parsers.

The fake server (``tests/openai_fake.py``) runs in a thread on 127.0.0.1 with a random port.
Retries are the SDK's own; failures meant to be retried ask for a 1 ms ``retry-after-ms`` so that
the SDK's backoff does not slow the tests down.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.llm import Prompt
from jitrl.llm.base import LLMError, ScoreResult
from jitrl.llm.openai import (
    ExactModeRefused,
    OpenAIConfig,
    OpenAIModel,
    confidences_to_logprobs,
    detect_alignment,
    label_logprobs,
    parse_confidences,
)
from jitrl.llm.openai.client import import_openai
from jitrl.llm.openai.echo import locate_candidate, parse_echo
from jitrl.llm.openai.labelled import LABELS, chunked, normalise_label, option_orders
from jitrl.llm.openai.response import MIN_LOGPROB
from tests.openai_fake import (
    END_OF_TURN,
    FAST_RETRY,
    FakeServer,
    Reply,
    chat_reply,
    echo_responder,
    fake_logprob,
    iter_bodies,
    scripted,
    tokenize,
)

PROMPT = Prompt(system="You play a game.", user="You see a mailbox.", answer_prefix="Command:")
CANDIDATES = ["open mailbox", "north", "xyzzy"]
LABELLED_OK = Reply(body=chat_reply({"A": -0.4, "B": -1.2, "C": -2.5, "The": -3.0}))
RETRY_COUNT = "x-stainless-retry-count"


def make(url: str, **kwargs: object) -> OpenAIModel:
    config = OpenAIConfig(model="fake", base_url=url, **kwargs)  # type: ignore[arg-type]
    return OpenAIModel(config)


def check_distribution(result: ScoreResult, n: int) -> None:
    assert len(result.logprobs) == n and all(math.isfinite(v) for v in result.logprobs)
    assert math.isclose(sum(math.exp(v) for v in result.logprobs), 1.0, abs_tol=1e-9)


# --------------------------------------------------------------------- retries and faults


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_transient_status_is_retried_by_the_sdk_then_succeeds(status: int) -> None:
    busy = Reply(status, {"error": {"message": "busy"}}, headers=FAST_RETRY)
    with FakeServer(scripted(busy, LABELLED_OK)) as fake:
        model = make(fake.url, mode="labelled", permutations=1)
        result = model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 2
    assert [h[RETRY_COUNT] for h in fake.headers] == ["0", "1"]  # one request, retried once
    assert result.calls == 1  # the failed attempt returned nothing to count
    check_distribution(result, 3)


def test_the_sdk_retries_max_retries_times_then_a_clear_error_names_the_server() -> None:
    with FakeServer(scripted(Reply(500, {"error": {"message": "boom"}}, headers=FAST_RETRY))) as f:
        model = make(f.url, mode="labelled", max_retries=3)
        assert model.client._client.max_retries == 3  # the SDK's own retries, not a loop of ours
        with pytest.raises(LLMError) as info:
            model.score(PROMPT, CANDIDATES)
    assert len(f.requests) == 4 and [h[RETRY_COUNT] for h in f.headers] == ["0", "1", "2", "3"]
    message = str(info.value)
    where = re.escape(f"{f.url}/chat/completions")
    assert re.match(rf"{where} failed with HTTP 500 after 4 attempt\(s\): .*boom", message)
    assert "\n" not in message
    assert info.value.status == 500 and info.value.attempts == 4 and info.value.transient


def test_a_server_can_refuse_retries_as_the_sdk_allows() -> None:
    refusal = Reply(503, {"error": {"message": "down"}}, headers={"x-should-retry": "false"})
    with FakeServer(scripted(refusal)) as fake:
        model = make(fake.url, mode="labelled", max_retries=3)
        with pytest.raises(LLMError, match=r"HTTP 503 after 1 attempt\(s\).*down") as info:
            model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 1 and info.value.transient and info.value.status == 503


def test_client_error_is_not_retried() -> None:
    with FakeServer(scripted(Reply(401, {"error": {"message": "bad key"}}))) as fake:
        model = make(fake.url, mode="labelled")
        with pytest.raises(LLMError, match=r"HTTP 401 after 1 attempt.*bad key") as info:
            model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 1 and not info.value.transient


def test_a_hung_server_costs_at_most_timeout_times_attempts() -> None:
    hung = Reply(body=chat_reply({"A": -1.0}), delay=5.0)
    timeout, max_retries = 0.3, 1
    with FakeServer(scripted(hung)) as fake:
        model = make(fake.url, mode="labelled", timeout=timeout, max_retries=max_retries)
        assert model.client._client.timeout == timeout  # one setting, the SDK's own timeout
        start = time.perf_counter()
        with pytest.raises(LLMError, match=r"APITimeoutError after 2 attempt\(s\)") as info:
            model.score(PROMPT, CANDIDATES)
        elapsed = time.perf_counter() - start
    assert len(fake.requests) == 2 and info.value.unreachable
    bound = timeout * (1 + max_retries)
    assert bound <= elapsed < bound + 0.5 + 2.0  # + the SDK's pause (<= 0.5 s) + slack
    assert elapsed < hung.delay  # each attempt gave up at the client timeout


def test_connection_refused_raises_in_auto_mode_instead_of_falling_back() -> None:
    with FakeServer(scripted(Reply())) as fake:
        url = fake.url
    with pytest.raises(LLMError, match="APIConnectionError after 2 attempt") as info:
        make(url, max_retries=1, timeout=2.0)
    assert info.value.unreachable and info.value.attempts == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"null", "no choices"),
        (b'"text"', "not a JSON object"),
        ([1, 2], "no choices"),
        ({"choices": "nope"}, "no choices"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"logprobs": {"content": {"0": {"token": "A"}}}}]}, "no log-probs"),
        ({"choices": [{"logprobs": {"content": [{"top_logprobs": {"A": -1}}]}}]}, "no top_logp"),
        (chat_reply(None), "no log-probs"),
        (chat_reply({}), "no top_logprobs"),
        (chat_reply({"A": math.nan, "B": math.inf}), "no top_logprobs"),
    ],
)
def test_malformed_answers_give_one_line_errors_without_retries(body: object, message: str) -> None:
    with FakeServer(scripted(Reply(body=body))) as fake:
        model = make(fake.url, mode="labelled")
        with pytest.raises(LLMError, match=message) as info:
            model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 1 and "\n" not in str(info.value)


# --------------------------------------------------------------------- exact mode


@pytest.mark.parametrize("marker_text", ["", END_OF_TURN])
@pytest.mark.parametrize("lists", [True, False])
def test_exact_mode_sums_the_candidate_entries(lists: bool, marker_text: str) -> None:
    with FakeServer(echo_responder(lists=lists, marker_text=marker_text)) as fake:
        model = make(fake.url, mode="exact")
        fake.requests.clear()
        result = model.score(PROMPT, CANDIDATES)
    assert model.mode == "exact" and model.probe is not None
    assert model.probe.alignment.verdict == "aligned" and model.probe.list_prompts is lists
    scored = zip(CANDIDATES, result.logprobs, result.token_counts, strict=True)
    for candidate, logprob, count in scored:
        tokens = tokenize(" " + candidate)
        assert count == len(tokens) + 1
        assert logprob == pytest.approx(sum(map(fake_logprob, tokens)) + fake_logprob(marker_text))
    assert result.calls == len(fake.requests) == (1 if lists else 3)
    assert all(b["max_tokens"] == 1 and b["echo"] for b in iter_bodies(fake, "/completions"))
    assert result.billed_tokens == result.input_tokens == result.prefill_tokens


def test_exact_mode_refuses_a_shifted_server() -> None:
    with (
        FakeServer(echo_responder(shifted=True)) as fake,
        pytest.raises(ExactModeRefused, match="shifted by one position") as info,
    ):
        make(fake.url, mode="exact")
    assert "0 aligned vs" in str(info.value)
    assert len(fake.requests) == 1


def test_auto_mode_falls_back_to_labelled_and_says_why() -> None:
    with FakeServer(echo_responder(shifted=True)) as fake:
        model = make(fake.url, permutations=2)
        result = model.score(PROMPT, CANDIDATES)
    assert model.mode == "labelled" and model.name == "openai:fake:labelled"
    assert len(model.fallbacks) == 1 and "shifted by one position" in model.fallbacks[0]
    check_distribution(result, 3)


def test_auto_mode_ends_in_verbal_when_nothing_gives_logprobs() -> None:
    verbal = Reply(body=chat_reply(None, text='Sure: {"A": 0.6, "B": 0.3, "C": 0.1}'))
    no_logprobs = Reply(400, {"error": {"message": "logprobs not supported"}})
    responder = scripted(no_logprobs, no_logprobs, verbal)
    with FakeServer(responder) as fake:
        model = make(fake.url)
        result = model.score(PROMPT, CANDIDATES)
    assert model.mode == "verbal" and len(model.fallbacks) == 2
    probs = [math.exp(v) for v in result.logprobs]
    assert probs == pytest.approx([0.6, 0.3, 0.1])


def test_exact_mode_refuses_a_server_without_echo_logprobs() -> None:
    with (
        FakeServer(scripted(Reply(500, {"error": {"message": ""}}, headers=FAST_RETRY))) as fake,
        pytest.raises(ExactModeRefused, match=r"no prompt log-probs.*logits_all"),
    ):
        make(fake.url, mode="exact", max_retries=1)
    assert len(fake.requests) == 2


def test_locate_candidate_rejects_a_token_across_the_boundary() -> None:
    tokens = ["Command", ": open", " mailbox", "", " x"]
    with pytest.raises(LLMError, match="token boundary"):
        locate_candidate(tokens, 1, " open mailbox", END_OF_TURN)
    assert locate_candidate(["Command", ":", " open", " mailbox", ""], 0, " open mailbox", "") == (
        slice(2, 4)
    )
    with pytest.raises(LLMError, match="end-of-turn"):
        locate_candidate(["a", " b"], 0, " b", END_OF_TURN)


def test_echoed_logprobs_are_clamped_and_malformed_ones_refused() -> None:
    choice = {"logprobs": {"tokens": ["a", "b", "c", "d"], "token_logprobs": [None, -1e9, 0.5, -2]}}
    echo = parse_echo({**choice, "finish_reason": 7})
    assert echo.logprobs == [None, MIN_LOGPROB, 0.0, -2.0] and echo.finish_reason is None
    assert echo.top == [None] * 4
    choice["logprobs"]["top_logprobs"] = [None, {"b": "x", "c": math.nan}, {"c": -1}, ["d"]]
    assert parse_echo(choice).top == [None, None, {"c": -1.0}, None]
    for values in ([None, math.nan, 0, 0], [None, math.inf, 0, 0], [None, "-1", 0, 0], [0, 0]):
        with pytest.raises(LLMError, match="token_logprobs"):
            parse_echo({"logprobs": {**choice["logprobs"], "token_logprobs": values}})
    with pytest.raises(LLMError, match="generated tokens"):
        locate_candidate(["a", " b"], -1, " b", None)


def test_detect_alignment_votes() -> None:
    tokens = ["a", "b", "c", "d", "e", "f", "g", "h"]
    aligned = [None, *({t: -0.1} for t in tokens[1:])]
    shifted = [{n: -0.1, t: -5.0} for t, n in zip(tokens, [*tokens[1:], "z"], strict=True)]
    assert detect_alignment(tokens, aligned).verdict == "aligned"
    assert detect_alignment(tokens, shifted).verdict == "shifted"
    assert detect_alignment(tokens[:3], aligned[:3]).verdict == "unclear"


# --------------------------------------------------------------------- labelled and verbal


def test_labelled_orders_rotate_a_seeded_shuffle() -> None:
    candidates = [f"c{i}" for i in range(6)]
    orders = option_orders(candidates, 6, seed=3)
    assert orders == option_orders(candidates, 6, seed=3)
    for position in range(6):  # a Latin square: every option takes every label once
        assert sorted(order[position] for order in orders) == list(range(6))
    assert option_orders(candidates, 1, seed=None) == [list(range(6))]
    assert len(option_orders(candidates[:2], 4, seed=0)) == 2


def test_labelled_mode_splits_many_candidates_and_counts_cost() -> None:
    reply = Reply(body=chat_reply({label: -1.0 - i * 0.1 for i, label in enumerate(LABELS)}))
    with FakeServer(scripted(reply)) as fake:
        model = make(fake.url, mode="labelled", permutations=3, max_labels=20)
        result = model.score(PROMPT, [f"go {i}" for i in range(45)])
    assert result.calls == len(fake.requests) == 3 * 3  # 3 orders x 3 chunks of 15
    assert result.completion_tokens == 9 and result.billed_tokens == 9 * 50
    assert all(body["max_tokens"] == 1 and body["top_logprobs"] == 20 for _, body in fake.requests)
    check_distribution(result, 45)
    assert chunked(list(range(45)), 20) == [list(range(k, k + 15)) for k in (0, 15, 30)]


def test_labelled_request_counts_the_generated_token_once() -> None:
    reply = Reply(body=chat_reply({" A": -0.5, "B": -1.5, "A.": -3.0, "Z": -4.0}))
    with FakeServer(scripted(reply)) as fake:
        model = make(fake.url, mode="labelled", missing_label_margin=0.5)
        values = model._scorer.request(PROMPT, CANDIDATES)  # type: ignore[union-attr]
    assert values == pytest.approx([math.log(math.exp(-0.5) + math.exp(-3.0)), -1.5, -4.5])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"A": 0.6, "B": 0.3, "C": 0.1}', [0.6, 0.3, 0.1]),
        ("I cannot tell.", [1 / 3] * 3),  # the model's fault: uniform, with a warning
        (None, [1 / 3] * 3),  # no text at all (a refusal): the same
    ],
)
def test_verbal_mode_reads_confidences_or_falls_back_to_uniform(
    text: str | None, expected: list[float]
) -> None:
    with FakeServer(scripted(Reply(body=chat_reply(None, text=text)))) as fake:
        result = make(fake.url, mode="verbal").score(PROMPT, CANDIDATES)
    assert [math.exp(v) for v in result.logprobs] == pytest.approx(expected)


@pytest.mark.parametrize("content", [{"A": 0.5}, ["A"], 3])
def test_verbal_mode_refuses_content_that_is_not_text(content: object) -> None:
    with FakeServer(scripted(Reply(body=chat_reply(None, text=content)))) as fake:
        model = make(fake.url, mode="verbal")
        with pytest.raises(LLMError, match="content is not text"):
            model.score(PROMPT, CANDIDATES)
        with pytest.raises(LLMError, match="content is not text"):
            model.generate(PROMPT)


def test_import_hint_when_openai_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"pip install 'jitrl\[openai\]'"):
        import_openai()


_TOKENS = st.one_of(
    st.sampled_from(list(LABELS[:6])),
    st.sampled_from([" A", "B.", "(C", "a", "The", "\n", ""]),
    st.text(max_size=4),
)
_LOGPROB = st.floats(min_value=-40.0, max_value=0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TOKENS, _LOGPROB), min_size=1, max_size=25), st.integers(1, 6))
def test_label_parser_properties(alternatives: list[tuple[str, float]], n: int) -> None:
    labels = LABELS[:n]
    values = label_logprobs(alternatives, labels, margin=1.0)
    lowest = min(lp for _, lp in alternatives)
    assert len(values) == n and all(math.isfinite(v) for v in values)
    for label, value in zip(labels, values, strict=True):
        matches = [lp for t, lp in alternatives if normalise_label(t) == label]
        if matches:
            assert max(matches) - 1e-9 <= value <= max(matches) + math.log(len(matches)) + 1e-9
        else:
            assert value == pytest.approx(lowest - 1.0)


_CONFIDENCES = st.dictionaries(
    st.sampled_from(list(LABELS[:8])), st.floats(0.0, 1.0, allow_subnormal=False), min_size=1
)


@settings(max_examples=200, deadline=None)
@given(_CONFIDENCES, st.sampled_from(["{}", "Here: {}", "```json\n{}\n```", "{} Done."]))
def test_verbal_parser_reads_json_anywhere(confidences: dict[str, float], frame: str) -> None:
    text = frame.replace("{}", json.dumps(confidences))
    assert parse_confidences(text, LABELS[:8]) == pytest.approx(confidences)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.integers(1, 8))
def test_verbal_parser_never_fails_and_keeps_only_labels(text: str, n: int) -> None:
    found = parse_confidences(text, LABELS[:n])
    assert set(found) <= set(LABELS[:n])
    assert all(math.isfinite(v) and v >= 0 for v in found.values())


@settings(max_examples=200, deadline=None)
@given(_CONFIDENCES, st.integers(1, 8))
def test_confidences_normalise_to_a_distribution(confidences: dict[str, float], n: int) -> None:
    labels = LABELS[:n]
    result = confidences_to_logprobs(confidences, labels)
    positive = {k: v for k, v in confidences.items() if k in labels and v > 0}
    if not positive:
        assert result is None
        return
    assert result is not None and all(math.isfinite(v) for v in result)
    assert math.isclose(sum(math.exp(v) for v in result), 1.0, abs_tol=1e-9)
    ranked = sorted(positive, key=positive.__getitem__)
    for low, high in itertools.pairwise(ranked):
        assert result[labels.index(low)] <= result[labels.index(high)] + 1e-12


def test_verbal_parser_tolerates_loose_formats() -> None:
    labels = LABELS[:3]
    assert parse_confidences('{"a": "70%", "Option B": 0.2, "C. xyzzy": 1e-1}', labels) == {
        "A": pytest.approx(0.7),
        "B": 0.2,
        "C": 0.1,
    }
    assert parse_confidences("A: 0.5, B = 30%, D: 0.9", labels) == {"A": 0.5, "B": 0.3}
    assert parse_confidences("I pick A.", labels) == {}
    assert parse_confidences('{"A": -1, "B": NaN}', labels) == {}
    assert parse_confidences('{"A": 1e999, "B": ' + "9" * 400 + "}", labels) == {}


def test_tiny_confidences_stay_finite() -> None:
    result = confidences_to_logprobs({"A": 5e-324, "B": 0.0}, LABELS[:3])
    assert result is not None and all(math.isfinite(v) for v in result)
    assert result[0] == pytest.approx(result[1] + math.log(2)) and result[1] == result[2]
