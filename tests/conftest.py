"""Shared fixtures: a tiny random-init ModernBERT built once per session, and learnable data.

The tiny model uses the real ModernBERT tokenizer from ../shared when present, and otherwise
a small BPE tokenizer trained here, so the suite also runs from an outside clone.
"""

from __future__ import annotations

import csv
import os
import random
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MODERNBERT_TASKS_SHARED", ROOT.parent / "shared"))
SST2_DIR = SHARED / "data" / "sst2"
TOKENIZER_DIR = SHARED / "models" / "modernbert-base"

needs_shared = pytest.mark.skipif(
    not SST2_DIR.is_dir(), reason=f"../shared is absent ({SHARED}); it holds the SST-2 data"
)

POSITIVE = ["great", "wonderful", "brilliant", "delightful", "superb", "moving", "charming",
            "excellent", "beautiful", "funny", "touching", "masterful"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "clumsy", "tedious", "bland", "painful",
            "horrible", "lifeless", "mediocre", "dreadful"]
NEUTRAL = ["the film", "this movie", "the story", "the acting", "the plot", "the ending",
           "the script", "the cast", "the score", "the direction"]
TEMPLATES = ["{n} was {a}", "{n} is {a} and {b}", "i found {n} {a}", "{a} , {b} and long",
             "what a {a} experience", "{n} felt {a} from start to finish"]


def make_sentiment_rows(n: int, seed: int) -> list[tuple[str, int]]:
    """Sentences whose label is given by their adjectives: learnable from the words alone."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = POSITIVE if label else NEGATIVE
        text = rng.choice(TEMPLATES).format(n=rng.choice(NEUTRAL), a=rng.choice(words),
                                            b=rng.choice(words))
        rows.append((text, label))
    return rows


def write_tsv(path: Path, rows, header=("sentence", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _installed_packages(path: list[str] | None = None) -> dict[str, str]:
    """{distribution name: version} as importlib.metadata sees it (sys.path by default)."""
    dists = metadata.distributions() if path is None else metadata.distributions(path=path)
    return {(d.metadata["Name"] or "?").lower(): d.version for d in dists}


@pytest.fixture(scope="session")
def installed_packages():
    return _installed_packages


@pytest.fixture(autouse=True, scope="session")
def environment_untouched():
    """Testing must never change the user's environment (installs, upgrades, removals)."""
    before = _installed_packages()
    yield
    after = _installed_packages()
    changed = sorted(f"{name}: {before.get(name, '(absent)')} -> {after.get(name, '(absent)')}"
                     for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, "the test suite changed the installed packages: " + "; ".join(changed)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two
    OpenMP threads make every step several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sentiment_dir(tmp_path_factory) -> Path:
    """train.tsv (320 rows), validation.tsv (80) and test.tsv (80) of synthetic sentiment."""
    root = tmp_path_factory.mktemp("sentiment")
    write_tsv(root / "train.tsv", make_sentiment_rows(320, seed=1))
    write_tsv(root / "validation.tsv", make_sentiment_rows(80, seed=2))
    write_tsv(root / "test.tsv", make_sentiment_rows(80, seed=3))
    return root


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


def build_tiny_modernbert(path: Path, num_labels: int = 2, **config_overrides) -> Path:
    """Save a randomly initialised 2-layer, hidden-64 ModernBERT and its tokenizer to `path`."""
    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForSequenceClassification

    if TOKENIZER_DIR.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    else:
        texts = [t for t, _ in make_sentiment_rows(2000, seed=0)]
        tokenizer = _train_small_tokenizer(texts)
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=512, local_attention=64,
        global_attn_every_n_layers=2, pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        classifier_pooling="mean", num_labels=num_labels, **config_overrides)
    torch.manual_seed(0)
    model = ModernBertForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-init ModernBERT folder, built once per session. Treat it as read-only."""
    return build_tiny_modernbert(tmp_path_factory.mktemp("tiny-modernbert"))
