"""ScriptedModel (the test backend) and the ``load_model`` factory's spec parsing."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from jitrl.llm import LanguageModel, Prompt, ScriptedModel, load_model
from jitrl.llm.scripted import DEFAULT_LOGPROB

PROMPT = Prompt(system="Play the game.", user="You are in a dark room.", answer_prefix="Action:")


def test_mapping_scores_with_default() -> None:
    model = ScriptedModel({"north": -0.5, "open door": -1.5}, default=-9.0)
    result = model.score(PROMPT, ["north", "open door", "dance"])
    assert result.logprobs == (-0.5, -1.5, -9.0)
    assert result.token_counts == (1, 2, 1)
    assert result.logits(length_normalise=True) == (-0.5, -0.75, -9.0)
    assert result.seconds == 0.0


def test_default_logprob_without_script() -> None:
    assert ScriptedModel().score(PROMPT, ["a", "b"]).logprobs == (DEFAULT_LOGPROB,) * 2


def test_callable_scores_see_prompt_and_candidates() -> None:
    def by_length(prompt: Prompt, candidates: Sequence[str]) -> list[float]:
        assert prompt is PROMPT
        return [-float(len(c)) for c in candidates]

    assert ScriptedModel(by_length).score(PROMPT, ["go", "look"]).logprobs == (-2.0, -4.0)


def test_callable_with_wrong_length_is_an_error() -> None:
    model = ScriptedModel(lambda prompt, candidates: [0.0])
    with pytest.raises(ValueError, match="returned 1 values for 2 candidates"):
        model.score(PROMPT, ["a", "b"])


def test_empty_candidates_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        ScriptedModel().score(PROMPT, [])


def test_calls_are_recorded() -> None:
    model = ScriptedModel({"north": -1.0})
    first = model.score(PROMPT, ["north", "south"])
    model.generate(PROMPT, max_tokens=5)
    assert len(model.score_calls) == 1
    call = model.score_calls[0]
    assert (call.prompt, call.candidates, call.result) == (PROMPT, ("north", "south"), first)
    assert [(g.prompt, g.max_tokens) for g in model.generate_calls] == [(PROMPT, 5)]


def test_generate_follows_the_script_then_repeats_the_last() -> None:
    model = ScriptedModel(generations=["open mailbox", "north"])
    assert [model.generate(PROMPT) for _ in range(3)] == ["open mailbox", "north", "north"]
    assert ScriptedModel().generate(PROMPT) == ""


def test_closed_model_refuses_calls() -> None:
    model = ScriptedModel()
    model.close()
    assert model.closed
    with pytest.raises(RuntimeError, match="closed"):
        model.score(PROMPT, ["north"])
    with pytest.raises(RuntimeError, match="closed"):
        model.generate(PROMPT)


def test_scripted_model_satisfies_the_protocol() -> None:
    assert isinstance(ScriptedModel(), LanguageModel)


def test_load_model_scripted() -> None:
    model = load_model("scripted")
    assert isinstance(model, ScriptedModel)
    assert model.name == "scripted"


@pytest.mark.parametrize("spec", ["", "gpt4", "scripted:x", "llamacpp:", "llama"])
def test_load_model_rejects_unknown_specs(spec: str) -> None:
    with pytest.raises(ValueError, match=re.escape("llamacpp:PATH.gguf")):
        load_model(spec)
