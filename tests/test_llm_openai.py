"""The OpenAI-compatible backend against a fake local server: retries, faults, modes, parsers.

The fake server (``tests/openai_fake.py``) runs in a thread on 127.0.0.1 with a random port.
Backoff waits go to a recording ``sleep`` instead of the clock, except in the timeout test.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitrl.llm import Prompt, load_model
from jitrl.llm.base import LLMError, ScoreResult
from jitrl.llm.openai import (
    ApiClient,
    ExactModeRefused,
    OpenAIConfig,
    OpenAIModel,
    confidences_to_logprobs,
    detect_alignment,
    label_logprobs,
    parse_confidences,
)
from jitrl.llm.openai.client import import_openai
from jitrl.llm.openai.echo import locate_candidate
from jitrl.llm.openai.labelled import LABELS, chunked, normalise_label, option_orders
from tests.openai_fake import (
    END_OF_TURN,
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


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(url: str, sleeps: list[float], **kwargs: object) -> OpenAIModel:
    config = OpenAIConfig(model="fake", base_url=url, **kwargs)  # type: ignore[arg-type]
    return OpenAIModel(config, sleep=sleeps.append)


def check_distribution(result: ScoreResult, n: int) -> None:
    assert len(result.logprobs) == n and all(math.isfinite(v) for v in result.logprobs)
    assert math.isclose(sum(math.exp(v) for v in result.logprobs), 1.0, abs_tol=1e-9)


# --------------------------------------------------------------------- retries and faults


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_status_is_retried_then_succeeds(status: int, sleeps: list[float]) -> None:
    with FakeServer(scripted(Reply(status, {"error": {"message": "busy"}}), LABELLED_OK)) as fake:
        model = make(fake.url, sleeps, mode="labelled", permutations=1, backoff_base=0.25)
        result = model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 2 and sleeps == [0.25]
    assert result.calls == 1  # the failed attempt returned nothing to count
    check_distribution(result, 3)


def test_backoff_doubles_is_capped_and_gives_up_with_clear_error(sleeps: list[float]) -> None:
    with FakeServer(scripted(Reply(500, {"error": {"message": "boom"}}))) as fake:
        model = make(
            fake.url, sleeps, mode="labelled", max_retries=5, backoff_base=1.0, backoff_cap=3.0
        )
        with pytest.raises(LLMError, match=r"HTTP 500 after 6 attempt\(s\).*boom") as info:
            model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 6
    assert sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]
    assert info.value.status == 500 and info.value.attempts == 6 and info.value.transient


def test_retry_after_header_is_honoured_within_the_cap(sleeps: list[float]) -> None:
    busy = [Reply(429, {"error": {}}, headers={"retry-after": s}) for s in ("0.05", "600")]
    with FakeServer(scripted(*busy, LABELLED_OK)) as fake:
        make(fake.url, sleeps, mode="labelled", permutations=1, backoff_cap=2.0).score(
            PROMPT, CANDIDATES
        )
    assert sleeps == [0.05, 2.0] and len(fake.requests) == 3


def test_client_error_is_not_retried(sleeps: list[float]) -> None:
    with FakeServer(scripted(Reply(401, {"error": {"message": "bad key"}}))) as fake:
        model = make(fake.url, sleeps, mode="labelled")
        with pytest.raises(LLMError, match=r"HTTP 401 after 1 attempt.*bad key") as info:
            model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 1 and sleeps == [] and not info.value.transient


def test_timeout_is_retried_then_reported(sleeps: list[float]) -> None:
    with FakeServer(scripted(Reply(body=chat_reply({"A": -1.0}), delay=1.0))) as fake:
        model = make(fake.url, sleeps, mode="labelled", timeout=0.2, max_retries=2)
        start = time.perf_counter()
        with pytest.raises(LLMError, match="APITimeoutError after 3 attempt") as info:
            model.score(PROMPT, CANDIDATES)
        elapsed = time.perf_counter() - start
    assert len(fake.requests) == 3 and len(sleeps) == 2
    assert info.value.unreachable
    assert elapsed < 3 * 1.0  # each attempt gave up at the client timeout, not the server's delay


def test_connection_refused_raises_in_auto_mode_instead_of_falling_back(
    sleeps: list[float],
) -> None:
    with FakeServer(scripted(Reply())) as fake:
        url = fake.url
    with pytest.raises(LLMError, match="APIConnectionError after 2 attempt") as info:
        make(url, sleeps, max_retries=1, timeout=2.0)
    assert info.value.unreachable and len(sleeps) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        ({"choices": "nope"}, "no log-probs"),
        (chat_reply(None), "no log-probs"),
        (chat_reply({}), "no top_logprobs"),
    ],
)
def test_malformed_answers_give_clear_errors_without_retries(
    body: object, message: str, sleeps: list[float]
) -> None:
    with FakeServer(scripted(Reply(body=body))) as fake:
        model = make(fake.url, sleeps, mode="labelled")
        with pytest.raises(LLMError, match=message):
            model.score(PROMPT, CANDIDATES)
    assert len(fake.requests) == 1 and sleeps == []


# --------------------------------------------------------------------- exact mode


@pytest.mark.parametrize("marker_text", ["", END_OF_TURN])
@pytest.mark.parametrize("lists", [True, False])
def test_exact_mode_sums_the_candidate_entries(
    lists: bool, marker_text: str, sleeps: list[float]
) -> None:
    with FakeServer(echo_responder(lists=lists, marker_text=marker_text)) as fake:
        model = make(fake.url, sleeps, mode="exact")
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


def test_exact_mode_refuses_a_shifted_server(sleeps: list[float]) -> None:
    with (
        FakeServer(echo_responder(shifted=True)) as fake,
        pytest.raises(ExactModeRefused, match="shifted by one position") as info,
    ):
        make(fake.url, sleeps, mode="exact")
    assert "0 aligned vs" in str(info.value)
    assert len(fake.requests) == 1


def test_auto_mode_falls_back_to_labelled_and_says_why(sleeps: list[float]) -> None:
    with FakeServer(echo_responder(shifted=True)) as fake:
        model = make(fake.url, sleeps, permutations=2)
        result = model.score(PROMPT, CANDIDATES)
    assert model.mode == "labelled" and model.name == "openai:fake:labelled"
    assert len(model.fallbacks) == 1 and "shifted by one position" in model.fallbacks[0]
    check_distribution(result, 3)


def test_auto_mode_ends_in_verbal_when_nothing_gives_logprobs(sleeps: list[float]) -> None:
    verbal = Reply(body=chat_reply(None, text='Sure: {"A": 0.6, "B": 0.3, "C": 0.1}'))
    no_logprobs = Reply(400, {"error": {"message": "logprobs not supported"}})
    responder = scripted(no_logprobs, no_logprobs, verbal)
    with FakeServer(responder) as fake:
        model = make(fake.url, sleeps)
        result = model.score(PROMPT, CANDIDATES)
    assert model.mode == "verbal" and len(model.fallbacks) == 2
    probs = [math.exp(v) for v in result.logprobs]
    assert probs == pytest.approx([0.6, 0.3, 0.1])


def test_exact_mode_refuses_a_server_without_echo_logprobs(sleeps: list[float]) -> None:
    with (
        FakeServer(scripted(Reply(500, {"error": {"message": ""}}))) as fake,
        pytest.raises(ExactModeRefused, match=r"no prompt log-probs.*logits_all"),
    ):
        make(fake.url, sleeps, mode="exact", max_retries=1)
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


def test_labelled_mode_splits_many_candidates_and_counts_cost(sleeps: list[float]) -> None:
    reply = Reply(body=chat_reply({label: -1.0 - i * 0.1 for i, label in enumerate(LABELS)}))
    with FakeServer(scripted(reply)) as fake:
        model = make(fake.url, sleeps, mode="labelled", permutations=3, max_labels=20)
        result = model.score(PROMPT, [f"go {i}" for i in range(45)])
    assert result.calls == len(fake.requests) == 3 * 3  # 3 orders x 3 chunks of 15
    assert result.completion_tokens == 9 and result.billed_tokens == 9 * 50
    assert all(body["max_tokens"] == 1 and body["top_logprobs"] == 20 for _, body in fake.requests)
    check_distribution(result, 45)
    assert chunked(list(range(45)), 20) == [list(range(k, k + 15)) for k in (0, 15, 30)]


def test_labelled_request_counts_the_generated_token_once(sleeps: list[float]) -> None:
    reply = Reply(body=chat_reply({" A": -0.5, "B": -1.5, "A.": -3.0, "Z": -4.0}))
    with FakeServer(scripted(reply)) as fake:
        model = make(fake.url, sleeps, mode="labelled", missing_label_margin=0.5)
        values = model._scorer.request(PROMPT, CANDIDATES)  # type: ignore[union-attr]
    assert values == pytest.approx([math.log(math.exp(-0.5) + math.exp(-3.0)), -1.5, -4.5])


def test_import_hint_when_openai_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"pip install 'jitrl\[openai\]'"):
        import_openai()


def test_load_model_spec_and_config(sleeps: list[float]) -> None:
    with FakeServer(scripted(LABELLED_OK)) as fake:
        model = load_model(f"openai:fake@{fake.url}?mode=labelled&permutations=2")
        assert isinstance(model, OpenAIModel) and model.config.permutations == 2
        check_distribution(model.score(PROMPT, CANDIDATES), 3)
        model.close()
    config = OpenAIConfig.from_spec("m@http://h:1/v1/?timeout=2.5&max_retries=0")
    assert (config.base_url, config.timeout, config.max_retries) == ("http://h:1/v1", 2.5, 0)
    for bad in ["m", "@http://h/v1", "m@http://h/v1?colour=red", "m@http://h/v1?timeout=x"]:
        with pytest.raises(ValueError):
            OpenAIConfig.from_spec(bad)
    with pytest.raises(ValueError, match="invalid OpenAIConfig: mode"):
        OpenAIConfig(model="m", mode="guess")  # type: ignore[arg-type]


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test")
    assert OpenAIConfig(model="m", api_key_env="MY_KEY").api_key == "sk-test"
    monkeypatch.delenv("MY_KEY")
    assert OpenAIConfig(model="m", api_key_env="MY_KEY").api_key.startswith("sk-no-key")
    assert ApiClient(OpenAIConfig(model="m")).backoff(10) == OpenAIConfig(model="m").backoff_cap


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
