"""Subsets, cached tokenization and padding, checked on the batches the Trainer really builds."""

from __future__ import annotations

import logging
import random

import pytest

from modernbert_tasks import Task, get_task
from modernbert_tasks.testing import make_sentiment_rows, write_tsv
from modernbert_tasks.training.batching import subsample, tokenize_splits, tokenized_cache_dir
from modernbert_tasks.training.engine import prepare

SST2 = get_task("sst2")


@pytest.fixture(scope="module")
def ragged_dir(tmp_path_factory):
    """Sentences from 1 to 12 clauses long: lengths vary a lot, as in real data."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("ragged")
    for split, n, seed in (("train", 192, 1), ("validation", 64, 2)):
        rows = [
            (" and ".join([text] * rng.randint(1, 12)), label) for text, label in make_sentiment_rows(n, seed)
        ]
        write_tsv(root / f"{split}.tsv", rows)
    return root


def _prepare(tiny_model_dir, data_dir, tmp_path, **args):
    return prepare(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=tmp_path / "run",
        data_dir=str(data_dir),
        cache_dir=str(tmp_path / "cache"),
        report_to="none",
        **args,
    )


def _batches(dataloader):
    return [(b["input_ids"].shape[1], b["attention_mask"].sum(dim=1)) for b in dataloader]


def test_batches_are_padded_to_their_own_longest_text(tiny_model_dir, ragged_dir, tmp_path):
    run = _prepare(
        tiny_model_dir, ragged_dir, tmp_path, per_device_train_batch_size=8, per_device_eval_batch_size=16
    )
    batch = next(iter(run.trainer.get_train_dataloader()))
    # ModernBERT takes no token_type_ids: only the tokenizer's model inputs reach the model
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    multiple = run.hardware.pad_to_multiple_of or 1  # 8 on a GPU (tensor cores), else 1
    for loader in (run.trainer.get_train_dataloader(), run.trainer.get_eval_dataloader()):
        batches = _batches(loader)
        assert len({width for width, _ in batches}) > 1  # widths really vary
        for width, lengths in batches:
            assert width == -(-int(lengths.max()) // multiple) * multiple


def test_max_length_padding_gives_fixed_width_batches(tiny_model_dir, ragged_dir, tmp_path):
    run = _prepare(tiny_model_dir, ragged_dir, tmp_path, padding="max_length", max_length=48)
    assert run.trainer.args.train_sampling_strategy == "random"  # grouping is moot here
    widths = {width for width, _ in _batches(run.trainer.get_train_dataloader())}
    assert widths == {48}


def _padding(run) -> int:
    return sum(
        int(width * len(lengths) - lengths.sum())
        for width, lengths in _batches(run.trainer.get_train_dataloader())
    )


def test_grouping_by_length_cuts_padding(tiny_model_dir, ragged_dir, tmp_path):
    grouped = _prepare(tiny_model_dir, ragged_dir, tmp_path / "a", per_device_train_batch_size=8)
    shuffled = _prepare(
        tiny_model_dir, ragged_dir, tmp_path / "b", per_device_train_batch_size=8, group_by_length=False
    )
    assert grouped.trainer.args.train_sampling_strategy == "group_by_length"
    assert shuffled.trainer.args.train_sampling_strategy == "random"
    assert _padding(grouped) < 0.5 * _padding(shuffled)


def test_tokenization_is_cached_across_runs(tiny_model_dir, sentiment_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="modernbert_tasks")
    first = _prepare(tiny_model_dir, sentiment_dir, tmp_path)
    files = sorted(tokenized_cache_dir(str(tmp_path / "cache")).glob("*.arrow"))
    assert len(files) == 3  # train, eval and test
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert "loaded from cache" not in caplog.text
    caplog.clear()
    second = _prepare(tiny_model_dir, sentiment_dir, tmp_path, overwrite=True)
    assert caplog.text.count("loaded from cache") == 3
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # read, not rewritten
    assert second.trainer.train_dataset["input_ids"] == first.trainer.train_dataset["input_ids"]
    # another max_length is another encoding: a new cache file, not a stale hit
    _prepare(tiny_model_dir, sentiment_dir, tmp_path, overwrite=True, max_length=16)
    assert len(list(tokenized_cache_dir(str(tmp_path / "cache")).glob("*.arrow"))) == 6


@pytest.mark.usefixtures("shared_tokenizer_dir")  # written for the real ModernBERT tokenizer in ../shared
def test_pairs_are_encoded_as_pairs_with_the_prefix(tiny_model_dir, tmp_path):
    import datasets
    from transformers import AutoTokenizer

    task = Task(
        name="pairs", labels=("no", "yes"), text_columns=("premise", "hypothesis"), text_prefix="query: "
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"premise": ["the film was great"], "hypothesis": ["it was dull"], "label": [0]}
            )
        }
    )
    encoded = tokenize_splits(splits, task, tokenizer, max_length=32, cache_dir=str(tmp_path))
    ids = encoded["train"]["input_ids"][0]
    assert ids.count(tokenizer.sep_token_id) == 2  # [CLS] a [SEP] b [SEP]
    text = tokenizer.decode(ids)
    assert text.count("query:") == 2 and "great" in text and "dull" in text
    assert encoded["train"].column_names == ["label", "input_ids", "attention_mask"]


def test_truncation_respects_max_length(tiny_model_dir, ragged_dir, tmp_path):
    run = _prepare(tiny_model_dir, ragged_dir, tmp_path, max_length=16)
    lengths = [len(ids) for ids in run.trainer.train_dataset["input_ids"]]
    assert max(lengths) == 16 and min(lengths) < 16


def test_subsample_is_seeded_and_tolerates_too_large_requests(caplog):
    import datasets

    ds = datasets.Dataset.from_dict({"x": list(range(100))})
    a, b = subsample(ds, 10, seed=42, what="n")["x"], subsample(ds, 10, seed=42, what="n")["x"]
    assert a == b and len(a) == 10 and a != list(range(10))  # shuffled, reproducibly
    assert subsample(ds, 10, seed=7, what="n")["x"] != a
    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        assert len(subsample(ds, 1000, seed=42, what="max_train_samples")) == 100
    assert "max_train_samples=1000 is more than the 100 examples" in caplog.text


def test_subsets_reach_the_trainer(tiny_model_dir, sentiment_dir, tmp_path):
    run = _prepare(tiny_model_dir, sentiment_dir, tmp_path, max_train_samples=50, max_eval_samples=20)
    assert run.num_examples == {"train": 50, "eval": 20, "test": 80}
    assert len(run.trainer.train_dataset) == 50 and len(run.trainer.eval_dataset) == 20


def test_length_grouped_order_depends_on_seed_and_epoch_only():
    import torch

    from modernbert_tasks.training.trainer import SeededLengthGroupedSampler

    lengths = [random.Random(i).randint(3, 60) for i in range(400)]
    sampler = SeededLengthGroupedSampler(8, lengths, seed=42)
    sampler.set_epoch(1)
    first = list(sampler)
    torch.manual_seed(123)  # the global RNG (what a resumed run restores late) plays no part
    assert list(sampler) == first and sorted(first) == list(range(400))
    sampler.set_epoch(2)
    assert list(sampler) != first

    # consecutive batches hold similar lengths: far less padding than a random order
    def padding(order):
        batches = [[lengths[i] for i in order[k : k + 8]] for k in range(0, len(order), 8)]
        return sum(max(b) * len(b) - sum(b) for b in batches)

    assert padding(first) < 0.3 * padding(random.Random(0).sample(range(400), 400))
