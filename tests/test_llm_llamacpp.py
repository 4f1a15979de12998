"""LlamaCppModel on the embedded SmolLM2-135M-Instruct: exact shared-cache scoring.

The model tests are marked ``slow`` (they load the real model; CI runs them too) and share one
model instance. Prompts are built by :func:`jitrl.agents.prompts.build_prompt` from a recorded zork1
state, so they look like what the agent sends.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from jitrl.agents.prompts import build_prompt
from jitrl.envs.base import StepInfo
from jitrl.llm import LanguageModel, Prompt, load_model
from jitrl.llm.llamacpp import (
    ContextOverflowError,
    LlamaCppConfig,
    LlamaCppModel,
    common_prefix_length,
    embedded_model_path,
)

TOLERANCE_NATS = 1e-3
"""Largest difference allowed between shared-cache and naive scores (measured: exactly 0)."""
PROBABILITY_SLACK = 1e-6
OVERFLOW_WORDS = 3000
LONG_CANDIDATE_WORDS = 40

ZORK_OBSERVATION = (
    "West of House\nYou are standing in an open field west of a white house, with a boarded "
    "front door.\nThere is a small mailbox here.\n"
)
ZORK_INFO = StepInfo(location="West of House", inventory=())
ZORK_CANDIDATES = ["open mailbox", "north", "south", "west", "go around the house", "xyzzy"]
CAPITAL = Prompt(
    system="You are a helpful assistant.",
    user="What is the capital of France? Answer with one word.",
    answer_prefix="Answer:",
)


def zork_prompt(history: list[str]) -> Prompt:
    return build_prompt(ZORK_OBSERVATION, ZORK_INFO, history)


# --------------------------------------------------------------------- no model needed


def test_common_prefix_length() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length([1, 2], [1, 2]) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_ctx": 1},
        {"n_threads": 0},
        {"temperature": -1.0},
        {"model_path": " "},
        {"system_template": "no placeholder"},
        {"turn_template": "{user} and no prefix"},
        {"end_of_turn": ""},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid LlamaCppConfig"):
        LlamaCppConfig(**kwargs)  # type: ignore[arg-type]


def test_config_threads_default_to_usable_cores() -> None:
    assert LlamaCppConfig().threads >= 1
    assert LlamaCppConfig(n_threads=3).threads == 3


# --------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaCppModel]:
    pytest.importorskip(
        "llama_cpp", reason="needs the llamacpp extra: pip install 'jitrl[llamacpp]'"
    )
    try:
        embedded_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with LlamaCppModel() as loaded:
        yield loaded


def assert_close(a: tuple[float, ...], b: tuple[float, ...]) -> None:
    assert len(a) == len(b)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= TOLERANCE_NATS


@pytest.mark.slow
def test_protocol_and_chatml_rendering(model: LlamaCppModel) -> None:
    assert isinstance(model, LanguageModel)
    assert model.render(Prompt("S", "U")) == (
        "<|im_start|>system\nS<|im_end|>\n",
        "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nAction:",
    )
    assert model.candidate_tokens("Paris")[-1] == model.candidate_tokens("x")[-1]


@pytest.mark.slow
def test_prompt_and_candidate_tokens_join_cleanly(model: LlamaCppModel) -> None:
    """Tokenising prompt and ``" " + candidate`` apart gives the joint text's tokens."""
    prompt = zork_prompt(["north", "south"])
    tokens, system_len = model.prompt_tokens(prompt)
    system_text, turn_text = model.render(prompt)
    for candidate in ZORK_CANDIDATES:
        joint = model._tokenize(system_text + turn_text + " " + candidate, special=True)
        assert joint == tokens + model.candidate_tokens(candidate)[:-1]
    assert 0 < system_len < len(tokens)


@pytest.mark.slow
def test_shared_cache_scores_equal_the_naive_reference(model: LlamaCppModel) -> None:
    prompt = zork_prompt(["north", "south", "open mailbox"])
    naive = model.score_full(prompt, ZORK_CANDIDATES)
    shared = model.score(prompt, ZORK_CANDIDATES)
    assert_close(shared.logprobs, naive.logprobs)
    assert shared.token_counts == naive.token_counts
    assert shared.prompt_tokens == naive.prompt_tokens
    assert shared.prefill_tokens == shared.prompt_tokens  # score_full left the cache empty
    assert naive.prefill_tokens > len(ZORK_CANDIDATES) * shared.prompt_tokens - 1
    assert all(lp < 0 for lp in shared.logprobs)


@pytest.mark.slow
def test_prefix_reuse_gives_the_cold_scores(model: LlamaCppModel) -> None:
    first, second = zork_prompt(["north"]), zork_prompt(["north", "west"])
    model.score_full(first, ["look"])  # empties the cache
    cold = model.score(second, ZORK_CANDIDATES)
    model.score(first, ZORK_CANDIDATES)
    warm = model.score(second, ZORK_CANDIDATES)
    assert warm.prefill_tokens < warm.prompt_tokens
    assert warm.prefill_tokens < warm.prompt_tokens - model.prompt_tokens(second)[1]
    assert_close(warm.logprobs, cold.logprobs)
    again = model.score(second, ZORK_CANDIDATES)
    assert again.prefill_tokens == 0
    assert again.logprobs == warm.logprobs


@pytest.mark.slow
def test_probabilities_of_complete_answers_sum_to_at_most_one(model: LlamaCppModel) -> None:
    result = model.score(zork_prompt([]), ZORK_CANDIDATES)
    assert sum(math.exp(lp) for lp in result.logprobs) <= 1.0 + PROBABILITY_SLACK


@pytest.mark.slow
def test_prefers_the_sensible_answer(model: LlamaCppModel) -> None:
    result = model.score(CAPITAL, ["Paris", "Banana"])
    paris, banana = result.logprobs
    assert paris > banana + 1.0
    assert result.token_counts[0] == 2  # " Paris" + end of turn


@pytest.mark.slow
def test_long_candidates_and_generation_keep_the_cache_exact(model: LlamaCppModel) -> None:
    long_candidate = " ".join(["take the lamp and"] * (LONG_CANDIDATE_WORDS // 4))
    candidates = ["north", long_candidate]
    assert model.generate(CAPITAL, max_tokens=8)
    prompt = zork_prompt(["north"])
    shared = model.score(prompt, candidates)
    assert shared.token_counts[1] > LONG_CANDIDATE_WORDS
    assert_close(shared.logprobs, model.score_full(prompt, candidates).logprobs)


@pytest.mark.slow
def test_generate_answers_the_easy_question(model: LlamaCppModel) -> None:
    assert "Paris" in model.generate(CAPITAL, max_tokens=8)


@pytest.mark.slow
def test_errors(model: LlamaCppModel) -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        model.score(CAPITAL, [])
    huge = Prompt(system="s", user="word " * OVERFLOW_WORDS)
    with pytest.raises(ContextOverflowError, match="n_ctx"):
        model.score(huge, ["north"])
    assert model.score(CAPITAL, ["Paris"]).logprobs  # still usable afterwards


@pytest.mark.slow
def test_load_model_builds_the_embedded_backend() -> None:
    pytest.importorskip("llama_cpp")
    loaded = load_model("llamacpp", n_threads=1)
    try:
        assert isinstance(loaded, LlamaCppModel)
        assert loaded.config.threads == 1
        assert "SmolLM2" in loaded.name
    finally:
        loaded.close()
    with pytest.raises(RuntimeError, match="closed"):
        loaded.score(CAPITAL, ["Paris"])
