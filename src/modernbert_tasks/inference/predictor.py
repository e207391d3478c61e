"""`FineTunedModel`: a loaded model with its tokenizer and task, and `predict`.

Prediction is built for throughput: texts are tokenized once per chunk, sorted by length so
each batch pads only to its own longest text (and holds fewer texts when they are long), and
put back in input order at the end. It reads each text up to `max_length` (the model's
position limit by default) and says which texts it had to cut.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import calibration
from ..errors import ConfigError, DataError, clipped_repr, hint
from ..task import Task
from .evaluation import Evaluation
from .settings import config_labels

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["FineTunedModel", "RESCORE_MARGIN"]

logger = logging.getLogger(__name__)

# "mixed": bf16, then fp32 again for every decision closer than this (in probability) to going
# the other way. bf16 moved a probability by at most 0.014 (MiniLM on SST-2, AMX Xeon and H200;
# 0.0077 in bench/predict_precision.py, docs/deploying.md), so a label can only flip inside a
# top-2 gap of 0.028: 0.05 covers that with margin and re-scored 1.8% of a fine-tuned model's
# texts.
RESCORE_MARGIN = 0.05
CHUNK_SIZE = 8192  # texts tokenized at a time: bounds memory for very long inputs
PROGRESS_MIN_TEXTS = 1000  # show_progress=None shows a bar from this many texts on
# padded tokens in one forward pass: 64 texts of 512 tokens, or 4 of 8,192 (ModernBERT's limit)
TOKENS_PER_BATCH = 64 * 512
EMPTY = "empty text"  # the "skipped" reason of an input with no text to classify


# --- the model ----------------------------------------------------------------------------
class FineTunedModel(Evaluation):
    """A loaded model with its tokenizer and task: `predict` texts, `evaluate` labelled data.

    Attributes: model, tokenizer, task (the rebuilt `Task`, or None for a folder without
    manifest), manifest, labels (output names in id order), max_length, text_prefix,
    problem_type, device, precision ('fp32', 'mixed' or 'bf16'), path, last_rescored,
    last_truncation; max_length is what prediction reads of a text (the model's limit by
    default), training_max_length what training tokenized to.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        task: Task | None,
        manifest: dict[str, Any] | None,
        max_length: int,
        text_prefix: str,
        device: torch.device,
        precision: str,
        path: str,
        training_max_length: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        self.manifest = manifest
        self.max_length = int(max_length)
        self.training_max_length = training_max_length
        # (texts truncated, texts, the longest one's tokens) of the last predict/evaluate call
        self.last_truncation = (0, 0, 0)
        self.warn_truncation = True  # log truncation_summary(); the CLI prints it itself
        self.text_prefix = text_prefix
        self.device = device
        self.precision = precision
        self.path = path
        self.last_rescored = (0, 0)  # (texts re-scored in fp32, texts) of the last call
        self.last_rescored_rows: list[int] = []  # which: positions among the texts scored
        config = model.config
        if task is not None:
            self.problem_type = task.problem_type
            self.labels = tuple(task.id2label[i] for i in range(task.num_labels))
        else:
            self.problem_type = config.problem_type or (
                "regression" if config.num_labels == 1 else "single_label_classification"
            )
            self.labels = tuple(config_labels(config))

    def __repr__(self) -> str:
        task = self.task.name if self.task else None
        return (
            f"FineTunedModel(path={self.path!r}, task={task!r}, labels={list(self.labels)}, "
            f"max_length={self.max_length}, device='{self.device}', "
            f"precision={self.precision!r})"
        )

    @property
    def is_pair(self) -> bool | None:
        """True/False from the task; None (either form accepted) without a manifest."""
        return self.task.is_pair if self.task is not None else None

    def set_task(self, name: str) -> None:
        """Give a folder without manifest its registered task (columns, splits, metrics).

        A model with a manifest keeps its own task: `name` must be that task's. The task's
        labels must fit the model's outputs (config.json's LABEL_0, LABEL_1, ... take the
        task's names)."""
        from ..plugins import get_task

        task = get_task(name)
        given = hint(f"task={name!r}", f"--task {name!r}")
        if self.task is not None:
            if self.task.name != name:
                raise ConfigError(
                    f"{given} does not match the model: its manifest says it was "
                    f"trained on {self.task.name!r}. " + hint("Leave out task=.", "Drop --task.")
                )
            return
        expected = [task.id2label[i] for i in range(task.num_labels)]
        found = list(self.labels)
        generic = found == [f"LABEL_{i}" for i in range(len(found))]
        if (
            task.problem_type != self.problem_type
            or len(expected) != len(found)
            or (task.problem_type != "regression" and not generic and expected != found)
        ):
            raise ConfigError(
                f"{given} has labels {expected} ({task.problem_type}) but the "
                f"model at {self.path!r} predicts {found} ({self.problem_type}). "
                "Pass the task the model was trained on."
            )
        self.task, self.labels = task, tuple(expected)

    # --- predict ------------------------------------------------------------------------
    def predict(
        self,
        texts_or_pairs: str | Sequence[str] | Sequence[tuple[str, str]],
        batch_size: int = 64,
        show_progress: bool | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per input, in input order.

        Single-label: {"label", "score" (its probability), "probabilities": {label: p}}.
        Multi-label: the same (sigmoid probabilities) plus "labels": every label over 0.5.
        Regression: {"score": value}.
        A text longer than `max_length` tokens is read up to it, and its dict adds
        "truncated": {"tokens_read", "tokens"}; `last_truncation` sums the call up. An empty
        (or whitespace-only) text, or a pair of them, gets no label: {"skipped": "empty text"}.
        With precision "mixed" each dict says whether fp32 re-scored it: "rescored": bool.
        """
        first, second = self._split_inputs(texts_or_pairs)
        keep = [
            i for i in range(len(first)) if first[i].strip() or (second is not None and second[i].strip())
        ]
        full: dict[int, int] = {}
        logits = self._scores(
            [first[i] for i in keep],
            [second[i] for i in keep] if second is not None else None,
            batch_size,
            show_progress,
            full_lengths=full,
        )
        decoded = self._decode(logits)
        results: list[dict[str, Any]] = [{"skipped": EMPTY} for _ in first]
        rescored = set(self.last_rescored_rows) if self.precision == "mixed" else None
        for row, i in enumerate(keep):
            results[i] = decoded[row]
            if rescored is not None:
                results[i]["rescored"] = row in rescored
            if row in full:
                results[i]["truncated"] = {"tokens_read": self.max_length, "tokens": full[row]}
        self._report_truncation(full, len(keep))
        return results

    def _report_truncation(self, full: dict[int, int], total: int) -> None:
        self.last_truncation = (len(full), total, max(full.values(), default=0))
        if full and self.warn_truncation:
            logger.warning("%s", self.truncation_summary())

    def truncation_summary(self) -> str | None:
        """One line on the last call's truncated texts, or None when none was cut."""
        cut, total, longest = self.last_truncation
        if not cut:
            return None
        return (
            f"{cut} of {total} texts were longer than max_length={self.max_length} tokens "
            f"and were truncated (the longest has {longest:,} tokens): their labels come "
            f"from their first {self.max_length} tokens."
        )

    def _scores(
        self,
        first: list[str],
        second: list[str] | None,
        batch_size: int,
        show_progress: bool | None,
        precision: str | None = None,
        full_lengths: dict[int, int] | None = None,
    ) -> np.ndarray:
        """The logits in `precision` (default: this model's); with "mixed", bf16 and then fp32
        for every close call, so the decisions are fp32's (redone: `last_rescored(_rows)`)."""
        import numpy as np

        precision = precision or self.precision
        mixed = precision == "mixed"
        logits = self._logits(
            first,
            second,
            batch_size,
            show_progress,
            bf16=precision in ("bf16", "mixed"),
            full_lengths=full_lengths,
        )
        self.last_rescored, self.last_rescored_rows = (0, len(first)), []
        if mixed and len(first):
            idx = np.flatnonzero(
                calibration.close_calls(logits, self.manifest, self.problem_type, RESCORE_MARGIN)
            )
            if len(idx):
                logits[idx] = self._logits(
                    [first[i] for i in idx],
                    [second[i] for i in idx] if second else None,
                    batch_size,
                    False,
                    bf16=False,
                )
            self.last_rescored, self.last_rescored_rows = (len(idx), len(first)), idx.tolist()
        return logits

    def _split_inputs(self, inputs: Any) -> tuple[list[str], list[str] | None]:
        pair_task = self.is_pair
        if isinstance(inputs, str):
            inputs = [inputs]
        elif (
            isinstance(inputs, tuple)
            and len(inputs) == 2
            and pair_task
            and all(isinstance(x, str) for x in inputs)
        ):
            inputs = [inputs]  # a single (text_a, text_b) pair
        if not isinstance(inputs, Sequence):
            inputs = list(inputs)  # e.g. a generator or a pandas Series
        if not inputs:
            return [], None
        is_pair = not isinstance(inputs[0], str)
        want = self.task.text_columns if self.task else None
        if pair_task is not None and is_pair != pair_task:
            assert self.task is not None and want is not None  # pair_task is None without a task
            if pair_task:
                raise DataError(
                    f"Task {self.task.name!r} classifies pairs of texts ({want[0]!r}, "
                    f"{want[1]!r}); got single texts. "
                    + hint(
                        "Pass a list of (text_a, text_b) tuples.",
                        'Pass --pair "first text" "second text", or a --file whose records '
                        f"have {want[0]!r} and {want[1]!r} fields.",
                    )
                )
            raise DataError(
                f"Task {self.task.name!r} classifies single texts ({want[0]!r}); got "
                f"{type(inputs[0]).__name__} {clipped_repr(inputs[0])}. "
                + hint("Pass a list of strings.", "Pass the texts without --pair.")
            )
        first: list[str] = []
        second: list[str] = []  # stays empty for single texts
        for i, item in enumerate(inputs):
            if is_pair:
                if (
                    not isinstance(item, Sequence)
                    or isinstance(item, str)
                    or len(item) != 2
                    or not all(isinstance(x, str) for x in item)
                ):
                    raise DataError(
                        f"Input {i} is {clipped_repr(item)}; expected a (text_a, text_b) "
                        "pair of strings like every other input."
                    )
                first.append(item[0])
                second.append(item[1])
            else:
                if not isinstance(item, str):
                    raise DataError(
                        f"Input {i} is {type(item).__name__} {clipped_repr(item)}; expected "
                        "a string like every other input."
                    )
                first.append(item)
        return first, second if is_pair else None

    def _format(self, texts: list[str]) -> list[str]:
        """As in training: the task's `format_text` (a plugin's override, when the plugin is
        installed; otherwise the default, which adds `text_prefix`)."""
        if self.task is not None:
            return [self.task.format_text(t) for t in texts]
        return [self.text_prefix + t for t in texts] if self.text_prefix else texts

    def _logits(
        self,
        first: list[str],
        second: list[str] | None,
        batch_size: int,
        show_progress: bool | None,
        bf16: bool | None = None,
        full_lengths: dict[int, int] | None = None,
    ) -> np.ndarray:
        """Model outputs for every input, float32, in input order (`bf16`: under bf16
        autocast; default: as `precision` says). `full_lengths` gets {input index: its
        untruncated token count} for every input longer than max_length."""
        import numpy as np
        import torch
        from tqdm.auto import tqdm

        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r}; expected a positive integer.")
        n = len(first)
        out = np.empty((n, self.model.config.num_labels), dtype=np.float32)
        show = n >= PROGRESS_MIN_TEXTS if show_progress is None else bool(show_progress)
        bar = tqdm(total=n, unit="text", desc="predict", disable=not show or n == 0)
        if bf16 is None:
            bf16 = self.precision == "bf16"
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)
        with torch.inference_mode(), autocast, bar:
            for start in range(0, n, CHUNK_SIZE):
                stop = min(start + CHUNK_SIZE, n)
                texts = [
                    self._format(first[start:stop]),
                    self._format(second[start:stop]) if second is not None else None,
                ]
                encoded = self.tokenizer(
                    *texts,
                    truncation=True,
                    max_length=self.max_length,
                    padding=False,
                    return_attention_mask=False,
                )
                # only what the model takes, as in training (ModernBERT: no token_type_ids)
                encoded = {k: encoded[k] for k in self.tokenizer.model_input_names if k in encoded}
                if full_lengths is not None:
                    full_lengths.update(
                        {start + i: n for i, n in self._cut(texts, encoded["input_ids"]).items()}
                    )
                for idx in _batches([len(ids) for ids in encoded["input_ids"]], batch_size):
                    batch = self.tokenizer.pad(
                        {key: [values[i] for i in idx] for key, values in encoded.items()},
                        return_tensors="pt",
                    )
                    batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                    logits = self.model(**batch).logits
                    out[[start + i for i in idx]] = logits.float().cpu().numpy()
                    bar.update(len(idx))
        return out

    def _cut(self, texts: list[list[str] | None], ids: list[list[int]]) -> dict[int, int]:
        """{row: untruncated token count} for the rows truncation shortened: only rows that
        reached max_length are tokenized again, without truncation."""
        full = [i for i, row in enumerate(ids) if len(row) >= self.max_length]
        if not full:
            return {}
        again = self.tokenizer(
            *[[t[i] for i in full] if t is not None else None for t in texts],
            truncation=False,
            padding=False,
            return_attention_mask=False,
            verbose=False,
        )["input_ids"]
        return {i: len(row) for i, row in zip(full, again, strict=True) if len(row) > self.max_length}

    def _decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        if self.problem_type == "regression":
            return [{"score": float(v)} for v in logits[:, 0]]
        multi = self.problem_type == "multi_label_classification"
        # the manifest's temperature and decision threshold, when training fitted them
        calibrated = calibration.calibrate(logits, self.manifest, self.problem_type)
        chosen = calibration.decide(calibrated, self.manifest, self.problem_type)
        probs = calibrated.tolist()
        top = (calibrated.argmax(axis=-1) if multi else chosen).tolist()
        names = self.labels
        results = []
        for i, (row, k) in enumerate(zip(probs, top, strict=True)):
            result = {"label": names[k], "score": row[k], "probabilities": dict(zip(names, row, strict=True))}
            if multi:
                result["labels"] = [name for name, on in zip(names, chosen[i], strict=True) if on]
            results.append(result)
        return results


# --- helpers ------------------------------------------------------------------------------
def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices in batches, longest first: each batch pads only to its own longest text, an
    out-of-memory error shows on the first batch rather than the last, and a batch of long
    texts holds fewer of them (at most TOKENS_PER_BATCH padded tokens, one text at least)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, at = [], 0
    while at < len(order):
        size = max(1, min(batch_size, TOKENS_PER_BATCH // max(lengths[order[at]], 1)))
        batches.append(order[at : at + size])
        at += size
    return batches
