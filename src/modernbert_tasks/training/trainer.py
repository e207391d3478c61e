"""The transformers `Trainer` with four changes: length-grouped batches that resume exactly,
evaluation in fp32 whatever the training precision, steps that reuse their memory, and a
compiled gradient clip with compile=True (speed.CompiledClip).

transformers' `LengthGroupedSampler` draws each epoch's order from the global RNG. A run
resumed mid-epoch builds that order *before* the checkpoint's RNG state is restored, so the
rest of the epoch follows another order than the original run: some examples are seen twice and
others not at all. Here each epoch's order depends only on (seed, epoch), as with accelerate's
seedable random sampler, so resume=True continues exactly where the run stopped.

Under bf16 training, accelerate wraps the model's forward in autocast, so the periodic
evaluations (best checkpoint, early stopping), the final metrics and the calibration fit would
all be bf16 figures on a bf16 machine and fp32 ones elsewhere. Every evaluation and prediction
here runs the unwrapped forward instead: the figures are the fp32 ones `evaluate` reproduces.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedTokenizerBase, Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from .chunking import DocumentMetrics
from .lengths import tokenized_lengths
from .master_weights import MasterWeights
from .memory import KeepGradientBuffers, keeping_freed_memory, kept_gradient_min_bytes
from .speed import CompiledClip

if TYPE_CHECKING:
    pass

__all__ = ["TaskTrainer", "SeededLengthGroupedSampler", "fp32_forward"]


class SeededLengthGroupedSampler(LengthGroupedSampler):
    """Groups texts of similar length; the order of epoch `e` is a function of (seed, e)."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # called by the Trainer before every epoch
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


@contextlib.contextmanager
def fp32_forward(model: torch.nn.Module) -> Iterator[None]:
    """Run `model` without accelerate's autocast wrapper inside the block (weights are fp32
    under mixed precision), and put the wrapper back after it."""
    from accelerate.utils import extract_model_from_parallel

    inner = extract_model_from_parallel(model)  # the module under DDP/compile wrappers
    saved = {k: inner.__dict__[k] for k in ("forward", "_original_forward") if k in inner.__dict__}
    if "_original_forward" not in saved:  # not wrapped: fp32 already
        yield
        return
    extract_model_from_parallel(inner, keep_fp32_wrapper=False)
    try:
        yield
    finally:
        inner.__dict__.update(saved)


class TaskTrainer(Trainer):
    """reuse_memory: keep gradient buffers and freed memory between steps (training/memory.py).
    compile_clip: clip gradients with one compiled function (speed.CompiledClip).
    master_weights: bf16 weights in each step, fp32 masters elsewhere (master_weights.py)."""

    def __init__(
        self,
        *args: Any,
        reuse_memory: bool = False,
        compile_clip: bool = False,
        master_weights: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.reuse_memory = reuse_memory
        self.master_weights = MasterWeights() if master_weights else None
        if self.master_weights is not None:
            self.add_callback(self.master_weights)  # keeps its own fp32 gradient buffers
        # on a GPU the caching allocator already reuses memory, and kept buffers would cost a
        # zeroing and an accumulating kernel per parameter per step
        elif reuse_memory and self.args.device.type == "cpu":
            self.add_callback(KeepGradientBuffers(kept_gradient_min_bytes()))
        self.compiled_clip = CompiledClip() if compile_clip else None
        self._counted_model: Any = None
        self._parameters_without_embeddings = 0

    def _clip_grad_norm(self, model: Any) -> Any:
        """The Trainer's clipping step; compiled where accelerate's clip would only call
        torch's (no fp16 loss scaler to unscale, no DeepSpeed or FSDP to delegate to)."""
        from accelerate.utils import DistributedType

        if self.master_weights is not None:
            self.master_weights.to_fp32()  # clip the fp32 gradients of the fp32 masters
        plain = self.accelerator.scaler is None and self.accelerator.distributed_type in (
            DistributedType.NO,
            DistributedType.MULTI_CPU,
            DistributedType.MULTI_GPU,
        )
        if self.compiled_clip is None or not plain:
            return super()._clip_grad_norm(model)
        return self.compiled_clip(model.parameters(), self.args.max_grad_norm)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """The Trainer's 6 x tokens x parameters estimate, with the parameter count taken once
        per model instead of by walking every parameter at every step."""
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return super().floating_point_ops(inputs)
        model: Any = self.model  # a PreTrainedModel here (it has num_parameters)
        if self._counted_model is not model:
            self._counted_model = model
            self._parameters_without_embeddings = model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main_input].numel() * self._parameters_without_embeddings

    def train(self, *args: Any, **kwargs: Any) -> Any:
        try:
            with keeping_freed_memory(self.reuse_memory):
                return super().train(*args, **kwargs)
        finally:
            if self.master_weights is not None:
                self.master_weights.to_fp32()  # a step that raised leaves no bf16 weights behind

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        assert self.model is not None  # the Trainer is always built with a model
        self._windows_of(kwargs.get("eval_dataset", args[0] if args else None) or self.eval_dataset)
        with fp32_forward(self.model):
            return super().evaluate(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        assert self.model is not None  # the Trainer is always built with a model
        self._windows_of(kwargs.get("test_dataset", args[0] if args else None))
        with fp32_forward(self.model):
            return super().predict(*args, **kwargs)

    def _windows_of(self, dataset: Any) -> None:
        """train_long_text="chunks": the metrics group this split's windows by text."""
        if isinstance(self.compute_metrics, DocumentMetrics) and dataset is not None:
            self.compute_metrics.use(dataset)

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        """With chunks, windows are scored in order so they can be grouped by text."""
        if isinstance(self.compute_metrics, DocumentMetrics) and self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        if isinstance(self.compute_metrics, DocumentMetrics):
            return None  # accelerate shards batches in order and gathers them back in order
        return super()._get_eval_sampler(eval_dataset)

    def _get_train_sampler(self, train_dataset=None):
        import datasets

        dataset = train_dataset if train_dataset is not None else self.train_dataset
        # the processing class is the task's tokenizer
        column = (
            self.processing_class.model_input_names[0]
            if isinstance(self.processing_class, PreTrainedTokenizerBase)
            else None
        )
        if (
            self.args.train_sampling_strategy != "group_by_length"
            or not isinstance(dataset, datasets.Dataset)
            or column is None
            or column not in dataset.column_names
        ):
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return SeededLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            lengths=tokenized_lengths(dataset, column),
            seed=seed,
        )
