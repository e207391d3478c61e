"""From text splits to model batches: subsets, cached tokenization, and padding.

Fast by default: texts are tokenized without padding and each batch is padded to its own
longest text (`DataCollatorWithPadding`); the Trainer's length-grouped sampler then puts texts
of similar length together. ``padding="max_length"`` keeps the original recipe's fixed-width
batches for comparison.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelLoadError
from .chunking import encode_windows_batch
from .lengths import report_truncation

if TYPE_CHECKING:
    import datasets
    from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

    from ..task import Task

__all__ = ["subsample", "tokenize_splits", "tokenized_cache_dir", "make_collator", "BucketedPadding"]

logger = logging.getLogger(__name__)

# Bump when `_encode` changes what it writes, so old cache files are not reused.
_ENCODING_VERSION = 1


def subsample(ds: datasets.Dataset, n: int | None, seed: int, what: str) -> datasets.Dataset:
    """A random subset of `n` rows (shuffled with `seed`, as the recipe did), or all of them."""
    if n is None:
        return ds
    if n > len(ds):
        logger.warning("%s=%d is more than the %d examples available; using all of them.", what, n, len(ds))
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def _tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Identifies the vocabulary and rules, not the padding/truncation state a call leaves."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        text = json.dumps(spec, sort_keys=True)
    else:  # a pure-Python tokenizer: let datasets hash the object
        from datasets.fingerprint import Hasher

        text = Hasher.hash(tokenizer)
    extra = [
        type(tokenizer).__name__,
        list(tokenizer.model_input_names),
        tokenizer.padding_side,
        tokenizer.truncation_side,
    ]
    return hashlib.sha256((text + json.dumps(extra)).encode()).hexdigest()


def _task_fingerprint(task: Task) -> str:
    """What in the task changes the encoded texts: columns, prefix and any custom format_text."""
    try:
        code = inspect.getsource(type(task).format_text)
    except (OSError, TypeError):
        code = type(task).__qualname__
    return json.dumps([task.name, list(task.text_columns), task.text_prefix, code])


def tokenized_cache_dir(cache_dir: str | None = None) -> Path:
    """Where tokenized splits are cached: <datasets cache>/modernbert_tasks/tokenized."""
    import datasets

    root = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE)
    return root / "modernbert_tasks" / "tokenized"


def _encode(
    batch: dict[str, list], task: Task, tokenizer: PreTrainedTokenizerBase, max_length: int, padding: str
) -> dict[str, list]:
    texts = [[task.format_text(t) for t in batch[col]] for col in task.text_columns]
    enc = tokenizer(
        *texts,
        truncation=True,
        max_length=max_length,
        padding="max_length" if padding == "max_length" else False,
    )
    # Only what the model takes (ModernBERT has no token_type_ids).
    return {name: enc[name] for name in tokenizer.model_input_names if name in enc}


def tokenize_splits(
    splits: datasets.DatasetDict,
    task: Task,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    padding: str = "longest",
    cache_dir: str | None = None,
    stride: int | None = None,
) -> datasets.DatasetDict:
    """Tokenize every split with a batched `map`, cached on disk across runs.

    The splits from `Task.load_dataset` may live in memory, where `datasets` caches nothing,
    so each split gets an explicit cache file keyed by its fingerprint, the tokenizer, the
    task's text formatting, `max_length` and `padding`. With a `stride`
    (train_long_text="chunks") each text becomes its windows, rows with its label and its
    "document" (training/chunking.py), and nothing is truncated.
    """
    import datasets

    folder = tokenized_cache_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    common = json.dumps(
        [_tokenizer_fingerprint(tokenizer), _task_fingerprint(task), max_length, padding, _ENCODING_VERSION]
        + ([["chunks", stride]] if stride is not None else [])
    )
    out = {}
    for role, ds in splits.items():
        key = hashlib.sha256((ds._fingerprint + common).encode()).hexdigest()[:32]
        cache_file = folder / f"{task.name}-{role}-{key}.arrow"
        hit = cache_file.is_file()
        kwargs = {"task": task, "tokenizer": tokenizer, "max_length": max_length, "padding": padding}
        windows = stride is not None
        out[role] = ds.map(
            encode_windows_batch if windows else _encode,
            batched=True,
            with_indices=windows,
            fn_kwargs={**kwargs, "stride": stride} if windows else kwargs,
            # windows: as many rows as windows, so no column of the texts' rows is kept
            remove_columns=list(ds.column_names) if windows else list(task.text_columns),
            cache_file_name=str(cache_file),
            load_from_cache_file=True,
            new_fingerprint=key,  # spares datasets from hashing the task and tokenizer again
            desc=f"Tokenizing {role}",
        )
        logger.info(
            "Tokenized %s split (%d rows): %s %s",
            role,
            len(ds),
            "loaded from cache" if hit else "cached to",
            cache_file,
        )
    if stride is None:
        report_truncation(splits, out, task, tokenizer, max_length)  # warns with the counts
    else:
        for role, ds in out.items():
            logger.info(
                "train_long_text='chunks': %d %s texts read whole in %d windows of up to %d "
                "tokens (stride %d).",
                len(splits[role]),
                role,
                len(ds),
                max_length,
                stride,
            )
    return datasets.DatasetDict(out)


def make_collator(
    tokenizer: PreTrainedTokenizerBase,
    pad_to_multiple_of: int | None = None,
    widths: tuple[int, ...] | None = None,
) -> DataCollatorWithPadding | BucketedPadding:
    """Pads each batch to its longest text (a no-op for texts already padded to max_length),
    or, with `widths`, up to the smallest of those widths that fits it (static shapes for
    torch.compile)."""
    from transformers import DataCollatorWithPadding

    if tokenizer.pad_token is None:
        raise ModelLoadError(
            f"The tokenizer of {tokenizer.name_or_path!r} has no padding token, so texts of "
            "different lengths cannot be batched. Set one before training, e.g. "
            "tokenizer.pad_token = tokenizer.eos_token, and save the tokenizer with the model."
        )
    if widths:
        return BucketedPadding(tokenizer, tuple(sorted(widths)))
    return DataCollatorWithPadding(tokenizer, padding="longest", pad_to_multiple_of=pad_to_multiple_of)


class BucketedPadding:
    """A collator padding each batch up to the smallest of `widths` that fits its longest
    text (or to that text, beyond the largest width): a few static shapes to compile."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, widths: tuple[int, ...]) -> None:
        self.tokenizer = tokenizer
        self.widths = widths

    def __call__(self, features: list[dict]) -> dict:
        from transformers import DataCollatorWithPadding

        longest = max(len(f["input_ids"]) for f in features)
        width = next((w for w in self.widths if w >= longest), longest)
        return DataCollatorWithPadding(self.tokenizer, padding="max_length", max_length=width)(features)
