"""Loading a fine-tuned model and using it: `load_finetuned(path).predict(texts)`.

The folder's manifest (see `manifest.py`) says which task the model was trained on, so the
labels, text columns, prefix and max length match training without the task's plugin being
installed. A plain Hugging Face classification folder (no manifest) loads too.

Prediction is built for throughput: texts are tokenized once per chunk, sorted by length so
each batch pads only to its own longest text, and put back in input order at the end.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import modeling
from ..artifacts.manifest import MANIFEST_NAME, ManifestError, read_manifest, task_from_manifest
from ..errors import ConfigError, DataError, hint
from ..hardware import EVALUATE_PRECISIONS, PREDICT_PRECISIONS
from ..task import Task
from . import calibration

if TYPE_CHECKING:
    import datasets
    import numpy as np
    import torch

__all__ = ["load_finetuned", "FineTunedModel", "PRECISIONS", "EVALUATE_PRECISIONS", "label_array"]

logger = logging.getLogger("modernbert_tasks")

PRECISIONS = PREDICT_PRECISIONS
# "mixed": bf16, then fp32 again for every decision closer than this (in probability) to going
# the other way. bf16 moved a probability by at most 0.014 (MiniLM on SST-2, AMX Xeon and H200;
# 0.0077 in bench/predict_precision.py, docs/deploying.md), so a label can only flip inside a
# top-2 gap of 0.028: 0.05 covers that with margin and re-scored 1.8% of a fine-tuned model's
# texts.
RESCORE_MARGIN = 0.05
CHUNK_SIZE = 8192  # texts tokenized at a time: bounds memory for very long inputs
PROGRESS_MIN_TEXTS = 1000  # show_progress=None shows a bar from this many texts on
DEFAULT_MAX_LENGTH = 512  # a model whose config names no position limit
# padded tokens in one forward pass: 64 texts of 512 tokens, or 4 of 8,192 (ModernBERT's limit)
TOKENS_PER_BATCH = 64 * 512
EMPTY = "empty text"  # the "skipped" reason of an input with no text to classify


# --- loading -------------------------------------------------------------------------------
def load_finetuned(
    path: str | os.PathLike,
    device: str | int | torch.device | None = None,
    *,
    precision: str = "auto",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    backend: str = "torch",
    max_length: int | None = None,
) -> FineTunedModel:
    """Load a model saved by `fine_tune` (or any HF sequence-classification folder).

    Args:
        path: the model folder, or a Hugging Face Hub id (needs network or the HF cache).
        device: 'cpu', 'cuda', 'cuda:1', an index or a torch.device; None picks CUDA if present.
        precision: 'auto' ('mixed' where bf16 is fast, else 'fp32': either way the labels
            are fp32's), 'fp32', 'mixed' (bf16, close calls re-scored in fp32) or 'bf16'
            (fastest; close calls can flip). See `_choose_precision`.
        trust_remote_code: run model code shipped in the folder. Off unless you trust it.
        allow_pickle: also load pickle weights (pytorch_model.bin). Unpickling can run
            arbitrary code, so only do this for files you trust.
        backend: 'torch', or 'onnx' / 'onnx-int8' for onnxruntime on a folder written by
            export_onnx (same predict/evaluate; see inference/onnx_model.py).
        max_length: the most tokens predict and evaluate read of a text. Default: the model's
            position limit (ModernBERT 8,192), not the shorter length training used for speed;
            a longer text is truncated, and its record says so.
    """
    if backend != "torch":  # onnxruntime: an optional extra, loaded only when asked for
        from .onnx_model import load_backend

        return load_backend(path, backend, device=device, precision=precision,
                            max_length=max_length)
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not supported; expected one of "
                          f"{', '.join(PRECISIONS)}.")
    source = modeling.resolve_source(path, allow_pickle=allow_pickle)
    manifest = _read_any_manifest(source)
    torch_device = modeling.resolve_device(device)
    chosen = _choose_precision(torch_device, precision)
    model, tokenizer = modeling.load_for_prediction(source, allow_pickle=allow_pickle,
                                                    trust_remote_code=trust_remote_code)
    settings = model_settings(manifest, model.config, tokenizer, source, max_length)
    model.to(torch_device).eval()
    return FineTunedModel(model, tokenizer, manifest=manifest, device=torch_device,
                          precision=chosen, path=source, **settings)


def model_settings(manifest: dict[str, Any] | None, config: Any, tokenizer: Any, source: str,
                   max_length: int | None = None) -> dict[str, Any]:
    """What predicting with a saved folder needs beyond its weights, for every backend: the
    task (checked against config.json's labels), the text prefix, and the two lengths.

    max_length (what prediction reads) is `max_length` if given, else the manifest's
    prediction length, else the model's position limit; training_max_length is the shorter
    length training tokenized to for speed (None without a manifest)."""
    from ..modeling import position_limit

    limit = position_limit(config, tokenizer) or DEFAULT_MAX_LENGTH
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(
            max_length, int) or not 8 <= max_length <= limit):
        raise ConfigError(f"max_length={max_length!r}; expected an integer from 8 to {limit} "
                          f"(the most tokens this model reads). "
                          + hint("Leave it out to read up to the model's limit.",
                                 "Leave out --max-length to read up to the model's limit."))
    task = task_for_manifest(manifest) if manifest else None
    if task is not None:
        _check_labels_match(task, config, source)
    recorded = ((manifest or {}).get("prediction") or {}).get("max_length")
    return {"task": task, "text_prefix": manifest["text_prefix"] if manifest else "",
            "max_length": int(max_length or recorded or limit),
            "training_max_length": manifest["max_length"] if manifest else None}


def task_for_manifest(manifest: dict[str, Any]) -> Task:
    """The manifest's task; the installed plugin's own object when it is the same definition,
    so that its overridden `load_dataset`/`format_text`/`compute_metrics` apply too."""
    task = task_from_manifest(manifest)
    try:
        from ..plugins import registry

        registered = registry.tasks().get(task.name)
    except Exception:  # a broken plugin set must not stop a self-contained model from loading
        return task
    if registered is not None and registered[0].to_dict() == task.to_dict():
        return registered[0]
    if manifest.get("training", {}).get("format_text") == "custom":
        logger.warning(
            "Task %r was trained with its plugin's own format_text, and that plugin (%s) is not "
            "installed here: predictions apply only the text_prefix, so they may differ from "
            "training. Install the plugin to reproduce training's text formatting.", task.name,
            manifest.get("task", {}).get("plugin"))
    return task


def _read_any_manifest(source: str) -> dict[str, Any] | None:
    if Path(source).is_dir():
        return read_manifest(source)
    from transformers.utils import cached_file

    try:  # a Hub id: the manifest is optional there too
        file = cached_file(source, MANIFEST_NAME, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except Exception as exc:
        raise modeling.hub_error(source, exc) from None
    return read_manifest(Path(file).parent) if file else None


def _config_labels(config: Any) -> list[str]:
    return [str(config.id2label[i]) for i in range(config.num_labels)]


def _check_labels_match(task: Task, config: Any, source: str) -> None:
    if task.problem_type == "regression":
        if config.num_labels != 1:
            raise ManifestError(
                f"The manifest in {source!r} describes regression task {task.name!r} (1 output) "
                f"but config.json has num_labels={config.num_labels}. The manifest does not "
                "belong to these weights; re-save the model.", ["task.definition.problem_type"])
        return
    expected, found = list(task.labels), _config_labels(config)
    if expected != found:
        raise ManifestError(
            f"The manifest in {source!r} lists labels {expected} for task {task.name!r}, but "
            f"config.json's id2label gives {found}. The manifest and the weights disagree: "
            "re-save the model, or fix one of the two files so the label order matches.",
            ["task.definition.labels"])


def _choose_precision(device: torch.device, precision: str) -> str:
    """'fp32', 'bf16' or 'mixed' (the autocast dtype; weights stay fp32).

    'auto' is 'mixed' where bf16 is fast (CPUs with AVX512-BF16/AMX, GPUs with bf16) and 'fp32'
    elsewhere. 'mixed' computes in bf16 and re-scores every close call in fp32 (see
    RESCORE_MARGIN), so its labels are fp32's. Plain 'bf16' can flip close calls: on
    all-MiniLM-L6-v2 fine-tuned on SST-2 (2,693 validation+test sentences) it changed 2 labels
    on a CPU and 1 on an H200, and bf16 results also depend on how texts are batched.
    """
    from ..hardware import bf16_support

    if precision == "fp32":
        return "fp32"
    supported, reason = bf16_support(device.type)
    if precision == "auto":
        return "mixed" if supported else "fp32"
    if device.type == "cuda" and not supported:
        raise ConfigError(f"precision={precision!r} but {reason}. Use precision='fp32'.")
    if not supported:
        warnings.warn(f"precision={precision!r} on this {device.type}: {reason}. Use "
                      "precision='fp32'.", RuntimeWarning, stacklevel=3)
    return precision


# --- the model ----------------------------------------------------------------------------
class FineTunedModel:
    """A loaded model with its tokenizer and task: `predict` texts, `evaluate` labelled data.

    Attributes: model, tokenizer, task (the rebuilt `Task`, or None for a folder without
    manifest), manifest, labels (output names in id order), max_length, text_prefix,
    problem_type, device, precision ('fp32', 'mixed' or 'bf16'), path, last_rescored,
    last_truncation; max_length is what prediction reads of a text (the model's limit by
    default), training_max_length what training tokenized to.
    """

    def __init__(self, model: Any, tokenizer: Any, *, task: Task | None,
                 manifest: dict[str, Any] | None, max_length: int, text_prefix: str,
                 device: torch.device, precision: str, path: str,
                 training_max_length: int | None = None) -> None:
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
        config = model.config
        if task is not None:
            self.problem_type = task.problem_type
            self.labels = tuple(task.id2label[i] for i in range(task.num_labels))
        else:
            self.problem_type = config.problem_type or (
                "regression" if config.num_labels == 1 else "single_label_classification")
            self.labels = tuple(_config_labels(config))

    def __repr__(self) -> str:
        task = self.task.name if self.task else None
        return (f"FineTunedModel(path={self.path!r}, task={task!r}, labels={list(self.labels)}, "
                f"max_length={self.max_length}, device='{self.device}', "
                f"precision={self.precision!r})")

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
                raise ConfigError(f"{given} does not match the model: its manifest says it was "
                                  f"trained on {self.task.name!r}. "
                                  + hint("Leave out task=.", "Drop --task."))
            return
        expected = [task.id2label[i] for i in range(task.num_labels)]
        found = list(self.labels)
        generic = found == [f"LABEL_{i}" for i in range(len(found))]
        if task.problem_type != self.problem_type or len(expected) != len(found) or (
                task.problem_type != "regression" and not generic and expected != found):
            raise ConfigError(f"{given} has labels {expected} ({task.problem_type}) but the "
                              f"model at {self.path!r} predicts {found} ({self.problem_type}). "
                              "Pass the task the model was trained on.")
        self.task, self.labels = task, tuple(expected)

    def export_onnx(self, output: str | os.PathLike | None = None, **kwargs: Any) -> Any:
        """Export to ONNX with a parity check; see `artifacts.export.export_onnx`."""
        from ..artifacts.export import export_onnx

        return export_onnx(self, output, **kwargs)

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
        """
        first, second = self._split_inputs(texts_or_pairs)
        keep = [i for i in range(len(first))
                if first[i].strip() or (second is not None and second[i].strip())]
        full: dict[int, int] = {}
        logits = self._scores([first[i] for i in keep],
                              [second[i] for i in keep] if second is not None else None,
                              batch_size, show_progress, full_lengths=full)
        decoded = self._decode(logits)
        results: list[dict[str, Any]] = [{"skipped": EMPTY} for _ in first]
        for row, i in enumerate(keep):
            results[i] = decoded[row]
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
        return (f"{cut} of {total} texts were longer than max_length={self.max_length} tokens "
                f"and were truncated (the longest has {longest:,} tokens): their labels come "
                f"from their first {self.max_length} tokens.")

    def _scores(self, first: list[str], second: list[str] | None, batch_size: int,
                show_progress: bool | None, precision: str | None = None,
                full_lengths: dict[int, int] | None = None) -> np.ndarray:
        """The logits in `precision` (default: this model's); with "mixed", bf16 and then fp32
        for every close call, so the decisions are fp32's. `last_rescored` says how many were
        redone."""
        import numpy as np

        precision = precision or self.precision
        mixed = precision == "mixed"
        logits = self._logits(first, second, batch_size, show_progress, bf16=precision in (
            "bf16", "mixed"), full_lengths=full_lengths)
        self.last_rescored = (0, len(first))
        if mixed and len(first):
            idx = np.flatnonzero(calibration.close_calls(logits, self.manifest,
                                                         self.problem_type, RESCORE_MARGIN))
            if len(idx):
                logits[idx] = self._logits(
                    [first[i] for i in idx], [second[i] for i in idx] if second else None,
                    batch_size, False, bf16=False)
            self.last_rescored = (len(idx), len(first))
        return logits

    def _split_inputs(self, inputs: Any) -> tuple[list[str], list[str] | None]:
        pair_task = self.is_pair
        if isinstance(inputs, str):
            inputs = [inputs]
        elif isinstance(inputs, tuple) and len(inputs) == 2 and pair_task and all(
                isinstance(x, str) for x in inputs):
            inputs = [inputs]  # a single (text_a, text_b) pair
        if not isinstance(inputs, Sequence):
            inputs = list(inputs)  # e.g. a generator or a pandas Series
        if not inputs:
            return [], None
        is_pair = not isinstance(inputs[0], str)
        want = self.task.text_columns if self.task else None
        if pair_task is not None and is_pair != pair_task:
            if pair_task:
                raise DataError(
                    f"Task {self.task.name!r} classifies pairs of texts ({want[0]!r}, "
                    f"{want[1]!r}); got single texts. " + hint(
                        "Pass a list of (text_a, text_b) tuples.",
                        'Pass --pair "first text" "second text", or a --file whose records '
                        f'have {want[0]!r} and {want[1]!r} fields.'))
            raise DataError(f"Task {self.task.name!r} classifies single texts ({want[0]!r}); got "
                            f"{type(inputs[0]).__name__} {_clip(inputs[0])}. " + hint(
                                "Pass a list of strings.", "Pass the texts without --pair."))
        first, second = [], [] if is_pair else None
        for i, item in enumerate(inputs):
            if is_pair:
                if (not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2
                        or not all(isinstance(x, str) for x in item)):
                    raise DataError(f"Input {i} is {_clip(item)}; expected a (text_a, text_b) "
                                    "pair of strings like every other input.")
                first.append(item[0])
                second.append(item[1])
            else:
                if not isinstance(item, str):
                    raise DataError(f"Input {i} is {type(item).__name__} {_clip(item)}; expected "
                                    "a string like every other input.")
                first.append(item)
        return first, second

    def _format(self, texts: list[str]) -> list[str]:
        """As in training: the task's `format_text` (a plugin's override, when the plugin is
        installed; otherwise the default, which adds `text_prefix`)."""
        if self.task is not None:
            return [self.task.format_text(t) for t in texts]
        return [self.text_prefix + t for t in texts] if self.text_prefix else texts

    def _logits(self, first: list[str], second: list[str] | None, batch_size: int,
                show_progress: bool | None, bf16: bool | None = None,
                full_lengths: dict[int, int] | None = None) -> np.ndarray:
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
                texts = [self._format(first[start:stop]),
                         self._format(second[start:stop]) if second is not None else None]
                encoded = self.tokenizer(*texts, truncation=True, max_length=self.max_length,
                                         padding=False, return_attention_mask=False)
                # only what the model takes, as in training (ModernBERT: no token_type_ids)
                encoded = {k: encoded[k] for k in self.tokenizer.model_input_names if k in encoded}
                if full_lengths is not None:
                    full_lengths.update({start + i: n for i, n in self._cut(
                        texts, encoded["input_ids"]).items()})
                for idx in _batches([len(ids) for ids in encoded["input_ids"]], batch_size):
                    batch = self.tokenizer.pad(
                        {key: [values[i] for i in idx] for key, values in encoded.items()},
                        return_tensors="pt")
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
        again = self.tokenizer(*[[t[i] for i in full] if t is not None else None for t in texts],
                               truncation=False, padding=False, return_attention_mask=False,
                               verbose=False)["input_ids"]
        return {i: len(row) for i, row in zip(full, again, strict=True)
                if len(row) > self.max_length}

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
            result = {"label": names[k], "score": row[k],
                      "probabilities": dict(zip(names, row, strict=True))}
            if multi:
                result["labels"] = [name for name, on in zip(names, chosen[i], strict=True) if on]
            results.append(result)
        return results

    # --- evaluate -----------------------------------------------------------------------
    def evaluate(
        self,
        data: str | os.PathLike | datasets.Dataset | Sequence[tuple[Any, Any]] | None = None,
        *,
        split: str = "eval",
        data_dir: str | os.PathLike | None = None,
        data_files: Mapping[str, Any] | None = None,
        data_file: str | os.PathLike | None = None,
        batch_size: int = 64,
        show_progress: bool | None = None,
        precision: str = "fp32",
    ) -> dict[str, Any]:
        """The task's metrics on labelled data, plus loss and num_examples.

        `data` is a file (TSV/CSV/JSON(L)/parquet with the task's columns), a
        `datasets.Dataset`, or a list of (text, label) / ((text_a, text_b), label). Without
        `data`, the task's `split` ('train', 'eval' or 'test') is loaded from `data_dir`,
        `data_files`, or the task's hub dataset. A folder without manifest reads the columns
        'sentence' and 'label' (or label names from config.json). Classification adds "per_class"
        ({label: {precision, recall, f1, support}}); single-label adds "confusion_matrix"
        (rows: true label, columns: predicted, both in `labels` order).

        `data_file` is `data` under the CLI's name (`--data-file`). `precision` is "fp32" by
        default whatever the model was loaded with, so the figures are the ones training
        printed, on every machine; "mixed" (labels as fp32, probabilities and loss from bf16)
        or "bf16" trade that for speed.
        """
        if data_file is not None:
            if data is not None:
                raise ConfigError("Pass the evaluation file once: data= or data_file=, not both.")
            data = data_file
        if precision not in EVALUATE_PRECISIONS:
            raise ConfigError(f"precision={precision!r} is not supported by evaluate(); expected "
                              f"one of {', '.join(EVALUATE_PRECISIONS)} (default fp32: the "
                              "figures training printed).")
        task = self.evaluation_task
        ds = self.labelled_data(data, split=split, data_dir=data_dir, data_files=data_files)
        if "label" not in ds.column_names:
            raise DataError(f"The evaluation data has no labels (column {task.label_column!r}); "
                            "evaluate needs labelled data. Use predict() for unlabelled texts.")
        first = list(ds[task.text_columns[0]])
        second = list(ds[task.text_columns[1]]) if task.is_pair else None
        full: dict[int, int] = {}
        logits = self._scores(first, second, batch_size, show_progress, precision, full)
        self._report_truncation(full, len(first))
        labels = label_array(ds["label"], self.problem_type)
        results: dict[str, Any] = dict(task.compute_metrics(logits, labels))
        results["loss"] = _loss(logits, labels, self.problem_type)
        results["num_examples"] = len(first)
        if self.problem_type != "regression":
            results.update(_classification_report(logits, labels, self.labels,
                                                  self.problem_type))
            # ECE/Brier before and after the stored temperature; metrics at a stored threshold
            results.update(calibration.evaluation_report(logits, labels, self.manifest,
                                                         self.problem_type, task.metrics))
        return results

    def logits(self, first: Sequence[str], second: Sequence[str] | None = None, *,
               batch_size: int = 64, show_progress: bool | None = False,
               precision: str = "fp32") -> np.ndarray:
        """Raw model outputs (float32, input order) for texts, or pairs split into `first` and
        `second`: no calibration, no decisions. fp32 by default; "bf16" under autocast."""
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision={precision!r}; logits() takes 'fp32' or 'bf16'.")
        return self._logits(list(first), None if second is None else list(second), batch_size,
                            show_progress, bf16=precision == "bf16")

    @property
    def evaluation_task(self) -> Task:
        """The task whose columns and metrics labelled data is read and scored with: the
        model's own, or (no manifest) a stand-in reading 'sentence' and 'label'."""
        if self.task is not None:
            return self.task
        # no manifest: a stand-in task so files are read and checked the same way
        regression = self.problem_type == "regression"
        return Task(
            name="model", labels=() if regression else self.labels,
            problem_type=self.problem_type, max_length=max(self.max_length, 8),
            metrics=("pearson", "spearman", "mse") if regression else ("accuracy", "macro_f1"),
            main_metric="pearson" if regression else "accuracy")

    def labelled_data(self, data: Any = None, *, split: str = "eval", data_dir: Any = None,
                      data_files: Any = None) -> datasets.Dataset:
        """The data `evaluate` would score (same arguments), checked against the task: the
        task's text columns and a "label" column of label ids."""
        import datasets

        from ..data import read_data_file

        task = self.evaluation_task

        if data is None:
            return self._task_split(task, split, data_dir, data_files)
        if data_dir is not None or data_files is not None:
            raise ConfigError("Pass either data or data_dir/data_files to evaluate(), not both.")
        if isinstance(data, str | os.PathLike):
            path = Path(data).expanduser()
            if not path.is_file():
                raise DataError(f"Evaluation file {str(path)!r} not found. Pass a TSV/CSV/JSONL/"
                                "parquet file with the task's text and label columns.")
            return task.prepare_split(read_data_file(path), "eval", source=repr(str(path)))
        if isinstance(data, datasets.DatasetDict):
            data = data[_role(split, data)]
        if isinstance(data, datasets.Dataset):
            return task.prepare_split(data, "eval", source="the given Dataset")
        if isinstance(data, Sequence):
            return task.prepare_split(_rows_to_dataset(data, task), "eval",
                                 source="the given list")
        raise ConfigError(f"evaluate(data=...) got {type(data).__name__}; expected a file path, a "
                          "datasets.Dataset, or a list of (text, label) pairs.")

    def _task_split(self, task: Task, split: str, data_dir: Any,
                    data_files: Any) -> datasets.Dataset:
        if self.task is None and data_dir is None and data_files is None:
            raise ConfigError(
                f"{self.path!r} has no manifest, so it has no task dataset to evaluate on. Pass "
                "data= (a file, a Dataset or a list of (text, label)), or data_dir/data_files.")
        splits = task.load_dataset(data_dir=None if data_dir is None else str(data_dir),
                                   data_files=data_files)
        return splits[_role(split, splits)]


# --- helpers ------------------------------------------------------------------------------
def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices in batches, longest first: each batch pads only to its own longest text, an
    out-of-memory error shows on the first batch rather than the last, and a batch of long
    texts holds fewer of them (at most TOKENS_PER_BATCH padded tokens, one text at least)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, at = [], 0
    while at < len(order):
        size = max(1, min(batch_size, TOKENS_PER_BATCH // max(lengths[order[at]], 1)))
        batches.append(order[at:at + size])
        at += size
    return batches


_ROLE_ALIASES = {"validation": "eval", "dev": "eval", "valid": "eval"}


def _role(split: str, available: Mapping[str, Any]) -> str:
    role = _ROLE_ALIASES.get(split, split)
    if role not in available:
        raise DataError(f"Split {split!r} is not available; the data has "
                        f"{sorted(available)}. Pass split= one of those.")
    return role


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rows_to_dataset(rows: Sequence[Any], task: Task) -> datasets.Dataset:
    """[(text, label)] or [((a, b), label)] / [(a, b, label)] -> a Dataset with task columns."""
    import datasets

    columns: dict[str, list[Any]] = {c: [] for c in (*task.text_columns, task.label_column)}
    width = len(task.text_columns)
    for i, row in enumerate(rows):
        if not isinstance(row, Sequence) or isinstance(row, str):
            row = None
        elif width == 2 and len(row) == 2 and isinstance(row[0], Sequence) and not isinstance(
                row[0], str):
            row = (*row[0], row[1])
        if row is None or len(row) != width + 1:
            shape = "((text_a, text_b), label)" if width == 2 else "(text, label)"
            raise DataError(f"evaluate(data=...) item {i} is {_clip(rows[i])}; expected {shape}.")
        for column, value in zip(columns, row, strict=True):
            columns[column].append(value)
    if not rows:
        raise DataError("evaluate(data=...) got an empty list; expected labelled examples.")
    return datasets.Dataset.from_dict(columns)


def label_array(values: Any, problem_type: str) -> np.ndarray:
    """Labels as the loss and the metrics take them: float32 for regression and multi-label
    (one-hot rows), int64 ids otherwise."""
    import numpy as np

    if problem_type == "regression":
        return np.asarray(values, dtype=np.float32)
    if problem_type == "multi_label_classification":
        return np.asarray(values, dtype=np.float32)
    return np.asarray(values, dtype=np.int64)


def _loss(logits: np.ndarray, labels: np.ndarray, problem_type: str) -> float:
    """The loss the model trains with (as in transformers' sequence classification heads)."""
    import torch
    import torch.nn.functional as F

    x, y = torch.from_numpy(logits), torch.from_numpy(labels)
    if problem_type == "regression":
        return float(F.mse_loss(x[:, 0], y))
    if problem_type == "multi_label_classification":
        return float(F.binary_cross_entropy_with_logits(x, y))
    return float(F.cross_entropy(x, y))


def _classification_report(logits: np.ndarray, labels: np.ndarray, names: Sequence[str],
                           problem_type: str) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from ..metrics import decode_predictions

    preds = decode_predictions(logits, problem_type)
    truth = labels.astype("int64")
    ids = list(range(len(names)))
    multi = problem_type == "multi_label_classification"
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, preds, labels=ids, zero_division=0)
    report: dict[str, Any] = {"per_class": {
        name: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
               "support": int(support[k])}
        for k, name in enumerate(names)}}
    if not multi:
        report["confusion_matrix"] = confusion_matrix(truth, preds, labels=ids).tolist()
    return report
