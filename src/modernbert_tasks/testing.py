"""Test helpers and pytest fixtures for modernbert-tasks and its plugins.

Installed as a pytest plugin (the ``pytest11`` entry point), so in any project that has
modernbert-tasks installed these fixtures are available without a conftest:

- ``tiny_model_dir``: a randomly initialised 2-layer, hidden-64 ModernBERT with a small BPE
  tokenizer, saved once per session. It learns a word-level task in seconds on a CPU.
- ``sentiment_dir``: ``train.tsv`` (320 rows), ``validation.tsv`` and ``test.tsv`` (80 each)
  of synthetic sentiment whose label follows from its adjectives (``sentence<TAB>label``).

And helpers to build your own: `build_tiny_modernbert`, `make_sentiment_rows`, `write_tsv`.
Importing this module loads neither torch nor transformers; the fixtures do, when used.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

__all__ = ["build_tiny_modernbert", "make_sentiment_rows", "write_tsv", "POSITIVE", "NEGATIVE",
           "NEUTRAL", "tiny_model_dir", "sentiment_dir"]

POSITIVE = ["great", "wonderful", "brilliant", "delightful", "superb", "moving", "charming",
            "excellent", "beautiful", "funny", "touching", "masterful"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "clumsy", "tedious", "bland", "painful",
            "horrible", "lifeless", "mediocre", "dreadful"]
NEUTRAL = ["the film", "this movie", "the story", "the acting", "the plot", "the ending",
           "the script", "the cast", "the score", "the direction"]
_TEMPLATES = ["{n} was {a}", "{n} is {a} and {b}", "i found {n} {a}", "{a} , {b} and long",
              "what a {a} experience", "{n} felt {a} from start to finish"]


def make_sentiment_rows(n: int, seed: int) -> list[tuple[str, int]]:
    """(sentence, label) pairs whose label (1 positive, 0 negative) follows from the words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = POSITIVE if label else NEGATIVE
        text = rng.choice(_TEMPLATES).format(n=rng.choice(NEUTRAL), a=rng.choice(words),
                                             b=rng.choice(words))
        rows.append((text, label))
    return rows


def write_tsv(path: str | os.PathLike, rows: Iterable[Sequence], header=("sentence", "label")
              ) -> Path:
    """A TSV file with a header line, unquoted (as GLUE ships its files)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _train_small_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=512, special_tokens=special))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
        mask_token="[MASK]", unk_token="[UNK]", model_input_names=["input_ids", "attention_mask"])


def build_tiny_modernbert(path: str | os.PathLike, num_labels: int = 2, *,
                          tokenizer: str | os.PathLike | None = None,
                          texts: Sequence[str] | None = None, **config_overrides) -> Path:
    """Save a randomly initialised 2-layer, hidden-64 ModernBERT and its tokenizer to `path`.

    `tokenizer`: a tokenizer folder to use (e.g. ModernBERT's real one); by default a 512-token
    BPE is trained on `texts` (default: 2,000 synthetic sentiment sentences).
    """
    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForSequenceClassification

    path = Path(path)
    if tokenizer is not None:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    else:
        tok = _train_small_tokenizer(list(texts or [t for t, _ in make_sentiment_rows(2000, 0)]))
    # the config dataclass takes global_attn_every_n_layers and num_labels through **kwargs at runtime
    config = ModernBertConfig(  # type: ignore[call-arg]
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=512, local_attention=64,
        global_attn_every_n_layers=2, pad_token_id=tok.pad_token_id,
        cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
        classifier_pooling="mean", num_labels=num_labels, **config_overrides)
    torch.manual_seed(0)
    ModernBertForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


# --- pytest fixtures (registered through the pytest11 entry point) --------------------------
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-init ModernBERT folder, built once per session. Treat it as read-only."""
    return build_tiny_modernbert(tmp_path_factory.mktemp("tiny-modernbert"))


@pytest.fixture(scope="session")
def sentiment_dir(tmp_path_factory) -> Path:
    """train.tsv (320 rows), validation.tsv (80) and test.tsv (80) of synthetic sentiment."""
    root = tmp_path_factory.mktemp("sentiment")
    write_tsv(root / "train.tsv", make_sentiment_rows(320, seed=1))
    write_tsv(root / "validation.tsv", make_sentiment_rows(80, seed=2))
    write_tsv(root / "test.tsv", make_sentiment_rows(80, seed=3))
    return root
