"""One group's model call, on the worker thread that runs it.

`GroupRunner(inputs, raw)` answers a group of requests with `FineTunedModel.predict`'s records
(or `.logits` rows for raw scores), in input order. What makes it fast under load
(docs/benchmarks.md, bench/serve_load.py):

- where the model allows it (BERT and ModernBERT classifiers), the group is one predict call
  whose texts are packed into rows of 64 tokens (inference/packing.py): MiniLM's groups of 16
  SST-2 sentences cost 0.87x of predict's sorted batches per text, against 0.64x split;
- otherwise the group is split into runs of similar token length
  (`grouping.split_by_length`), one predict call each, so a batch is not padded to a long
  text it happens to hold;
- `batch_workers` groups can compute at once, each on its own thread with its share of the
  torch threads (default 1: on 2 cores two one-thread workers were faster at 32 clients in
  one run, slower in another and at 8 clients; docs/benchmarks.md). The weights are shared:
  each worker thread has its own shallow view of the model, with its own tokenizer (a call
  changes its truncation settings) and its own `last_*` counters;
- `warm_up` runs one group of the largest size at startup, on each worker thread, so the
  allocator settles before the first request (as Text Embeddings Inference warms up at its
  largest batch): over 2 minutes at 32 clients the server's RSS grew 37.5% without it and
  7.3% with it (+2% to +15% across six runs; docs/benchmarks.md). What kept growing was
  oneDNN's per-shape primitive cache, now off when serving fp32 (memory.py).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from ..inference import packing
from ..inference.predictor import FineTunedModel
from .grouping import split_by_length
from .metrics import Metrics

__all__ = ["GroupRunner"]


class GroupRunner:
    """Runs groups of inputs on `workers` threads sharing `model`'s weights."""

    def __init__(self, model: FineTunedModel, metrics: Metrics, batch_size: int, workers: int) -> None:
        import torch

        self.model, self.metrics, self.batch_size, self.workers = model, metrics, batch_size, workers
        self._threads_before = torch.get_num_threads()
        # the torch threads each worker computes with: the process's, shared out
        self.threads = max(1, self._threads_before // workers)
        self._local = threading.local()

    def thread_started(self) -> None:
        """Each worker thread's first call (the executor's initializer)."""
        import torch

        if self.workers > 1:
            torch.set_num_threads(self.threads)

    def close(self) -> None:
        """Give the process back its torch threads (a server in a test process stops)."""
        import torch

        if self.workers > 1:
            torch.set_num_threads(self._threads_before)

    def warm_up(self, length: int) -> None:
        """Predict one group of `batch_size` texts of about `length` tokens each (at most the
        model's max_length) on this worker thread; nothing is counted in /metrics."""
        model = self.view()
        words = max(1, min(length, model.max_length))
        text = " ".join(["a"] * words)  # one token a word for BERT-style and BPE tokenizers
        half = " ".join(["a"] * max(1, words // 2))
        group: list[Any] = [(half, half) if model.is_pair else text] * self.batch_size
        model.predict(group, batch_size=self.batch_size, show_progress=False)

    def view(self) -> FineTunedModel:
        """This thread's view of the model: the same weights, its own tokenizer and counters."""
        view = getattr(self._local, "model", None)
        if view is None:
            view = copy.copy(self.model)
            view.tokenizer = copy.deepcopy(self.model.tokenizer)
            view.pack_tokens = packing.ROW_TOKENS
            self._local.model = view
        return view

    def __call__(self, inputs: list[Any], raw: bool) -> list[Any]:
        model = self.view()
        out: list[Any] = [None] * len(inputs)
        for run in self._runs(model, inputs):
            items = [inputs[i] for i in run]
            for i, answer in zip(run, self._answer(model, items, raw), strict=True):
                out[i] = answer
        if raw:
            skipped = sum(row is None for row in out)
            self.metrics.predicted(len(inputs), 0, skipped, 0)
        else:
            self.metrics.predicted(
                len(inputs),
                sum("truncated" in r for r in out),
                sum("skipped" in r for r in out),
                sum(bool(r.get("rescored")) for r in out),
            )
        return out

    def _runs(self, model: FineTunedModel, inputs: list[Any]) -> list[list[int]]:
        if len(inputs) < 3 or packing.can_pack(model.model):  # nothing to gain from a split
            return [list(range(len(inputs)))]
        pairs = not isinstance(inputs[0], str)
        encoded = model.tokenizer(
            [x[0] for x in inputs] if pairs else inputs,
            [x[1] for x in inputs] if pairs else None,
            truncation=True,
            max_length=model.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return split_by_length([len(ids) for ids in encoded["input_ids"]], max_size=self.batch_size)

    def _answer(self, model: FineTunedModel, inputs: list[Any], raw: bool) -> list[Any]:
        if not raw:
            return model.predict(inputs, batch_size=self.batch_size, show_progress=False)
        keep = [i for i, x in enumerate(inputs) if _has_text(x)]
        pairs = bool(inputs) and not isinstance(inputs[0], str)
        first = [inputs[i][0] if pairs else inputs[i] for i in keep]
        second = [inputs[i][1] for i in keep] if pairs else None
        precision = "bf16" if model.precision == "bf16" else "fp32"
        logits = model.logits(first, second, batch_size=self.batch_size, precision=precision)
        out: list[Any] = [None] * len(inputs)
        for row, i in enumerate(keep):
            out[i] = logits[row].tolist()
        return out


def _has_text(item: Any) -> bool:
    return bool(item.strip()) if isinstance(item, str) else any(t.strip() for t in item)
