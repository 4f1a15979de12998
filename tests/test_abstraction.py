"""LLM state abstraction: prompt, cleaning, LRU and persistent caches, fallbacks, real model."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jitrl.agents.abstraction import (
    AbstractionConfig,
    StateAbstractor,
    build_prompt,
    clean,
    is_garbage,
    load_cache,
)
from jitrl.llm import ScriptedModel, load_model
from jitrl.llm.base import LanguageModel

KITCHEN = (
    "Kitchen\nYou are in the kitchen of the white house. A table seems to have been used "
    "recently. On the table is an elongated brown sack, smelling of hot peppers."
)
ANSWER = "Kitchen\ninventory: lamp\n- visible: table,   sack\n"
STATE = "location: Kitchen; inventory: lamp; visible: table, sack"


def test_prompt_shows_recent_commands_and_a_cut_observation() -> None:
    cfg = AbstractionConfig(history=2, max_input_chars=20)
    prompt = build_prompt("West   of\nHouse, a field and a mailbox", ["a", "b", "c"], cfg)
    assert prompt.user == "Recent commands: b, c\nObservation: West of House, a fie"
    assert prompt.answer_prefix == "location:"
    assert "location: ...; inventory: ...; visible: ...; goal progress: ..." in prompt.system
    assert "Recent" not in build_prompt("x", ["a"], AbstractionConfig(history=0)).user


def test_clean_joins_lines_and_caps_at_a_word_boundary() -> None:
    assert clean(ANSWER, 300) == "Kitchen; inventory: lamp; visible: table, sack"
    assert clean("alpha beta gamma", 12) == "alpha beta"
    assert clean("alpha beta gamma", 10) == "alpha beta"
    assert clean("abcdefghij", 4) == "abcd"
    assert clean("same\nsame\n\n  \n", 50) == "same"


@given(st.text(max_size=500), st.integers(1, 100))
def test_clean_gives_one_short_line(text: str, cap: int) -> None:
    out = clean(text, cap)
    assert len(out) <= cap and "\n" not in out and out == out.strip()


@pytest.mark.parametrize(
    ("answer", "garbage"),
    [("", True), ("ok", True), ("?!?!?!", True), ("12 34 56", True), ("word " * 20, True)],
)
def test_garbage_answers(answer: str, garbage: bool) -> None:
    assert is_garbage(clean(answer, 300), AbstractionConfig()) is garbage
    assert not is_garbage("Kitchen; inventory: lamp", AbstractionConfig())


def test_abstractor_returns_the_cleaned_state() -> None:
    model = ScriptedModel(generations=[ANSWER])
    abstractor = StateAbstractor(model)
    assert abstractor(KITCHEN, ["north", "open window"], fallback="env text") == STATE
    assert model.generate_calls[0].max_tokens == AbstractionConfig().max_output_tokens


def test_output_is_capped() -> None:
    model = ScriptedModel(generations=["Kitchen " + "with a very long description " * 30])
    out = StateAbstractor(model, AbstractionConfig(max_output_chars=50))(KITCHEN, [], "env")
    assert out.startswith("location: Kitchen with") and len(out) <= 50


def test_cache_hits_avoid_model_calls() -> None:
    model = ScriptedModel(generations=[ANSWER])
    abstractor = StateAbstractor(model)
    for _ in range(3):
        assert abstractor(KITCHEN, ["north"], "env") == STATE
    assert (abstractor.calls, abstractor.hits, len(model.generate_calls)) == (1, 2, 1)
    abstractor(KITCHEN, ["south"], "env")  # other history: another input
    assert (abstractor.calls, abstractor.hits) == (2, 2)


def test_lru_evicts_old_inputs() -> None:
    model = ScriptedModel(generations=[ANSWER])
    abstractor = StateAbstractor(model, AbstractionConfig(cache_entries=1))
    for obs in ("a room", "b room", "a room"):
        abstractor(obs, [], "env")
    assert (abstractor.calls, abstractor.hits) == (3, 0)


def test_persistent_cache_survives_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "states.jsonl"
    first = StateAbstractor(ScriptedModel(generations=[ANSWER]), cache_path=path)
    assert first(KITCHEN, ["north"], "env") == STATE
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["text"] == STATE and len(rows[0]["key"]) == 64
    model = ScriptedModel(generations=["something else entirely"])
    second = StateAbstractor(model, cache_path=path)
    assert second(KITCHEN, ["north"], "env") == STATE
    assert (second.calls, second.hits, model.generate_calls) == (0, 1, [])


def test_cache_is_keyed_by_model(tmp_path: Path) -> None:
    path = tmp_path / "states.jsonl"
    StateAbstractor(ScriptedModel(generations=[ANSWER], name="a"), cache_path=path)(KITCHEN, [], "")
    other = StateAbstractor(ScriptedModel(generations=["Attic"], name="b"), cache_path=path)
    assert other(KITCHEN, [], "env") == "location: Attic" and other.calls == 1


@pytest.mark.parametrize("answer", ["", "   \n ", "!!!", "... ... ...", "ok " * 30])
def test_garbage_falls_back_and_is_not_asked_again(
    answer: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "states.jsonl"
    model = ScriptedModel(generations=[answer])
    abstractor = StateAbstractor(model, cache_path=path)
    with caplog.at_level(logging.WARNING, logger="jitrl.agents.abstraction"):
        assert abstractor(KITCHEN, [], "env text") == "env text"
    assert "garbage" in caplog.text
    assert abstractor(KITCHEN, [], "newer env text") == "newer env text"
    assert (abstractor.calls, abstractor.hits, abstractor.fallbacks) == (1, 1, 2)
    assert json.loads(path.read_text())["text"] is None
    again = StateAbstractor(ScriptedModel(generations=["Kitchen"]), cache_path=path)
    assert again(KITCHEN, [], "env") == "env" and again.calls == 0


def test_model_errors_fall_back_uncached(caplog: pytest.LogCaptureFixture) -> None:
    model = ScriptedModel(generations=[ANSWER])
    model.close()
    abstractor = StateAbstractor(model)
    with caplog.at_level(logging.WARNING, logger="jitrl.agents.abstraction"):
        assert abstractor(KITCHEN, [], "env") == "env"
        assert abstractor(KITCHEN, [], "env") == "env"
    assert (abstractor.calls, abstractor.hits, abstractor.fallbacks) == (2, 0, 2)
    assert "RuntimeError" in caplog.text


def test_bad_cache_lines_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "states.jsonl"
    good = json.dumps({"key": "k1", "text": "location: Hall"})
    path.write_text(f'{good}\nnot json\n{{"key": 3, "text": "x"}}\n["a"]\n{{"key": "k2"')
    with caplog.at_level(logging.WARNING, logger="jitrl.agents.abstraction"):
        assert load_cache(path) == {"k1": "location: Hall"}
    assert "4 unreadable lines" in caplog.text
    assert load_cache(tmp_path / "missing.jsonl") == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fields": ()},
        {"fields": ("a:b",)},
        {"fields": (" ",)},
        {"history": -1},
        {"max_input_chars": 0},
        {"cache_entries": 0},
        {"min_output_chars": 0},
        {"min_output_chars": 10, "max_output_chars": 5},
    ],
)
def test_config_is_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AbstractionConfig(**kwargs)


@pytest.fixture(scope="module")
def real_model() -> Iterator[LanguageModel]:
    pytest.importorskip("llama_cpp", reason="needs the llamacpp extra")
    try:
        model = load_model("llamacpp", n_threads=1)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield model
    model.close()


@pytest.mark.slow
def test_real_model_abstracts_a_state(real_model: LanguageModel) -> None:
    cfg = AbstractionConfig(max_output_chars=200)
    abstractor = StateAbstractor(real_model, cfg)
    fallback = "Kitchen | sack, bottle"
    out = abstractor(KITCHEN, ["north", "open window"], fallback)
    assert out.strip() and len(out) <= 200  # the model's state, or the fallback if garbage
    assert (out == fallback) == (abstractor.fallbacks == 1)
    assert abstractor(KITCHEN, ["north", "open window"], fallback) == out
    assert (abstractor.calls, abstractor.hits) == (1, 1)
