"""`FineTunedModel`: a loaded model with its tokenizer and task, and `predict`.

Prediction is built for throughput: texts are tokenized once per chunk, sorted by length so
each batch pads only to its own longest text (and holds fewer texts when they are long), and
put back in input order at the end. It reads each text up to `max_length` (the model's
position limit by default) and says which texts it had to cut; long_text="chunks" reads them
whole, in windows (inference/chunks.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import calibration
from ..errors import ConfigError, hint
from ..long_text import LongText
from ..task import Task
from . import chunks, packing
from .batches import bf16_copy, forward
from .evaluation import Evaluation
from .settings import config_labels
from .texts import split_inputs

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
EMPTY = "empty text"  # the "skipped" reason of an input with no text to classify


# --- the model ----------------------------------------------------------------------------
class FineTunedModel(Evaluation):
    """A loaded model with its tokenizer and task: `predict` texts, `evaluate` labelled data.

    Attributes: model, tokenizer, task (the rebuilt `Task`, or None for a folder without
    manifest), manifest, labels (output names in id order), max_length, text_prefix,
    problem_type, device, precision ('fp32', 'mixed' or 'bf16'), path, last_rescored,
    last_truncation, long_text (the default `LongText`: truncate, or chunks with its stride
    and aggregate), last_windows (windows per text of the last chunks call); max_length is
    what prediction reads of a text (the model's limit by default), training_max_length what
    training tokenized to; pack_tokens (None: off) packs short texts into rows that wide
    where the model allows it (packing.py: the server's groups of random lengths).
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
        long_text: LongText | None = None,
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
        self.long_text = long_text or LongText()
        self.last_windows: list[int] = []
        self.pack_tokens: int | None = None
        # bf16 passes run a copy with bf16 parameters; made now where every call needs it
        import torch

        self._bf16_model = None
        if precision in ("mixed", "bf16") and isinstance(model, torch.nn.Module):
            self._bf16_model = bf16_copy(model)
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
        *,
        long_text: str | None = None,
        stride: int | None = None,
        aggregate: str | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per input, in input order.

        Single-label: {"label", "score" (its probability), "probabilities": {label: p}}.
        Multi-label: the same (sigmoid probabilities) plus "labels": every label over 0.5.
        Regression: {"score": value}.
        A text longer than `max_length` tokens is read up to it, and its dict adds
        "truncated": {"tokens_read", "tokens"}; `last_truncation` sums the call up. An empty
        (or whitespace-only) text, or a pair of them, gets no label: {"skipped": "empty text"}.
        With precision "mixed" each dict says whether fp32 re-scored it: "rescored": bool.
        long_text="chunks" reads every text whole in windows of max_length tokens sharing
        `stride` tokens, aggregated by `aggregate` ('mean' or 'max' of the calibrated
        probabilities); each dict adds "windows": how many it read. Default: the model's
        `long_text` (its manifest's, or truncate).
        """
        policy = self.reading(long_text, stride, aggregate)
        first, second = split_inputs(texts_or_pairs, self.task)
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
            policy=policy,
            numbers=keep,
        )
        decoded = self._decode(logits, chunks.temperature_applied(self.manifest) if policy.chunks else None)
        results: list[dict[str, Any]] = [{"skipped": EMPTY} for _ in first]
        rescored = (
            set(self.last_rescored_rows) if self.precision == "mixed" else None
        )  # texts, also with chunks
        for row, i in enumerate(keep):
            results[i] = decoded[row]
            if rescored is not None:
                results[i]["rescored"] = row in rescored
            if row in full:
                results[i]["truncated"] = {"tokens_read": self.max_length, "tokens": full[row]}
            if policy.chunks:
                results[i]["windows"] = self.last_windows[row]
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
            f"from their first {self.max_length} tokens. To read them whole, pass "
            + hint("long_text='chunks'.", "--long-text chunks.")
        )

    def reading(
        self, long_text: str | None = None, stride: int | None = None, aggregate: str | None = None
    ) -> LongText:
        """The `LongText` a call with these arguments reads with (None: the model's own)."""
        if long_text is None and stride is None and aggregate is None:
            return self.long_text
        return chunks.reading(
            self.tokenizer,
            self.max_length,
            self.problem_type,
            self.is_pair,
            long_text,
            stride,
            aggregate,
            self.long_text,
            given_length=False,
        )

    def _scores(
        self,
        first: list[str],
        second: list[str] | None,
        batch_size: int,
        show_progress: bool | None,
        precision: str | None = None,
        full_lengths: dict[int, int] | None = None,
        policy: LongText | None = None,
        numbers: list[int] | None = None,
    ) -> np.ndarray:
        """The logits in `precision` (default: this model's); with "mixed", bf16 and then fp32
        for every close call, so the decisions are fp32's (redone: `last_rescored(_rows)`).
        With chunks (`policy`), one row per text of aggregated logits (chunks.py)."""
        import numpy as np

        precision = precision or self.precision
        self.last_windows = []
        if policy is not None and policy.chunks:
            with self._bar(show_progress, len(first), "window") as bar:
                logits, windows, redone = chunks.chunk_logits(
                    self._format(first),
                    self._format(second) if second is not None else None,
                    tokenizer=self.tokenizer,
                    max_length=self.max_length,
                    policy=policy,
                    run=self._window_runner(batch_size, bar),
                    problem_type=self.problem_type,
                    manifest=self.manifest,
                    precision=precision,
                    chunk_size=CHUNK_SIZE,
                    margin=RESCORE_MARGIN,
                    num_labels=self.model.config.num_labels,
                    numbers=numbers,
                )
            self.last_windows, self.last_rescored = windows.tolist(), (len(redone), len(first))
            self.last_rescored_rows = redone  # the texts whose windows were all scored again in fp32
            return logits
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

        n = len(first)
        out = np.empty((n, self.model.config.num_labels), dtype=np.float32)
        with self._bar(show_progress, n, "text") as bar:
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
                bf16 = self.precision == "bf16" if bf16 is None else bf16
                model = self._model(bf16)
                if self.pack_tokens and packing.can_pack(model):
                    out[start:stop] = packing.forward(model, encoded, self.device, self.pack_tokens)
                    bar.update(stop - start)
                    continue
                # the bf16 copy runs as it is: autocast would put fp32 ops back around it
                out[start:stop] = forward(
                    model, self.tokenizer, self.device, encoded, batch_size, bf16=False, bar=bar
                )
        return out

    def _model(self, bf16: bool) -> Any:
        """The fp32 model, or for a bf16 pass its copy with bf16 parameters (batches.bf16_copy)."""
        import torch

        if not bf16 or not isinstance(self.model, torch.nn.Module):  # ONNX sessions: as they are
            return self.model
        if self._bf16_model is None:
            self._bf16_model = bf16_copy(self.model)
        return self._bf16_model

    def _bar(self, show_progress: bool | None, n: int, unit: str) -> Any:
        from tqdm.auto import tqdm

        show = n >= PROGRESS_MIN_TEXTS if show_progress is None else bool(show_progress)
        return tqdm(total=n, unit=unit, desc="predict", disable=not show or n == 0)

    def _window_runner(self, batch_size: int, bar: Any) -> chunks.Run:
        """Scores the windows chunks.encode_windows tokenized; `bar` counts them."""
        bar.total = 0

        def run(encoded: dict[str, list[list[int]]], bf16: bool) -> np.ndarray:
            bar.total += len(encoded["input_ids"])
            model = self._model(bf16)
            return forward(model, self.tokenizer, self.device, encoded, batch_size, bf16=False, bar=bar)

        return run

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

    def _decode(self, logits: np.ndarray, manifest: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Records from logits, calibrated and decided as `manifest` (default: the model's) says."""
        manifest = self.manifest if manifest is None else manifest
        if self.problem_type == "regression":
            return [{"score": float(v)} for v in logits[:, 0]]
        multi = self.problem_type == "multi_label_classification"
        # the manifest's temperature and decision threshold, when training fitted them
        calibrated = calibration.calibrate(logits, manifest, self.problem_type)
        chosen = calibration.decide(calibrated, manifest, self.problem_type)
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
